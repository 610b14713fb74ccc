package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's written bytes and its size durable with fdatasync(2),
// which skips the metadata a log does not need (times) that fsync would
// also write.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
