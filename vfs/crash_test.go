package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// memDump returns every directory ("<dir>") and file (its contents) under
// the root "/", by path.
func memDump(t *testing.T, m *vfs.MemFS) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := m.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name())
			if e.IsDir() {
				out[p] = "<dir>"
				walk(p)
			} else {
				out[p] = memContents(t, m, p)
			}
		}
	}
	walk("/")
	return out
}

// memOpen opens an existing file for writing at offset 0.
func memOpen(t *testing.T, m *vfs.MemFS, name string) vfs.File {
	t.Helper()
	f, err := m.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// keepNames is a KeepEntry that keeps the changes to the named entries
// ("dir/name") and records what it was asked.
type keepNames struct {
	keep  map[string]bool
	asked []string
}

func (k *keepNames) KeepEntry(dir, name string) bool {
	p := path.Join(dir, name)
	k.asked = append(k.asked, p)
	return k.keep[p]
}

// TestCrashEntries checks that each unsynced change to a directory entry is
// kept or lost on its own, that a rename is kept or lost whole, and that a
// directory whose entry is lost takes everything under it.
func TestCrashEntries(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, m *vfs.MemFS)
		keep  []string          // entries whose change the plan keeps
		asked []string          // entries the plan must be asked about, in order
		want  map[string]string // memDump of /d after the crash; nil: /d is lost
	}{
		{"two creates, neither kept", twoCreates, nil,
			[]string{"/d/a", "/d/b"}, map[string]string{}},
		{"two creates, first kept", twoCreates, []string{"/d/a"},
			[]string{"/d/a", "/d/b"}, map[string]string{"/d/a": "A"}},
		{"two creates, second kept", twoCreates, []string{"/d/b"},
			[]string{"/d/a", "/d/b"}, map[string]string{"/d/b": "B"}},
		{"two creates, both kept", twoCreates, []string{"/d/a", "/d/b"},
			[]string{"/d/a", "/d/b"}, map[string]string{"/d/a": "A", "/d/b": "B"}},
		{"rename over, lost", renameOver, nil,
			[]string{"/d/f"}, map[string]string{"/d/f": "old"}},
		{"rename over, kept", renameOver, []string{"/d/f"},
			[]string{"/d/f"}, map[string]string{"/d/f": "new"}},
		{"rename of a durable file, lost", renameDurable, nil,
			[]string{"/d/a"}, map[string]string{"/d/a": "A"}},
		{"rename of a durable file, kept", renameDurable, []string{"/d/a"},
			[]string{"/d/a"}, map[string]string{"/d/b": "A"}},
		{"rename away and create in its place, lost", renameAndRecreate, nil,
			[]string{"/d/a"}, map[string]string{"/d/a": "old"}},
		{"rename away and create in its place, kept", renameAndRecreate, []string{"/d/a"},
			[]string{"/d/a"}, map[string]string{"/d/a": "new", "/d/b": "old"}},
		{"remove, undone", removeFile, nil,
			[]string{"/d/f"}, map[string]string{"/d/f": "data"}},
		{"remove, kept", removeFile, []string{"/d/f"},
			[]string{"/d/f"}, map[string]string{}},
		{"remove and create again, lost", removeAndRecreate, nil,
			[]string{"/d/f"}, map[string]string{"/d/f": "first"}},
		{"remove and create again, kept", removeAndRecreate, []string{"/d/f"},
			[]string{"/d/f"}, map[string]string{"/d/f": "second"}},
		{"rename across directories, lost", renameAcross, nil,
			[]string{"/d/a"}, map[string]string{"/d/a": "A", "/d/e": "<dir>"}},
		{"rename across directories, kept", renameAcross, []string{"/d/a"},
			[]string{"/d/a"}, map[string]string{"/d/e": "<dir>", "/d/e/b": "A"}},
		{"new directory's entry lost", subtree, nil,
			[]string{"/d/sub"}, map[string]string{}},
		{"new directory's entry kept", subtree, []string{"/d/sub"},
			[]string{"/d/sub"}, map[string]string{
				"/d/sub": "<dir>", "/d/sub/f": "F", "/d/sub/deeper": "<dir>", "/d/sub/deeper/g": "G"}},
		{"new directory kept, its unsynced entries lost", subtreeUnsynced, []string{"/d/sub"},
			[]string{"/d/sub", "/d/sub/deeper", "/d/sub/f"}, map[string]string{"/d/sub": "<dir>"}},
		{"new directory and some entries kept", subtreeUnsynced, []string{"/d/sub", "/d/sub/deeper"},
			[]string{"/d/sub", "/d/sub/deeper", "/d/sub/deeper/g", "/d/sub/f"},
			map[string]string{"/d/sub": "<dir>", "/d/sub/deeper": "<dir>"}},
		{"directory removed, undone", removeDir, nil,
			[]string{"/d/sub", "/d/sub/f"}, map[string]string{"/d/sub": "<dir>", "/d/sub/f": "F"}},
		{"directory removed, kept", removeDir, []string{"/d/sub"},
			[]string{"/d/sub"}, map[string]string{}},
		{"parent of /d not synced", func(t *testing.T, m *vfs.MemFS) {
			m.Remove("/d")
			m.SyncDir("/")
			m.MkdirAll("/d", 0o755)
			memCreate(t, m, "/d/f", "data", true, true)
		}, nil, []string{"/d"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := memNew(t)
			tc.setup(t, m)
			before := memDump(t, m)
			k := &keepNames{keep: map[string]bool{}}
			for _, p := range tc.keep {
				k.keep[p] = true
			}
			c := m.CrashWith(vfs.CrashPlan{KeepEntry: k.KeepEntry})
			got := memDump(t, c)
			var want map[string]string
			if tc.want != nil {
				want = maps.Clone(tc.want)
				want["/d"] = "<dir>"
			}
			maps.DeleteFunc(got, func(p, _ string) bool { return p != "/d" && !strings.HasPrefix(p, "/d/") })
			if len(got) == 0 {
				got = nil
			}
			if !maps.Equal(got, want) {
				t.Errorf("after the crash:\n%v\nwant\n%v", got, want)
			}
			if !slices.Equal(k.asked, tc.asked) {
				t.Errorf("plan asked about %q, want %q", k.asked, tc.asked)
			}
			if after := memDump(t, m); !maps.Equal(after, before) {
				t.Errorf("the crash changed the live filesystem:\n%v\nwas\n%v", after, before)
			}
			if again := memDump(t, c.CrashWith(vfs.CrashPlan{})); !maps.Equal(again, memDump(t, c)) {
				t.Errorf("a second crash changed the image:\n%v\nwas\n%v", again, memDump(t, c))
			}
		})
	}
}

