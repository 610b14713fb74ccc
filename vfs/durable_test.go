package vfs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// recordFS records the Stat, MkdirAll and SyncDir calls made through it.
type recordFS struct {
	vfs.FS
	calls []string
}

func (r *recordFS) Stat(name string) (fs.FileInfo, error) {
	r.calls = append(r.calls, "stat "+name)
	return r.FS.Stat(name)
}

func (r *recordFS) MkdirAll(dir string, perm fs.FileMode) error {
	r.calls = append(r.calls, "mkdir "+dir)
	return r.FS.MkdirAll(dir, perm)
}

func (r *recordFS) SyncDir(dir string) error {
	r.calls = append(r.calls, "syncdir "+dir)
	return r.FS.SyncDir(dir)
}

// TestMkdirAllSync checks which directories MkdirAllSync creates, in which
// order, and which parents it syncs.
func TestMkdirAllSync(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		want  []string
		error error
	}{
		{"exists", "/d", []string{"stat /d"}, nil},
		{"one missing", "/d/a", []string{"stat /d/a", "stat /d", "mkdir /d/a", "syncdir /d"}, nil},
		{"three missing", "/d/a/b/c", []string{
			"stat /d/a/b/c", "stat /d/a/b", "stat /d/a", "stat /d",
			"mkdir /d/a", "syncdir /d", "mkdir /d/a/b", "syncdir /d/a", "mkdir /d/a/b/c", "syncdir /d/a/b",
		}, nil},
		{"unclean path", "/d/./a/../b/", []string{"stat /d/b", "stat /d", "mkdir /d/b", "syncdir /d"}, nil},
		{"under the root", "/e", []string{"stat /e", "stat /", "mkdir /e", "syncdir /"}, nil},
		{"relative", "e/f", []string{"stat e/f", "stat e", "stat .", "mkdir e", "syncdir .", "mkdir e/f", "syncdir e"}, nil},
		{"file in the way", "/d/file/a", []string{"stat /d/file/a", "stat /d/file"}, fs.ErrExist},
		{"file is the dir", "/d/file", []string{"stat /d/file"}, fs.ErrExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := memNew(t)
			memCreate(t, m, "/d/file", "x", true, true)
			r := &recordFS{FS: m}
			err := vfs.MkdirAllSync(r, tc.dir, 0o755)
			if !errors.Is(err, tc.error) || (err != nil) != (tc.error != nil) {
				t.Fatalf("MkdirAllSync(%s): %v, want %v", tc.dir, err, tc.error)
			}
			if !slices.Equal(r.calls, tc.want) {
				t.Errorf("calls:\n%q\nwant\n%q", r.calls, tc.want)
			}
			if err != nil {
				return
			}
			if fi, err := m.Stat(tc.dir); err != nil || !fi.IsDir() {
				t.Errorf("Stat(%s) after MkdirAllSync: %v, %v", tc.dir, fi, err)
			}
		})
	}
}

// TestMkdirAllSyncFaults fails each MkdirAllSync step in turn and checks
// the error is returned and the directories before it were made.
func TestMkdirAllSyncFaults(t *testing.T) {
	for k := range 6 { // mkdir, syncdir for each of three directories
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			m := memNew(t)
			boom := errors.New("boom")
			r := &failFS{FS: m, failAt: k, err: boom}
			if err := vfs.MkdirAllSync(r, "/d/a/b/c", 0o755); !errors.Is(err, boom) {
				t.Fatalf("MkdirAllSync with step %d failing: %v", k, err)
			}
			for i, d := range []string{"/d/a", "/d/a/b", "/d/a/b/c"} {
				_, err := m.Stat(d)
				if made := 2*i < k; made != (err == nil) {
					t.Errorf("step %d failed: Stat(%s) = %v", k, d, err)
				}
			}
		})
	}
}

// failFS fails the MkdirAll or SyncDir call numbered failAt (from 0).
type failFS struct {
	vfs.FS
	n, failAt int
	err       error
}

