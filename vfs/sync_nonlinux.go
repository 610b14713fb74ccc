//go:build !linux

package vfs

import "os"

// datasync makes f's written bytes and its size durable with
// (*os.File).Sync: fsync on most systems, fcntl F_FULLFSYNC on macOS (which
// also flushes the drive's write cache), FlushFileBuffers on Windows.
func datasync(f *os.File) error { return f.Sync() }