func twoCreates(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/a", "A", true, false)
	memCreate(t, m, "/d/b", "B", true, false)
}

func renameOver(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/f", "old", true, true)
	memCreate(t, m, "/d/g", "new", true, false)
	m.Rename("/d/g", "/d/f")
}

func renameDurable(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/a", "A", true, true)
	m.Rename("/d/a", "/d/b")
}

func renameAndRecreate(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/a", "old", true, true)
	m.Rename("/d/a", "/d/b")
	memCreate(t, m, "/d/a", "new", true, false)
}

func removeFile(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/f", "data", true, true)
	m.Remove("/d/f")
}

func removeAndRecreate(t *testing.T, m *vfs.MemFS) {
	memCreate(t, m, "/d/f", "first", true, true)
	m.Remove("/d/f")
	memCreate(t, m, "/d/f", "second", true, false)
}

func renameAcross(t *testing.T, m *vfs.MemFS) {
	m.MkdirAll("/d/e", 0o755)
	memCreate(t, m, "/d/a", "A", true, true) // also makes /d/e durable
	m.Rename("/d/a", "/d/e/b")
}

func subtree(t *testing.T, m *vfs.MemFS) {
	m.MkdirAll("/d/sub/deeper", 0o755)
	memCreate(t, m, "/d/sub/f", "F", true, false)
	memCreate(t, m, "/d/sub/deeper/g", "G", true, false)
	m.SyncDir("/d/sub")
	m.SyncDir("/d/sub/deeper")
}

func subtreeUnsynced(t *testing.T, m *vfs.MemFS) {
	m.MkdirAll("/d/sub/deeper", 0o755)
	memCreate(t, m, "/d/sub/f", "F", true, false)
	memCreate(t, m, "/d/sub/deeper/g", "G", true, false)
}

