//go:build !unix

package main

// fileLimit reports that the process has no limit on open files it can
// read (Windows has none that matters for a few thousand handles).
func fileLimit() (uint64, bool) { return 0, false }
