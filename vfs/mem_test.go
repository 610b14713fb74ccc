package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// memCreate makes a file with data, optionally synced and with its directory
// entry synced.
func memCreate(t *testing.T, m *vfs.MemFS, name, data string, sync, syncDir bool) vfs.File {
	t.Helper()
	f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if syncDir {
		if err := m.SyncDir("/d"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// memContents returns a file's contents, or "<absent>".
func memContents(t *testing.T, m *vfs.MemFS, name string) string {
	t.Helper()
	b, err := m.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// memNew returns a MemFS with a durable, empty directory /d.
func memNew(t *testing.T) *vfs.MemFS {
	t.Helper()
	m := vfs.NewMem()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMemCrash checks what survives a crash: synced bytes of files whose
// directory entry was synced, plus the torn prefix the test asks for.
func TestMemCrash(t *testing.T) {
	half := func(_ string, b []byte) int { return len(b) / 2 }
	all := func(_ string, b []byte) int { return len(b) }
	tests := []struct {
		name  string
		setup func(t *testing.T, m *vfs.MemFS)
		torn  func(string, []byte) int
		want  string // memContents of /d/f after the crash
	}{
		{"unsynced entry", func(t *testing.T, m *vfs.MemFS) { memCreate(t, m, "/d/f", "data", true, false) }, all, "<absent>"},
		{"synced entry, unsynced data", func(t *testing.T, m *vfs.MemFS) { memCreate(t, m, "/d/f", "data", false, true) }, nil, ""},
		{"synced entry, unsynced data, torn", func(t *testing.T, m *vfs.MemFS) { memCreate(t, m, "/d/f", "data", false, true) }, half, "da"},
		{"synced", func(t *testing.T, m *vfs.MemFS) { memCreate(t, m, "/d/f", "data", true, true) }, nil, "data"},
		{"synced then appended", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Write([]byte("more"))
		}, nil, "data"},
		{"appended, torn half", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Write([]byte("more"))
		}, half, "datamo"},
		{"appended, torn all", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Write([]byte("more"))
		}, all, "datamore"},
		{"torn beyond the end is clamped", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Write([]byte("more"))
		}, func(string, []byte) int { return 100 }, "datamore"},
		{"negative tear is clamped", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Write([]byte("more"))
		}, func(string, []byte) int { return -3 }, "data"},
		{"truncated, unsynced", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Truncate(2)
		}, all, "data"},
		{"truncated, synced", func(t *testing.T, m *vfs.MemFS) {
			f := memCreate(t, m, "/d/f", "data", true, true)
			f.Truncate(2)
			f.Sync()
		}, all, "da"},
		{"removed, unsynced dir", func(t *testing.T, m *vfs.MemFS) {
			memCreate(t, m, "/d/f", "data", true, true)
			m.Remove("/d/f")
		}, nil, "data"},
		{"removed, synced dir", func(t *testing.T, m *vfs.MemFS) {
			memCreate(t, m, "/d/f", "data", true, true)
			m.Remove("/d/f")
			m.SyncDir("/d")
		}, nil, "<absent>"},
		{"renamed over, unsynced dir", func(t *testing.T, m *vfs.MemFS) {
			memCreate(t, m, "/d/f", "old", true, true)
			memCreate(t, m, "/d/g", "new", true, false)
			m.Rename("/d/g", "/d/f")
		}, all, "old"},
		{"renamed over, synced dir", func(t *testing.T, m *vfs.MemFS) {
			memCreate(t, m, "/d/f", "old", true, true)
			memCreate(t, m, "/d/g", "new", true, false)
			m.Rename("/d/g", "/d/f")
			m.SyncDir("/d")
		}, nil, "new"},
		{"other directory synced", func(t *testing.T, m *vfs.MemFS) {
			m.MkdirAll("/e", 0o755)
			memCreate(t, m, "/d/f", "data", true, false)
			m.SyncDir("/e")
		}, all, "<absent>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := memNew(t)
			tc.setup(t, m)
			before := memContents(t, m, "/d/f")
			c := m.Crash(tc.torn)
			if got := memContents(t, c, "/d/f"); got != tc.want {
				t.Errorf("after crash: %q, want %q", got, tc.want)
			}
			if got := memContents(t, m, "/d/f"); got != before {
				t.Errorf("Crash changed the live filesystem: %q, was %q", got, before)
			}
			// A crash image is durable as it stands.
			if got := memContents(t, c.Crash(nil), "/d/f"); got != tc.want {
				t.Errorf("after a second crash: %q, want %q", got, tc.want)
			}
			if _, err := c.Stat("/d"); err != nil {
				t.Errorf("directory lost in the crash: %v", err)
			}
		})
	}
}