func removeDir(t *testing.T, m *vfs.MemFS) {
	m.MkdirAll("/d/sub", 0o755)
	memCreate(t, m, "/d/sub/f", "F", true, false)
	m.SyncDir("/d/sub")
	m.SyncDir("/d")
	m.Remove("/d/sub/f")
	if err := m.Remove("/d/sub"); err != nil {
		t.Fatal(err)
	}
}

// TestCrashDirectoryDurability checks that a directory made by MkdirAll is
// durable once, and only once, its parent is synced.
func TestCrashDirectoryDurability(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprint("parent synced=", synced), func(t *testing.T) {
			m := vfs.NewMem()
			if err := m.MkdirAll("/a/b", 0o755); err != nil {
				t.Fatal(err)
			}
			m.SyncDir("/a")
			if synced {
				m.SyncDir("/")
			}
			for _, root := range []string{"/", "."} {
				if fi, err := m.Crash(nil).Stat(root); err != nil || !fi.IsDir() {
					t.Errorf("root %s after a crash: %v, %v", root, fi, err)
				}
			}
			_, err := m.Crash(nil).Stat("/a/b")
			if synced != (err == nil) {
				t.Errorf("/a/b after a crash: %v", err)
			}
		})
	}
}

// TestCrashPages checks how a crash keeps a file's unsynced bytes: by 4 KiB
// page, a later one without an earlier one, a size anywhere from the synced
// to the current one, and a page holding the end of the synced bytes
// keeping them whatever happens to the rest of it.
func TestCrashPages(t *testing.T) {
	const P = vfs.PageSize
	rep := func(c string, n int) string { return strings.Repeat(c, n) }
	zeros := func(n int) string { return rep("\x00", n) }
	appendPages := func(t *testing.T, m *vfs.MemFS) { // synced empty; three pages a, b, c
		f := memCreate(t, m, "/d/f", "", true, true)
		f.Write([]byte(rep("a", P) + rep("b", P) + rep("c", P)))
	}
	appendTail := func(t *testing.T, m *vfs.MemFS) { // synced x*100; then y up to 2 pages + 100
		f := memCreate(t, m, "/d/f", rep("x", 100), true, true)
		f.Write([]byte(rep("y", 2*P)))
	}
	overwrite := func(t *testing.T, m *vfs.MemFS) { // synced a*2P; b*10 written at 0 and at P+10
		memCreate(t, m, "/d/f", rep("a", 2*P), true, true)
		f := memOpen(t, m, "/d/f")
		f.Write([]byte(rep("b", 10)))
		f.Read(make([]byte, P))
		f.Write([]byte(rep("b", 10)))
	}
	lastPage := func(t *testing.T, m *vfs.MemFS) { // synced a*3P; b*10 written at 2P+5
		memCreate(t, m, "/d/f", rep("a", 3*P), true, true)
		f := memOpen(t, m, "/d/f")
		f.Read(make([]byte, 2*P+5))
		f.Write([]byte(rep("b", 10)))
	}
	shrink := func(t *testing.T, m *vfs.MemFS) { // synced a*2P; cut to 100, then b*100 appended
		f := memCreate(t, m, "/d/f", rep("a", 2*P), true, true)
		f.Truncate(100)
		f.Write([]byte(rep("b", 100)))
	}
	grow := func(t *testing.T, m *vfs.MemFS) { // synced "abc"; grown to 2P
		f := memCreate(t, m, "/d/f", "abc", true, true)
		f.Truncate(2 * P)
	}
	pages := func(offs ...int64) func(string, int64) bool {
		return func(_ string, off int64) bool { return slices.Contains(offs, off) }
	}
	size := func(n int64) func(string, int64, int64) int64 {
		return func(string, int64, int64) int64 { return n }
	}
	current := func(_ string, _, c int64) int64 { return c }
	tests := []struct {
		name     string
		setup    func(t *testing.T, m *vfs.MemFS)
		size     func(name string, synced, current int64) int64
		keep     func(name string, off int64) bool
		want     string
		sizeArgs string  // the synced and current sizes Size must see; "": not asked
		asked    []int64 // the pages KeepPage must be asked about
	}{
		{"all pages lost", appendPages, current, pages(), zeros(3 * P), "0 12288", []int64{0, P, 2 * P}},
		{"all pages kept", appendPages, current, pages(0, P, 2*P), rep("a", P) + rep("b", P) + rep("c", P), "0 12288", []int64{0, P, 2 * P}},
		{"later page kept, earlier lost", appendPages, current, pages(2 * P), zeros(2*P) + rep("c", P), "0 12288", []int64{0, P, 2 * P}},
		{"middle page lost", appendPages, current, pages(0, 2*P), rep("a", P) + zeros(P) + rep("c", P), "0 12288", []int64{0, P, 2 * P}},
		{"size cut mid-page", appendPages, size(P + 5), pages(0, P, 2*P), rep("a", P) + "bbbbb", "0 12288", []int64{0, P}},
		{"size cut to nothing", appendPages, size(0), pages(0, P, 2*P), "", "0 12288", nil},
		{"size beyond the current one is clamped", appendPages, size(1 << 20), pages(0, P, 2*P), rep("a", P) + rep("b", P) + rep("c", P), "0 12288", []int64{0, P, 2 * P}},
		{"nil Size keeps the synced size", appendPages, nil, pages(0), "", "", nil},
		{"boundary page lost keeps the synced bytes", appendTail, current, pages(), rep("x", 100) + zeros(2*P), "100 8292", []int64{0, P, 2 * P}},
		{"boundary page kept, next lost", appendTail, current, pages(0, 2*P), rep("x", 100) + rep("y", P-100) + zeros(P) + rep("y", 100), "100 8292", []int64{0, P, 2 * P}},
		{"boundary page lost, next kept", appendTail, current, pages(P), rep("x", 100) + zeros(P-100) + rep("y", P) + zeros(100), "100 8292", []int64{0, P, 2 * P}},
		{"overwrite, both kept", overwrite, nil, pages(0, P), "bbbbbbbbbb" + rep("a", P) + "bbbbbbbbbb" + rep("a", P-20), "", []int64{0, P}},
		{"overwrite, later kept", overwrite, nil, pages(P), rep("a", P+10) + "bbbbbbbbbb" + rep("a", P-20), "", []int64{0, P}},
		{"overwrite, both lost", overwrite, nil, pages(), rep("a", 2*P), "", []int64{0, P}},
		{"only the changed page is asked about, kept", lastPage, nil, pages(2 * P), rep("a", 2*P+5) + rep("b", 10) + rep("a", P-15), "", []int64{2 * P}},
		{"only the changed page is asked about, lost", lastPage, nil, pages(), rep("a", 3*P), "", []int64{2 * P}},
		{"shrink lost", shrink, size(2 * P), pages(), rep("a", 2*P), "8192 200", []int64{0, P}},
		{"shrink kept, size between", shrink, size(P + 1), pages(0, P), rep("a", 100) + rep("b", 100) + rep("a", P-200) + "a", "8192 200", []int64{0, P}},
		{"shrink kept to the current size", shrink, current, pages(0), rep("a", 100) + rep("b", 100), "8192 200", []int64{0}},
		{"grow lost", grow, current, pages(), "abc" + zeros(2*P-3), "3 8192", []int64{0, P}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := memNew(t)
			tc.setup(t, m)
			var sizeArgs string
			var asked []int64
			plan := vfs.CrashPlan{KeepPage: func(name string, off int64) bool {
				if name != "/d/f" {
					t.Errorf("KeepPage asked about %s", name)
				}
				asked = append(asked, off)
				return tc.keep(name, off)
			}}
			if tc.size != nil {
				plan.Size = func(name string, synced, current int64) int64 {
					sizeArgs = fmt.Sprint(synced, " ", current)
					return tc.size(name, synced, current)
				}
			}
			c := m.CrashWith(plan)
			if got := memContents(t, c, "/d/f"); got != tc.want {
				t.Errorf("after the crash: %d bytes %q,\nwant %d bytes %q", len(got), abbrev(got), len(tc.want), abbrev(tc.want))
			}
			if sizeArgs != tc.sizeArgs {
				t.Errorf("Size saw %q, want %q", sizeArgs, tc.sizeArgs)
			}
			if !slices.Equal(asked, tc.asked) {
				t.Errorf("KeepPage asked about %v, want %v", asked, tc.asked)
			}
			if again := memContents(t, c.CrashWith(vfs.CrashPlan{}), "/d/f"); again != tc.want {
				t.Errorf("a second crash changed the file to %q", abbrev(again))
			}
		})
	}
}

