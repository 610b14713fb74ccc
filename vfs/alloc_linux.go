package vfs

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// Allocate implements Allocator with fallocate(2), which extends the file
// and reserves its blocks without writing them.
func (f osFile) Allocate(off, n int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, off, n)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
		return nil
	}
}
