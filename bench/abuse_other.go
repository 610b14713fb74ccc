//go:build !linux

package main

import "os/exec"

// abuseSupported: the abuse benchmark needs Linux (/proc, source
// addresses 127.0.0.2 and on).
const abuseSupported = false

func raiseFileLimit() uint64                      { return 0 }
func procStatusBytes(pid int, field string) int64 { return -1 }
func killWithParent(cmd *exec.Cmd)                {}