// abbrev run-length encodes s for messages: "a*4096 b*5".
func abbrev(s string) string {
	var out []string
	for len(s) > 0 {
		n := len(s) - len(strings.TrimLeft(s, s[:1]))
		out = append(out, fmt.Sprintf("%q*%d", s[:1], n))
		s = s[n:]
	}
	return strings.Join(out, " ")
}

// TestCrashRandomReproduces checks that one seed gives one crash image.
func TestCrashRandomReproduces(t *testing.T) {
	m := memNew(t)
	for i := range 8 {
		f := memCreate(t, m, fmt.Sprintf("/d/f%d", i), strings.Repeat("s", 5000), true, i%2 == 0)
		f.Write([]byte(strings.Repeat("u", 9000)))
	}
	dumps := map[string]bool{}
	for range 3 {
		dumps[fmt.Sprint(memDump(t, m.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(7, 7))))))] = true
	}
	if len(dumps) != 1 {
		t.Errorf("one seed gave %d different images", len(dumps))
	}
}

// memShadow is what a test knows must survive a crash of a MemFS it drives:
// for each live file, its bytes now and at its last Sync; for each live
// entry, whether its directory was synced since it last changed.
type memShadow struct {
	files   map[string]*shadowFile
	durable map[string]bool // entry path -> synced by its directory
	dirs    map[string]bool // live directories
}