// TestMemCrashTornArgs checks that the tear function sees each file's name
// and exactly the bytes written since its last sync.
func TestMemCrashTornArgs(t *testing.T) {
	m := memNew(t)
	f := memCreate(t, m, "/d/f", "synced", true, true)
	f.Write([]byte("-tail"))
	memCreate(t, m, "/d/g", "all synced", true, true)
	seen := map[string]string{}
	m.Crash(func(name string, unsynced []byte) int {
		seen[name] = string(unsynced)
		return 0
	})
	if want := map[string]string{"/d/f": "-tail"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("tear function saw %v, want %v", seen, want)
	}
}

// TestMemFailAfter checks that FailAfter(n) lets exactly n mutating
// operations through, that a failed operation changes nothing, and that
// reads are not counted.
func TestMemFailAfter(t *testing.T) {
	m := memNew(t)
	start := m.Ops()
	f := memCreate(t, m, "/d/f", "abc", true, true) // memCreate, write, sync, syncdir
	if got := m.Ops() - start; got != 4 {
		t.Errorf("Ops = %d after create, write, sync, syncdir", got)
	}
	m.FailAfter(2)
	if _, err := f.Write([]byte("d")); err != nil {
		t.Fatalf("first operation: %v", err)
	}
	m.ReadFile("/d/f")
	m.Stat("/d/f")
	m.ReadDir("/d")
	f.ReadAt(make([]byte, 1), 0)
	if err := f.Sync(); err != nil {
		t.Fatalf("second operation: %v", err)
	}
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"write", func() error { _, err := f.Write([]byte("e")); return err }},
		{"sync", f.Sync},
		{"truncate", func() error { return f.Truncate(0) }},
		{"rename", func() error { return m.Rename("/d/f", "/d/g") }},
		{"remove", func() error { return m.Remove("/d/f") }},
		{"syncdir", func() error { return m.SyncDir("/d") }},
		{"create", func() error { _, err := m.OpenFile("/d/h", os.O_CREATE|os.O_WRONLY, 0o644); return err }},
		{"trunc", func() error { _, err := m.OpenFile("/d/f", os.O_TRUNC|os.O_WRONLY, 0o644); return err }},
	} {
		if err := op.fn(); !errors.Is(err, vfs.ErrInjected) {
			t.Errorf("%s after the budget: %v, want ErrInjected", op.name, err)
		}
	}
	if got := memContents(t, m, "/d/f"); got != "abcd" {
		t.Errorf("failed operations changed the file: %q", got)
	}
	if ents, _ := m.ReadDir("/d"); len(ents) != 1 {
		t.Errorf("failed operations changed the directory: %v", ents)
	}
	if got := memContents(t, m.Crash(func(string, []byte) int { return 100 }), "/d/f"); got != "abcd" {
		t.Errorf("crash after failed operations: %q", got)
	}
	if got := m.Ops() - start; got != 4+2+8 {
		t.Errorf("Ops = %d, want every attempt counted", got)
	}
	m.FailAfter(-1)
	if _, err := f.Write([]byte("e")); err != nil {
		t.Errorf("FailAfter(-1) did not turn faults off: %v", err)
	}
	m.FailAfter(0)
	if err := f.Sync(); !errors.Is(err, vfs.ErrInjected) {
		t.Errorf("FailAfter(0): %v, want ErrInjected", err)
	}
}

// TestMemHook checks that the hook sees every mutating operation by name
// and that its error fails the operation.
func TestMemHook(t *testing.T) {
	m := memNew(t)
	var seen []string
	boom := errors.New("boom")
	m.SetHook(func(op, name string) error {
		seen = append(seen, op+" "+name)
		if op == "sync" {
			return boom
		}
		return nil
	})
	f := memCreate(t, m, "/d/f", "x", false, false)
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Errorf("Sync with a failing hook: %v", err)
	}
	var pe *fs.PathError
	if err := f.Sync(); !errors.As(err, &pe) || pe.Path != "/d/f" || pe.Op != "sync" {
		t.Errorf("hook error is not a PathError naming the op and file: %#v", err)
	}
	f.Truncate(0)
	m.SyncDir("/d")
	m.Rename("/d/f", "/d/g")
	m.Remove("/d/g")
	want := []string{"create /d/f", "write /d/f", "sync /d/f", "sync /d/f", "truncate /d/f", "syncdir /d", "rename /d/f", "remove /d/g"}
	if !slices.Equal(seen, want) {
		t.Errorf("hook saw %q, want %q", seen, want)
	}
	m.SetHook(nil)
	if err := f.Sync(); err != nil {
		t.Errorf("after removing the hook: %v", err)
	}
}

