package vfs_test

import (
	"errors"
	"io"
	"io/fs"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// lockFSes returns each FS the lock tests run against, by name, as a
// function making a fresh one with a directory in it to put files in.
var lockFSes = map[string]func(t *testing.T) (vfs.FS, string){
	"mem": func(t *testing.T) (vfs.FS, string) { return memNew(t), "/d" },
	"os":  func(t *testing.T) (vfs.FS, string) { return vfs.OS, t.TempDir() },
}

type lockFn func(fsys vfs.FS, name string) (io.Closer, error)

func lockExcl(fsys vfs.FS, name string) (io.Closer, error)   { return fsys.Lock(name) }
func lockShared(fsys vfs.FS, name string) (io.Closer, error) { return fsys.LockShared(name) }

// lockTake takes a lock that must be granted.
func lockTake(t *testing.T, lock lockFn, fsys vfs.FS, name string) io.Closer {
	t.Helper()
	l, err := lock(fsys, name)
	if err != nil {
		t.Fatalf("lock %s: %v", name, err)
	}
	return l
}

// lockRefused checks that a lock is refused with ErrLocked naming the file.
func lockRefused(t *testing.T, lock lockFn, fsys vfs.FS, name string) {
	t.Helper()
	l, err := lock(fsys, name)
	if err == nil {
		l.Close()
		t.Fatalf("lock %s granted, want ErrLocked", name)
	}
	var pe *fs.PathError
	if !errors.Is(err, vfs.ErrLocked) || !errors.As(err, &pe) || pe.Path != name {
		t.Fatalf("lock %s: %v, want a PathError naming it wrapping ErrLocked", name, err)
	}
}

func lockRelease(t *testing.T, l io.Closer) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("release: %v", err)
	}
}

// TestLockPairs takes every pair of lock kinds on one file, in order, and
// checks which second lock is refused, that releasing the first lets it
// through, and that a lock on another file is independent.
func TestLockPairs(t *testing.T) {
	tests := []struct {
		name          string
		first, second lockFn
		conflict      bool
	}{
		{"exclusive then exclusive", lockExcl, lockExcl, true},
		{"exclusive then shared", lockExcl, lockShared, true},
		{"shared then exclusive", lockShared, lockExcl, true},
		{"shared then shared", lockShared, lockShared, false},
	}
	for fsName, newFS := range lockFSes {
		for _, tc := range tests {
			t.Run(fsName+"/"+tc.name, func(t *testing.T) {
				fsys, dir := newFS(t)
				name, other := dir+"/LOCK", dir+"/OTHER"
				lockRelease(t, lockTake(t, lockExcl, fsys, name))  // creates it
				lockRelease(t, lockTake(t, lockExcl, fsys, other)) // creates it
				l1 := lockTake(t, tc.first, fsys, name)
				if tc.conflict {
					lockRefused(t, tc.second, fsys, name)
				} else {
					lockRelease(t, lockTake(t, tc.second, fsys, name))
				}
				lockRelease(t, lockTake(t, tc.second, fsys, other))
				lockRelease(t, l1)
				lockRelease(t, lockTake(t, tc.second, fsys, name))
			})
		}
	}
}

// TestLockSharedHolders checks that an exclusive lock waits for the last of
// several shared holders, and that shared locks wait for the exclusive one.
func TestLockSharedHolders(t *testing.T) {
	for fsName, newFS := range lockFSes {
		t.Run(fsName, func(t *testing.T) {
			fsys, dir := newFS(t)
			name := dir + "/LOCK"
			lockRelease(t, lockTake(t, lockExcl, fsys, name))
			s1 := lockTake(t, lockShared, fsys, name)
			s2 := lockTake(t, lockShared, fsys, name)
			s3 := lockTake(t, lockShared, fsys, name)
			lockRefused(t, lockExcl, fsys, name)
			lockRelease(t, s2)
			lockRefused(t, lockExcl, fsys, name)
			lockRelease(t, s1)
			lockRefused(t, lockExcl, fsys, name)
			lockRelease(t, s3)
			x := lockTake(t, lockExcl, fsys, name)
			lockRefused(t, lockShared, fsys, name)
			lockRefused(t, lockShared, fsys, name)
			lockRelease(t, x)
			lockRelease(t, lockTake(t, lockShared, fsys, name))
		})
	}
}

// TestLockSharedMissing checks that LockShared never creates the file.
func TestLockSharedMissing(t *testing.T) {
	for fsName, newFS := range lockFSes {
		t.Run(fsName, func(t *testing.T) {
			fsys, dir := newFS(t)
			name := dir + "/LOCK"
			if l, err := fsys.LockShared(name); !errors.Is(err, fs.ErrNotExist) {
				if err == nil {
					l.Close()
				}
				t.Fatalf("LockShared of a missing file: %v, want ErrNotExist", err)
			}
			if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("LockShared created the file: %v", err)
			}
			lockRelease(t, lockTake(t, lockExcl, fsys, name))
			if _, err := fsys.Stat(name); err != nil {
				t.Errorf("Lock did not create the file: %v", err)
			}
		})
	}
}

// TestMemLockDoubleClose checks that closing a MemFS lock twice releases
// it once: a second shared holder keeps its lock.
func TestMemLockDoubleClose(t *testing.T) {
	m := memNew(t)
	lockRelease(t, lockTake(t, lockExcl, m, "/d/LOCK"))
	s1 := lockTake(t, lockShared, m, "/d/LOCK")
	s2 := lockTake(t, lockShared, m, "/d/LOCK")
	lockRelease(t, s1)
	if err := s1.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	lockRefused(t, lockExcl, m, "/d/LOCK")
	lockRelease(t, s2)
	lockRelease(t, lockTake(t, lockExcl, m, "/d/LOCK"))
}