type shadowFile struct{ data, synced []byte }

// guaranteed reports whether p's entry and every directory's above it are
// durable.
func (s *memShadow) guaranteed(p string) bool {
	for ; p != "/"; p = path.Dir(p) {
		if !s.durable[p] {
			return false
		}
	}
	return true
}

// check verifies, against a crash image c, that every file whose entry and
// directories are durable survived: exactly, if it was clean; else with a
// size from its synced to its current one and each byte either its
// current, its synced or (past the synced end) zero.
func (s *memShadow) check(t *testing.T, c *vfs.MemFS) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(s.files)) {
		f := s.files[p]
		if !s.guaranteed(p) {
			continue
		}
		got, err := c.ReadFile(p)
		if err != nil {
			t.Fatalf("durable %s lost: %v", p, err)
		}
		if bytes.Equal(f.data, f.synced) && !bytes.Equal(got, f.synced) {
			t.Fatalf("durable, synced %s holds %q, want %q", p, abbrev(string(got)), abbrev(string(f.synced)))
		}
		lo, hi := min(len(f.data), len(f.synced)), max(len(f.data), len(f.synced))
		if len(got) < lo || len(got) > hi {
			t.Fatalf("durable %s has %d bytes, want %d to %d", p, len(got), lo, hi)
		}
		for i, b := range got {
			ok := (i < len(f.data) && b == f.data[i]) || (i < len(f.synced) && b == f.synced[i]) || (i >= len(f.synced) && b == 0)
			if !ok {
				t.Fatalf("durable %s: byte %d is %q, neither current, synced nor a lost page's zero", p, i, b)
			}
		}
	}
}

// TestCrashRandomDurable runs random operation sequences on a MemFS,
// crashes with CrashRandom, and checks that whatever was synced, with its
// directory entries synced, survived, and that a crash image is durable.
func TestCrashRandomDurable(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := memNew(t)
		s := &memShadow{files: map[string]*shadowFile{}, durable: map[string]bool{"/d": true}, dirs: map[string]bool{"/": true, "/d": true}}
		var trace []string
		for range 40 {
			trace = append(trace, randomOp(t, rng, m, s))
		}
		c := m.CrashWith(vfs.CrashRandom(rng))
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("operations:\n%s", strings.Join(trace, "\n"))
				}
			}()
			s.check(t, c)
			image := memDump(t, c)
			if again := memDump(t, c.CrashWith(vfs.CrashRandom(rng))); !maps.Equal(again, image) {
				t.Fatalf("a second crash changed the image")
			}
		})
	}
}

