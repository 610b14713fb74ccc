package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// lockAll is the length, as two 32-bit halves, of the byte range every lock
// covers: the whole file, whatever its size.
const lockAll = ^uint32(0)

// lockFile takes a LockFileEx lock over the whole of f without waiting,
// exclusive or shared. Closing the result unlocks and closes f. On failure
// f is closed.
func lockFile(f *os.File, op string, exclusive bool) (io.Closer, error) {
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	h := windows.Handle(f.Fd())
	if err := windows.LockFileEx(h, flags, 0, lockAll, lockAll, new(windows.Overlapped)); err != nil {
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			err = ErrLocked
		}
		return nil, errors.Join(&fs.PathError{Op: op, Path: f.Name(), Err: err}, f.Close())
	}
	return closerFunc(func() error {
		err := windows.UnlockFileEx(h, 0, lockAll, lockAll, new(windows.Overlapped))
		if err != nil {
			err = &fs.PathError{Op: "unlock", Path: f.Name(), Err: err}
		}
		return errors.Join(err, f.Close())
	}), nil
}
