package repo

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// countingFS counts the ReadAt calls on the files it opens.
type countingFS struct {
	vfs.FS
	reads *atomic.Int64
}

func (c countingFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.reads}, nil
}

type countingFile struct {
	vfs.File
	reads *atomic.Int64
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads.Add(1)
	return f.File.ReadAt(p, off)
}

// TestReadAhead: a repository opened from its head index reads the
// commits it does not hold from the log; read in log order (every
// commit, as a first contact's sync does), they cost one read per
// readAhead bytes, not one per record; read out of order, one per record,
// with no more bytes than the record's; and both give back the commits
// written.
func TestReadAhead(t *testing.T) {
	ixSetup(t)
	const n = 3000 // records of about 400 bytes: over 1 MB
	fsys := vfs.NewMem()
	if err := vfs.MkdirAllSync(fsys, filepath.Dir(ixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	r := reserveOpen(t, fsys, Async, &ixLogs{})
	reserveWrite(t, r, 0, n, 300)
	written, _ := r.CommitsSince(0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	o, err := Open(ixPath, &Options{FS: countingFS{fsys, &reads}, Key: ixKey("r"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.indexed == 0 {
		t.Fatal("not opened from the index")
	}
	reads.Store(0)
	all, _ := o.CommitsSince(0)
	if len(all) != len(written) {
		t.Fatalf("%d commits read, %d written", len(all), len(written))
	}
	for i, c := range all {
		if c.ID() != written[i].ID() {
			t.Fatalf("commit %d: %s, written %s", i, c.ID().Short(), written[i].ID().Short())
		}
	}
	if got, most := reads.Load(), o.LogSize()/readAhead+2; got > most {
		t.Fatalf("%d reads for %d commits in log order (a log of %d bytes): want %d at most", got, n, o.LogSize(), most)
	}

	// Out of order: every other commit from the end.
	o.rd.reset()
	reads.Store(0)
	o.mu.RLock()
	for i := len(o.entries) - 1; i >= 0; i -= 2 {
		c, err := o.commitOf(o.entries[i])
		if err != nil || c.ID() != written[i].ID() {
			o.mu.RUnlock()
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	o.mu.RUnlock()
	if got, want := reads.Load(), int64((n+1)/2); got != want {
		t.Fatalf("%d reads for %d commits out of order, want one each", got, want)
	}
	if len(o.rd.win) != 0 {
		t.Fatal(fmt.Sprint("read ahead out of order: ", len(o.rd.win), " bytes"))
	}
}