// TestMemNamespace checks opening, renaming, removing and listing.
func TestMemNamespace(t *testing.T) {
	m := memNew(t)
	if err := m.MkdirAll("/d/sub/deeper", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"/d/b", "/d/a", "/d/c"} {
		memCreate(t, m, n, n, false, false).Close()
	}
	names := func() []string {
		ents, err := m.ReadDir("/d")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, fmt.Sprintf("%s:%v", e.Name(), e.IsDir()))
		}
		return out
	}
	if got, want := names(), []string{"a:false", "b:false", "c:false", "sub:true"}; !slices.Equal(got, want) {
		t.Errorf("ReadDir = %v, want %v", got, want)
	}
	if err := m.Rename("/d/a", "/d/sub/a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/d/b"); err != nil {
		t.Fatal(err)
	}
	if got, want := names(), []string{"c:false", "sub:true"}; !slices.Equal(got, want) {
		t.Errorf("ReadDir after rename and remove = %v, want %v", got, want)
	}
	if got := memContents(t, m, "/d/sub/a"); got != "/d/a" {
		t.Errorf("renamed file holds %q", got)
	}
	if fi, err := m.Stat("/d/c"); err != nil || fi.Size() != 4 || fi.IsDir() {
		t.Errorf("Stat(/d/c) = %v, %v", fi, err)
	}
	if fi, err := m.Stat("/d/sub"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(/d/sub) = %v, %v", fi, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"remove missing", m.Remove("/d/nope"), fs.ErrNotExist},
		{"rename missing", m.Rename("/d/nope", "/d/x"), fs.ErrNotExist},
		{"stat missing", func() error { _, err := m.Stat("/d/nope"); return err }(), fs.ErrNotExist},
		{"read missing", func() error { _, err := m.ReadFile("/d/nope"); return err }(), fs.ErrNotExist},
		{"readdir missing", func() error { _, err := m.ReadDir("/nope"); return err }(), fs.ErrNotExist},
		{"open missing", func() error { _, err := m.OpenFile("/d/nope", os.O_RDONLY, 0); return err }(), fs.ErrNotExist},
		{"create in missing dir", func() error { _, err := m.OpenFile("/nope/f", os.O_CREATE|os.O_WRONLY, 0o644); return err }(), fs.ErrNotExist},
		{"exclusive create of existing", func() error {
			_, err := m.OpenFile("/d/c", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			return err
		}(), fs.ErrExist},
		{"rename into missing dir", m.Rename("/d/c", "/nope/c"), fs.ErrNotExist},
		{"rename a directory", m.Rename("/d/sub", "/d/sub2"), errors.ErrUnsupported},
		{"syncdir missing", m.SyncDir("/nope"), fs.ErrNotExist},
		{"remove a root", m.Remove("/"), fs.ErrInvalid},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"remove a non-empty directory", m.Remove("/d/sub")},
		{"open a directory", func() error { _, err := m.OpenFile("/d/sub", os.O_RDONLY, 0); return err }()},
		{"create over a directory", func() error { _, err := m.OpenFile("/d/sub", os.O_CREATE|os.O_WRONLY, 0o644); return err }()},
		{"read a directory", func() error { _, err := m.ReadFile("/d/sub"); return err }()},
		{"rename over a directory", m.Rename("/d/c", "/d/sub")},
		{"mkdir through a file", m.MkdirAll("/d/c/x", 0o755)},
		{"readdir of a file", func() error { _, err := m.ReadDir("/d/c"); return err }()},
		{"syncdir of a file", m.SyncDir("/d/c")},
	} {
		var pe *fs.PathError
		if !errors.As(tc.err, &pe) {
			t.Errorf("%s: %v, want a PathError", tc.name, tc.err)
		}
	}
	if got, want := names(), []string{"c:false", "sub:true"}; !slices.Equal(got, want) {
		t.Errorf("failed operations changed the directory: %v, want %v", got, want)
	}
	if err := m.Remove("/d/sub/deeper"); err != nil {
		t.Errorf("remove an empty directory: %v", err)
	}

	// Files: positional writes, O_APPEND, O_TRUNC, reads at offsets, and
	// nothing after Close.
	f, err := m.OpenFile("/d/c", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("XY"))
	if got := memContents(t, m, "/d/c"); got != "XY/c" {
		t.Errorf("write at offset 0: %q", got)
	}
	buf := make([]byte, 3)
	if n, err := f.ReadAt(buf, 2); n != 2 || err != io.EOF || string(buf[:n]) != "/c" {
		t.Errorf("ReadAt past the end: %d %v %q", n, err, buf[:n])
	}
	f.Close()
	if _, err := f.Write([]byte("z")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("sync after Close: %v", err)
	}
	f, _ = m.OpenFile("/d/c", os.O_WRONLY|os.O_TRUNC, 0)
	f.Write([]byte("new"))
	if got := memContents(t, m, "/d/c"); got != "new" {
		t.Errorf("after O_TRUNC: %q", got)
	}
}

