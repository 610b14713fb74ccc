//go:build unix

package main

import "golang.org/x/sys/unix"

// fileLimit returns the process's soft limit on open files.
func fileLimit() (uint64, bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0, false
	}
	return uint64(rl.Cur), true
}