func (f *failFS) step() error {
	f.n++
	if f.n-1 == f.failAt {
		return f.err
	}
	return nil
}

func (f *failFS) MkdirAll(dir string, perm fs.FileMode) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.FS.MkdirAll(dir, perm)
}

func (f *failFS) SyncDir(dir string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

// TestWriteFileAtomicNoTemp fails each of WriteFileAtomic's operations, alone,
// and checks that the call fails, that no temporary file is left behind, and
// that the file holds its old contents.
func TestWriteFileAtomicNoTemp(t *testing.T) {
	const name = "/d/file"
	for _, old := range []string{"", "old contents"} { // "": no file before
		failed := 0
		for k := 0; ; k++ {
			m := memNew(t)
			want := "<absent>"
			if old != "" {
				memCreate(t, m, name, old, true, true).Close()
				want = old
			}
			step := 0
			boom := errors.New("boom")
			m.SetHook(func(op, _ string) error {
				if step++; step-1 == k {
					return boom
				}
				return nil
			})
			err := vfs.WriteFileAtomic(m, name, []byte("new"), 0o644)
			if err == nil {
				break // every operation has been failed in turn
			}
			failed++
			if !errors.Is(err, boom) {
				t.Fatalf("old=%q, operation %d failing: %v", old, k, err)
			}
			if _, err := m.Stat(name + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("old=%q, operation %d failing: temporary file left behind (%v)", old, k, err)
			}
			if got := memContents(t, m, name); got != want && got != "new" {
				t.Errorf("old=%q, operation %d failing: file holds %q", old, k, got)
			}
		}
		if failed != 5 { // create, write, sync, rename, syncdir
			t.Errorf("old=%q: %d operations failed in turn, want 5", old, failed)
		}
	}
}

// TestMkdirAllSyncCrash checks that the directories MkdirAllSync makes
// survive a crash that loses every unsynced entry, and that those MkdirAll
// makes do not.
func TestMkdirAllSyncCrash(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprint("MkdirAllSync=", durable), func(t *testing.T) {
			m := memNew(t)
			mkdir := m.MkdirAll
			if durable {
				mkdir = func(dir string, perm fs.FileMode) error { return vfs.MkdirAllSync(m, dir, perm) }
			}
			if err := mkdir("/d/a/b", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := vfs.WriteFileAtomic(m, "/d/a/b/f", []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			got := memContents(t, m.CrashWith(vfs.CrashPlan{}), "/d/a/b/f")
			if want := map[bool]string{false: "<absent>", true: "data"}[durable]; got != want {
				t.Errorf("after a crash: %q, want %q", got, want)
			}
		})
	}
}

// TestMkdirAllDeferred: the directories MkdirAllDeferred creates are lost
// by a crash until its sync runs, and kept after; only the new ones'
// parents are synced.
func TestMkdirAllDeferred(t *testing.T) {
	m := memNew(t)
	if err := vfs.MkdirAllSync(m, "/d", 0o755); err != nil {
		t.Fatal(err)
	}
	sync, err := vfs.MkdirAllDeferred(m, "/d/a/b", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(m, "/d/a/b/f", []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := memContents(t, m.CrashWith(vfs.CrashPlan{}), "/d/a/b/f"); got != "<absent>" {
		t.Fatalf("before the sync, a crash kept %q", got)
	}
	var synced []string
	m.SetHook(func(op, name string) error {
		if op == "syncdir" {
			synced = append(synced, name)
		}
		return nil
	})
	if err := sync(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/d", "/d/a"}; fmt.Sprint(synced) != fmt.Sprint(want) {
		t.Fatalf("synced %v, want %v", synced, want)
	}
	if got := memContents(t, m.CrashWith(vfs.CrashPlan{}), "/d/a/b/f"); got != "data" {
		t.Fatalf("after the sync, a crash left %q", got)
	}
	if _, err := vfs.MkdirAllDeferred(m, "/d/a/b/f", 0o755); err == nil {
		t.Fatal("made a directory where a file is")
	}
}
