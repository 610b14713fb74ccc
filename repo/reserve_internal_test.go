package repo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// reserveOpen opens the log at ixPath in fsys, logging to logs.
func reserveOpen(t *testing.T, fsys vfs.FS, d Durability, logs *ixLogs) *Repo {
	t.Helper()
	r, err := Open(ixPath, &Options{FS: fsys, Key: ixKey("r"), Durability: d, FlushInterval: time.Hour, Logger: logs.logger()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// reserveFile returns the log's file, and fails unless it is the log's
// bytes followed by zeros only.
func reserveFile(t *testing.T, fsys vfs.FS, r *Repo) []byte {
	t.Helper()
	b, err := fsys.ReadFile(ixPath)
	if err != nil {
		t.Fatal(err)
	}
	n := r.LogSize()
	if n > int64(len(b)) || !bytesAllZero(b[n:]) {
		t.Fatalf("log of %d bytes in a file of %d: want zeros only after the log", n, len(b))
	}
	return b
}

// reserveWrite writes n items of size bytes each, one write each.
func reserveWrite(t *testing.T, r *Repo, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("%d:%s", i, strings.Repeat("x", size))
		if _, err := r.Write(recoverSet(fmt.Sprintf("k%04d", i), "v", item.String(v))); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// reserveHas fails unless r holds items from..from+n as reserveWrite wrote
// them.
func reserveHas(t *testing.T, r *Repo, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		want := fmt.Sprintf("%d:%s", i, strings.Repeat("x", size))
		v, _, ok := r.Get(fmt.Sprintf("k%04d", i))
		if got, _ := v.Get("v"); !ok || got.Str() != want {
			t.Fatalf("item %d lost", i)
		}
	}
}

// TestReservedSpace: a writable log reserves space past its end, a step
// at a time, so that most writes land in space the file already has;
// the zeros are never part of the log, Close gives them back, and an open
// after a crash cuts them without calling them damage.
func TestReservedSpace(t *testing.T) {
	const size = 300
	for _, d := range []Durability{Sync, Async} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			fsys := vfs.NewMem()
			if err := vfs.MkdirAllSync(fsys, filepath.Dir(ixPath), 0o755); err != nil {
				t.Fatal(err)
			}
			logs := &ixLogs{}
			r := reserveOpen(t, fsys, d, logs)
			allocs := 0
			fsys.SetHook(func(op, name string) error {
				if op == "allocate" && name == ixPath {
					allocs++
				}
				return nil
			})
			reserveWrite(t, r, 0, 1, size)
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			if b := reserveFile(t, fsys, r); int64(len(b)) < r.LogSize()+reserveMin/2 {
				t.Fatalf("file of %d bytes for a log of %d: no space reserved", len(b), r.LogSize())
			}
			if got, want := r.LogSize(), int64(r.Seq()); got != want {
				t.Fatalf("LogSize %d, Seq %d", got, want)
			}

			// 1,000 writes of about 400 bytes: the log grows past several
			// steps, reserving space once per tens of writes, not once per write.
			const n = 1000
			reserveWrite(t, r, 1, n, size)
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			reserveFile(t, fsys, r)
			if allocs < 2 || allocs > n/25 {
				t.Fatalf("%d reservations for %d writes (log of %d bytes): want a few", allocs, n, r.LogSize())
			}
			fsys.SetHook(nil)

			// A crash: the zeros are cut, with no warning and no damage,
			// and every write flushed is there.
			crashed := fsys.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(1, uint64(d)))))
			clogs := &ixLogs{}
			c := reserveOpen(t, crashed, d, clogs)
			if s := clogs.find("INFO cut zeros"); s == "" {
				t.Errorf("no zeros cut after a crash:\n%s", clogs)
			}
			if s := clogs.find("WARN"); s != "" {
				t.Errorf("warned: %s", s)
			}
			if dm := c.Damage(); len(dm) > 0 {
				t.Errorf("damage: %v", dm)
			}
			reserveHas(t, c, 0, n+1, size)
			if ps := c.Check(); ps != nil {
				t.Errorf("Check: %v", ps)
			}
			c.Close()

			// Close gives the reserved space back: the file is the log.
			end := r.LogSize()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if b, _ := fsys.ReadFile(ixPath); int64(len(b)) != r.LogSize() || r.LogSize() < end {
				t.Fatalf("file of %d bytes after Close, log of %d", len(b), r.LogSize())
			}
			logs = &ixLogs{}
			r = reserveOpen(t, fsys, d, logs)
			defer r.Close()
			if s := logs.find("INFO cut zeros"); s != "" {
				t.Errorf("zeros cut after a clean Close: %s", s)
			}
			reserveHas(t, r, 0, n+1, size)
		})
	}
}

