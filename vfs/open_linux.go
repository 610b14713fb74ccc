package vfs

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openFile is os.OpenFile without the runtime's network poller. On Linux
// os.OpenFile offers every file it opens to the poller, which for a regular
// file costs two fcntl calls to make it non-blocking, an epoll_ctl that
// fails, and two more to make it blocking again: five system calls more
// than the open. os.NewFile of a descriptor opened blocking asks one fcntl
// and leaves it out of the poller, as a regular file is anyway. The
// permission bits are perm's nine (vfs creates no file with special bits).
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		switch err {
		case nil:
			return os.NewFile(uintptr(fd), name), nil
		case unix.EINTR:
			continue
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
}