// TestMemLock checks that a name can be locked once at a time.
func TestMemLock(t *testing.T) {
	m := memNew(t)
	l, err := m.Lock("/d/LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock("/d/LOCK"); !errors.Is(err, vfs.ErrLocked) {
		t.Errorf("second Lock: %v, want ErrLocked", err)
	}
	if _, err := m.Lock("/d/./sub/../LOCK"); !errors.Is(err, vfs.ErrLocked) {
		t.Errorf("second Lock by another spelling: %v, want ErrLocked", err)
	}
	l2, err := m.Lock("/d/OTHER")
	if err != nil {
		t.Errorf("Lock of another name: %v", err)
	} else {
		l2.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = m.Lock("/d/LOCK")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	l.Close()
}

// TestWriteFileAtomicCrash fails WriteFileAtomic at every mutating
// operation, crashes with every tearing pattern and with random plans
// (CrashRandom, which also loses entries and pages), and checks that the file
// holds its old or its new contents, and the new ones if the call returned
// nil.
func TestWriteFileAtomicCrash(t *testing.T) {
	const name = "/d/file"
	tears := map[string]func(string, []byte) int{
		"none": nil,
		"half": func(_ string, b []byte) int { return len(b) / 2 },
		"all":  func(_ string, b []byte) int { return len(b) },
	}
	for _, old := range []string{"", "old contents"} { // "": no file before
		// Count the operations a successful call needs.
		m := memNew(t)
		if old != "" {
			memCreate(t, m, name, old, true, true).Close()
		}
		start := m.Ops()
		if err := vfs.WriteFileAtomic(m, name, []byte("new contents!"), 0o644); err != nil {
			t.Fatal(err)
		}
		total := m.Ops() - start
		if got := memContents(t, m.Crash(nil), name); got != "new contents!" {
			t.Fatalf("after a successful call and a crash: %q", got)
		}

		for k := 0; k <= total; k++ {
			for tname, tear := range tears {
				t.Run(fmt.Sprintf("old=%t/k=%d/%s", old != "", k, tname), func(t *testing.T) {
					m := memNew(t)
					want := "<absent>"
					if old != "" {
						memCreate(t, m, name, old, true, true).Close()
						want = old
					}
					m.FailAfter(k)
					err := vfs.WriteFileAtomic(m, name, []byte("new contents!"), 0o644)
					if (err == nil) != (k >= total) {
						t.Fatalf("FailAfter(%d) of %d: err = %v", k, total, err)
					}
					crashes := []*vfs.MemFS{m.Crash(tear)}
					for seed := range uint64(8) {
						crashes = append(crashes, m.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, uint64(k))))))
					}
					for i, c := range crashes {
						got := memContents(t, c, name)
						switch {
						case got == "new contents!":
						case err == nil:
							t.Errorf("crash %d: returned nil but a crash leaves %q", i, got)
						case got != want:
							t.Errorf("crash %d: leaves %q, want %q or the new contents", i, got, want)
						}
					}
				})
			}
		}
	}
}

// TestMemConcurrent writes, syncs and crashes from several goroutines; run
// with -race.
func TestMemConcurrent(t *testing.T) {
	m := memNew(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			f, err := m.OpenFile(fmt.Sprintf("/d/f%d", g), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 100 {
				f.Write([]byte{byte(i)})
				if i%10 == 0 {
					f.Sync()
					m.SyncDir("/d")
				}
			}
			f.Sync()
		})
	}
	wg.Go(func() {
		for range 20 {
			m.Crash(func(_ string, b []byte) int { return len(b) / 3 })
			m.ReadDir("/d")
		}
	})
	wg.Wait()
	m.SyncDir("/d")
	c := m.Crash(nil)
	for g := range 4 {
		b, err := c.ReadFile(fmt.Sprintf("/d/f%d", g))
		if err != nil || len(b) != 100 || !bytes.Equal(b[:3], []byte{0, 1, 2}) {
			t.Errorf("f%d after crash: %d bytes, %v", g, len(b), err)
		}
	}
}
