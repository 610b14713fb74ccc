//go:build !linux

package vfs

import (
	"io/fs"
	"os"
)

// openFile is os.OpenFile: outside Linux it does not offer a regular file
// to the runtime's poller (open_linux.go).
func openFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
