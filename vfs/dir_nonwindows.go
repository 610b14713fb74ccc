//go:build !windows

package vfs

import (
	"errors"
	"os"
)

// syncDir fsyncs the directory so the entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
