package goatdb_test

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/vfs"
)

// readCountFS counts the reads of one file.
type readCountFS struct {
	vfs.FS
	name  string
	reads *atomic.Int64
}

func (c readCountFS) ReadFile(name string) ([]byte, error) {
	if name == c.name {
		c.reads.Add(1)
	}
	return c.FS.ReadFile(name)
}

// TestUnreadableLogReadOnce: a log that cannot be read as a log is not
// read again by every health check (an unauthenticated /healthz would
// otherwise read it on each request) until the file changes.
func TestUnreadableLogReadOnce(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "data", "bad.log")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, []byte("not a log"), 0o644)
	reads := new(atomic.Int64)
	db, err := goatdb.Open(dir, &goatdb.Options{FS: readCountFS{vfs.OS, bad, reads}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 5 {
		if h, err := db.Health(); err != nil || h.Status != goatdb.StatusDamaged {
			t.Fatalf("Health = %v, %v", h, err)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("the unreadable log was read %d times for 5 health checks, want 1", n)
	}
	os.WriteFile(bad, []byte("still not a log, but changed"), 0o644)
	db.Health()
	if n := reads.Load(); n != 2 {
		t.Errorf("the changed log was read %d times in all, want 2", n)
	}
}
