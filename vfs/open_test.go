package vfs_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// TestOSOpenFile checks that OS.OpenFile keeps os.OpenFile's meaning: the
// flags and permission bits, the errors callers test with errors.Is, and
// WriteAt refused on a file opened to append.
func TestOSOpenFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if _, err := vfs.OS.OpenFile(name, os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing file: %v, want fs.ErrNotExist", err)
	} else if pe := new(fs.PathError); !errors.As(err, &pe) || pe.Path != name || pe.Op != "open" {
		t.Fatalf("open of a missing file: %#v, want a PathError of open %s", err, name)
	}
	f, err := vfs.OS.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(name); err != nil {
		t.Fatal(err)
	} else if got := fi.Mode().Perm() &^ 0o022; got != 0o640&^0o022 {
		t.Errorf("mode %v, want %v less the umask's", fi.Mode().Perm(), fs.FileMode(0o640))
	}
	if _, err := vfs.OS.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("exclusive create of an existing file: %v, want fs.ErrExist", err)
	}
	a, err := vfs.OS.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on a file opened with O_APPEND succeeded")
	}
	if _, err := a.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := vfs.OS.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "Jello world" {
		t.Fatalf("read %q, %v; want %q", b, err, "Jello world")
	}
}
