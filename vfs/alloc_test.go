package vfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// TestAllocateWriteAt: Allocate extends a file with zeros and WriteAt
// writes into them, on MemFS and, on Linux, on OS; WriteAt refuses a file
// opened with O_APPEND, as *os.File does.
func TestAllocateWriteAt(t *testing.T) {
	for _, fs := range []struct {
		name string
		fsys vfs.FS
		dir  string
	}{{"mem", vfs.NewMem(), "/d"}, {"os", vfs.OS, t.TempDir()}} {
		t.Run(fs.name, func(t *testing.T) {
			if err := fs.fsys.MkdirAll(fs.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(fs.dir, "f")
			f, err := fs.fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("head")); err != nil {
				t.Fatal(err)
			}
			a, ok := f.(vfs.Allocator)
			if !ok {
				if fs.name == "os" && runtime.GOOS != "linux" {
					t.Skip("OS files reserve space on Linux only")
				}
				t.Fatal("not an Allocator")
			}
			if err := a.Allocate(4, 8192); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("body"), 4); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := fs.fsys.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte("headbody"), make([]byte, 8192-4)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("file of %d bytes, want %d: head, body, zeros", len(got), len(want))
			}

			ap, err := fs.fsys.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ap.Close()
			if _, err := ap.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("WriteAt on an O_APPEND file succeeded")
			}
		})
	}
}

// TestCrashTearsReservedSpace: Crash treats bytes written over the zeros
// that end a file's synced bytes (reserved space) like bytes appended:
// the tear function sees them, without the zeros after them, and the
// prefix it keeps is all that reaches the disk.
func TestCrashTearsReservedSpace(t *testing.T) {
	m := vfs.NewMem()
	if err := vfs.MkdirAllSync(m, "/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := m.OpenFile("/d/log", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("synced")); err != nil {
		t.Fatal(err)
	}
	if err := f.(vfs.Allocator).Allocate(6, 100); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("written"), 6); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{0, 3, 7, 99} {
		var seen []byte
		c := m.Crash(func(_ string, unsynced []byte) int {
			seen = unsynced
			return keep
		})
		if string(seen) != "written" {
			t.Fatalf("tear function saw %q, want the bytes written", seen)
		}
		got, err := c.ReadFile("/d/log")
		if err != nil {
			t.Fatal(err)
		}
		k := min(keep, 7)
		want := append([]byte("synced"+"written"[:k]), make([]byte, 100-k)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("keep %d: %q, want %q", keep, got, want)
		}
	}
	// A change that is not a write at the end is lost whole.
	if _, err := f.WriteAt([]byte("S"), 0); err != nil {
		t.Fatal(err)
	}
	c := m.Crash(func(string, []byte) int {
		t.Fatal("asked to tear an overwrite of synced bytes")
		return 0
	})
	if got, _ := c.ReadFile("/d/log"); !bytes.Equal(got[:6], []byte("synced")) || !allZero(got[6:]) {
		t.Fatalf("an overwrite reached the disk: %q", got)
	}
	m.FailAfter(0)
	if err := f.(vfs.Allocator).Allocate(0, 1<<20); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Allocate under FailAfter: %v", err)
	}
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }
