//go:build unix && !aix

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes a flock(2) lock on f without waiting, exclusive or shared.
// The lock belongs to f's open file description, so closing f releases it,
// and a second open of the same file conflicts even in this process. On
// failure f is closed.
func lockFile(f *os.File, op string, exclusive bool) (io.Closer, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case err == unix.EINTR:
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			err = ErrLocked
		}
		return nil, errors.Join(&fs.PathError{Op: op, Path: f.Name(), Err: err}, f.Close())
	}
}