// randomOp applies one random operation to m and the shadow, and describes
// it.
func randomOp(t *testing.T, rng *rand.Rand, m *vfs.MemFS, s *memShadow) string {
	t.Helper()
	dirs := []string{"/d", "/d/e", "/g"}
	dir := dirs[rng.IntN(len(dirs))]
	name := path.Join(dir, fmt.Sprint("f", rng.IntN(3)))
	other := path.Join(dirs[rng.IntN(len(dirs))], fmt.Sprint("f", rng.IntN(3)))
	f, exists := s.files[name]
	switch op := rng.IntN(9); {
	case op == 0:
		if err := m.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for d := dir; !s.dirs[d]; d = path.Dir(d) {
			s.dirs[d], s.durable[d] = true, false
		}
		return "mkdirall " + dir
	case op == 1:
		if !s.dirs[dir] {
			return "skip"
		}
		if err := m.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
		for p := range s.durable {
			if path.Dir(p) == dir {
				s.durable[p] = true
			}
		}
		return "syncdir " + dir
	case op == 2:
		if !s.dirs[dir] || exists {
			return "skip"
		}
		memCreate(t, m, name, "", false, false).Close()
		s.files[name], s.durable[name] = &shadowFile{}, false
		return "create " + name
	case op <= 4 && exists: // write at the end or at 0, up to two pages
		data := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(2*vfs.PageSize))
		fl := os.O_RDWR
		if op == 3 {
			fl |= os.O_APPEND
		}
		h, err := m.OpenFile(name, fl, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(data)
		h.Close()
		if op == 3 {
			f.data = append(f.data, data...)
		} else {
			grown := max(len(f.data), len(data))
			f.data = append(f.data, make([]byte, grown-len(f.data))...)
			copy(f.data, data)
		}
		return fmt.Sprintf("write %s %d %q at %s", name, len(data), data[:min(1, len(data))], map[bool]string{true: "end", false: "0"}[op == 3])
	case op == 5 && exists:
		h := memOpen(t, m, name)
		if err := h.Sync(); err != nil {
			t.Fatal(err)
		}
		h.Close()
		f.synced = slices.Clone(f.data)
		return "sync " + name
	case op == 6 && exists:
		n := rng.IntN(3 * vfs.PageSize)
		h := memOpen(t, m, name)
		h.Truncate(int64(n))
		h.Close()
		f.data = append(f.data[:min(n, len(f.data)):min(n, len(f.data))], make([]byte, max(0, n-len(f.data)))...)
		return fmt.Sprintf("truncate %s %d", name, n)
	case op == 7 && exists:
		if !s.dirs[path.Dir(other)] || other == name {
			return "skip"
		}
		if err := m.Rename(name, other); err != nil {
			t.Fatal(err)
		}
		s.files[other], s.durable[other] = f, false
		delete(s.files, name)
		delete(s.durable, name)
		return "rename " + name + " " + other
	case op == 8 && exists:
		if err := m.Remove(name); err != nil {
			t.Fatal(err)
		}
		delete(s.files, name)
		delete(s.durable, name)
		return "remove " + name
	}
	return "skip"
}

// TestCrashRenameKeepsDurableFile checks, at random, that a rename of a
// durable file leaves it under its old or its new name, never neither.
func TestCrashRenameKeepsDurableFile(t *testing.T) {
	for seed := range uint64(64) {
		m := memNew(t)
		m.MkdirAll("/d/e", 0o755)
		memCreate(t, m, "/d/a", "A", true, true)
		m.Rename("/d/a", "/d/b")
		m.Rename("/d/b", "/d/e/c")
		memCreate(t, m, "/d/a", "new", true, false)
		c := m.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, 2))))
		found := 0
		for _, p := range []string{"/d/a", "/d/b", "/d/e/c"} {
			if b, err := c.ReadFile(p); err == nil && string(b) == "A" {
				found++
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		if found != 1 {
			t.Errorf("seed %d: the durable file is under %d names after the crash: %v", seed, found, memDump(t, c))
		}
	}
}
