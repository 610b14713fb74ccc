//go:build (!unix && !windows) || aix

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// lockFile fails with errors.ErrUnsupported: this system has no flock(2)
// and LockFileEx. f is closed.
func lockFile(f *os.File, op string, exclusive bool) (io.Closer, error) {
	return nil, errors.Join(&fs.PathError{Op: op, Path: f.Name(), Err: errors.ErrUnsupported}, f.Close())
}