// TestReservedSpaceTorn: a flush that wrote into reserved space and whose
// sync failed is torn by a crash that keeps a later page and loses an
// earlier one, which still holds the reserved zeros. The open keeps what
// was durable, reports no damage, and brings back none of the torn writes
// after the first one lost.
func TestReservedSpaceTorn(t *testing.T) {
	const size, n = 300, 40
	fsys := vfs.NewMem()
	if err := vfs.MkdirAllSync(fsys, filepath.Dir(ixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	r := reserveOpen(t, fsys, Async, &ixLogs{})
	defer r.Close()
	reserveWrite(t, r, 0, 5, size)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	durable := r.LogSize()
	reserveWrite(t, r, 5, n, size) // about 16 KB: four pages or more
	fsys.SetHook(func(op, name string) error {
		if op == "sync" && name == ixPath {
			return vfs.ErrInjected
		}
		return nil
	})
	if err := r.Flush(); !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("flush without its sync: %v", err)
	}
	fsys.SetHook(nil)
	first := durable / vfs.PageSize * vfs.PageSize
	for _, lost := range []int64{first, first + vfs.PageSize, first + 2*vfs.PageSize} {
		t.Run(fmt.Sprint("lost=", lost), func(t *testing.T) {
			crashed := fsys.CrashWith(vfs.CrashPlan{KeepPage: func(name string, off int64) bool { return off != lost }})
			logs := &ixLogs{}
			c := reserveOpen(t, crashed, Async, logs)
			defer c.Close()
			if dm, q := c.Damage(), c.Quarantine(); len(dm) > 0 || len(q) > 0 {
				t.Fatalf("a torn write reported as damage %v / quarantine %v\n%s", dm, q, logs)
			}
			reserveHas(t, c, 0, 5, size)
			gap := false
			for i := 5; i < 5+n; i++ {
				_, _, ok := c.Get(fmt.Sprintf("k%04d", i))
				if ok && gap {
					t.Fatalf("write %d came back after an earlier one was lost", i)
				}
				gap = gap || !ok
			}
			if !gap {
				t.Fatalf("every torn write survived the loss of page %d", lost)
			}
			if ps := c.Check(); ps != nil {
				t.Fatalf("Check: %v", ps)
			}
		})
	}
}

// TestReservedSpaceRefused: a file that cannot reserve space is written
// past its end as before, and nothing is lost.
func TestReservedSpaceRefused(t *testing.T) {
	const size, n = 300, 300
	fsys := vfs.NewMem()
	if err := vfs.MkdirAllSync(fsys, filepath.Dir(ixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	fsys.SetHook(func(op, name string) error {
		if op == "allocate" {
			return vfs.ErrInjected
		}
		return nil
	})
	logs := &ixLogs{}
	r := reserveOpen(t, fsys, Sync, logs)
	reserveWrite(t, r, 0, n, size)
	if b := reserveFile(t, fsys, r); int64(len(b)) != r.LogSize() {
		t.Fatalf("file of %d bytes for a log of %d", len(b), r.LogSize())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	fsys.SetHook(nil)
	r = reserveOpen(t, fsys, Sync, logs)
	defer r.Close()
	reserveHas(t, r, 0, n, size)
}
