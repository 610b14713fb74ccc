package raftstore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/vfs"
)

// FuzzOpen opens a store whose log file holds arbitrary bytes. Open must
// not panic; if it succeeds, opening again finds the same entries, and the
// store takes a write and keeps it.
func FuzzOpen(f *testing.F) {
	fsys := vfs.NewMem()
	s, err := raftstore.Open(fsys, dir)
	if err != nil {
		f.Fatal(err)
	}
	for i := uint64(1); i <= 5; i += 2 {
		if err := s.StoreLogs(entries(i, i+1)); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	good, err := fsys.ReadFile(logPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(good[:24])
	f.Add([]byte("goatrlog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := vfs.NewMem()
		if err := vfs.MkdirAllSync(fsys, dir, 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, fsys, logPath, data)
		s, err := raftstore.Open(fsys, dir)
		if err != nil {
			if !errors.Is(err, raftstore.ErrCorrupt) && !errors.Is(err, raftstore.ErrVersion) {
				t.Fatalf("Open failed with neither ErrCorrupt nor ErrVersion: %v", err)
			}
			return
		}
		got := readAll(t, s)
		s = reopen(t, s, fsys, dir)
		checkLogs(t, s, got)
		last, _ := s.LastIndex()
		if last == 1<<64-1 {
			return
		}
		store(t, s, entry(last+1))
		checkLogs(t, reopen(t, s, fsys, dir), append(got, entry(last+1)))
	})
}
