package raftstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/internal/corrupt"
	"github.com/goatdb/goatdb/vfs"
)

const dir = "/data/raft"

// open opens the store in dir on fsys and closes it when the test ends,
// unless the test closed it first.
func open(t testing.TB, fsys vfs.FS, dir string) *raftstore.Store {
	t.Helper()
	s, err := raftstore.Open(fsys, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen closes s and opens its directory again.
func reopen(t testing.TB, s *raftstore.Store, fsys vfs.FS, dir string) *raftstore.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return open(t, fsys, dir)
}

// entry returns a log entry whose fields all derive from its index.
func entry(i uint64) *raft.Log {
	l := &raft.Log{Index: i, Term: i/3 + 1, Type: raft.LogType(i % 5),
		Data:       fmt.Appendf(nil, "data %d", i),
		AppendedAt: time.Unix(1_700_000_000+int64(i), int64(i)*1000).UTC()}
	if i%2 == 0 {
		l.Extensions = fmt.Appendf(nil, "ext %d", i)
	}
	return l
}

// entries returns entry(i) for i from lo to hi, inclusive.
func entries(lo, hi uint64) []*raft.Log {
	var ls []*raft.Log
	for i := lo; i <= hi; i++ {
		ls = append(ls, entry(i))
	}
	return ls
}

// store stores logs, failing the test on error.
func store(t testing.TB, s *raftstore.Store, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

// sameLog reports whether a and b are the same entry (times compared with
// Equal, nil and empty slices alike).
func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

// readAll returns every entry of s, from FirstIndex to LastIndex, skipping
// the gaps.
func readAll(t testing.TB, s *raftstore.Store) []*raft.Log {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if (first == 0) != (last == 0) || first > last {
		t.Fatalf("FirstIndex %d, LastIndex %d", first, last)
	}
	var out []*raft.Log
	for i := first; first != 0 && i <= last; i++ {
		var l raft.Log
		switch err := s.GetLog(i, &l); {
		case errors.Is(err, raft.ErrLogNotFound):
			if i == first || i == last {
				t.Fatalf("GetLog(%d), the first or last index: %v", i, err)
			}
		case err != nil:
			t.Fatalf("GetLog(%d): %v", i, err)
		default:
			if l.Index != i {
				t.Fatalf("GetLog(%d) returned index %d", i, l.Index)
			}
			out = append(out, &l)
		}
	}
	return out
}

// checkLogs fails the test unless s holds exactly want.
func checkLogs(t testing.TB, s *raftstore.Store, want []*raft.Log) {
	t.Helper()
	got := readAll(t, s)
	if !slices.EqualFunc(got, want, sameLog) {
		t.Fatalf("store holds %s, want %s", indexes(got), indexes(want))
	}
}

func indexes(ls []*raft.Log) string {
	var b []byte
	for _, l := range ls {
		b = fmt.Appendf(b, "%d/%d ", l.Index, l.Term)
	}
	return fmt.Sprintf("[%s]", bytes.TrimSpace(b))
}

func TestEmpty(t *testing.T) {
	s := open(t, vfs.NewMem(), dir)
	for name, f := range map[string]func() (uint64, error){"FirstIndex": s.FirstIndex, "LastIndex": s.LastIndex} {
		if i, err := f(); i != 0 || err != nil {
			t.Errorf("%s of an empty store = %d, %v; want 0, nil", name, i, err)
		}
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("GetLog(1) = %v, want raft.ErrLogNotFound", err)
	}
}

func TestStoreAndGet(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	store(t, s, entry(1))
	if err := s.StoreLog(entry(2)); err != nil {
		t.Fatal(err)
	}
	store(t, s, entries(3, 10)...)
	zero := &raft.Log{Index: 11} // zero time, no data
	store(t, s, zero)
	want := append(entries(1, 10), zero)
	checkLogs(t, s, want)
	var l raft.Log
	if err := s.GetLog(11, &l); err != nil || !l.AppendedAt.IsZero() || l.Data != nil {
		t.Errorf("GetLog(11) = %+v, %v; want a zero time and nil data", l, err)
	}
	for _, i := range []uint64{0, 12, 1 << 63} {
		if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Errorf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
		}
	}
	checkLogs(t, reopen(t, s, fsys, dir), want)
}

// TestStoreCopies checks that the store keeps its own copy of an entry.
func TestStoreCopies(t *testing.T) {
	s := open(t, vfs.NewMem(), dir)
	l := entry(1)
	store(t, s, l)
	l.Data[0] = 'X'
	checkLogs(t, s, []*raft.Log{entry(1)})
}

func TestStoreOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch []uint64
	}{
		{"index 0", []uint64{0}},
		{"repeat the last", []uint64{5}},
		{"below the last", []uint64{3}},
		{"decreasing in the batch", []uint64{7, 6}},
		{"repeated in the batch", []uint64{6, 6}},
		{"valid then invalid", []uint64{6, 7, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			s := open(t, fsys, dir)
			store(t, s, entries(1, 5)...)
			var batch []*raft.Log
			for _, i := range tc.batch {
				batch = append(batch, entry(i))
			}
			if err := s.StoreLogs(batch); !errors.Is(err, raftstore.ErrOutOfOrder) {
				t.Fatalf("StoreLogs(%v) = %v, want ErrOutOfOrder", tc.batch, err)
			}
			checkLogs(t, s, entries(1, 5))
			store(t, s, entry(6)) // the store still takes writes
			checkLogs(t, reopen(t, s, fsys, dir), entries(1, 6))
		})
	}
}

func TestStoreGap(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	store(t, s, entries(1, 3)...)
	store(t, s, entries(10, 12)...)
	want := append(entries(1, 3), entries(10, 12)...)
	checkLogs(t, s, want)
	checkLogs(t, reopen(t, s, fsys, dir), want)
}

func TestTooLarge(t *testing.T) {
	s := open(t, vfs.NewMem(), dir)
	big := &raft.Log{Index: 1, Data: make([]byte, raftstore.MaxFrame)}
	if err := s.StoreLogs([]*raft.Log{big}); !errors.Is(err, raftstore.ErrTooLarge) {
		t.Fatalf("StoreLogs of a %d-byte entry = %v, want ErrTooLarge", len(big.Data), err)
	}
	if err := s.Set([]byte("k"), make([]byte, raftstore.MaxFrame)); !errors.Is(err, raftstore.ErrTooLarge) {
		t.Fatalf("Set of a %d-byte value = %v, want ErrTooLarge", raftstore.MaxFrame, err)
	}
	checkLogs(t, s, nil)
}

// TestBatchOverMaxFrame stores a batch that needs three frames.
func TestBatchOverMaxFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB")
	}
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	var batch []*raft.Log
	for i := uint64(1); i <= 5; i++ {
		batch = append(batch, &raft.Log{Index: i, Data: bytes.Repeat([]byte{byte(i)}, raftstore.MaxFrame/3)})
	}
	store(t, s, batch...)
	checkLogs(t, s, batch)
	checkLogs(t, reopen(t, s, fsys, dir), batch)
}

func TestDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		min, max uint64
		want     []*raft.Log
	}{
		{"prefix", 1, 4, entries(5, 10)},
		{"prefix past the first", 0, 4, entries(5, 10)},
		{"suffix", 7, 10, entries(1, 6)},
		{"suffix past the last", 7, 1 << 62, entries(1, 6)},
		{"middle", 4, 6, append(entries(1, 3), entries(7, 10)...)},
		{"all", 1, 10, nil},
		{"none", 11, 20, entries(1, 10)},
		{"empty range", 6, 5, entries(1, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			s := open(t, fsys, dir)
			store(t, s, entries(1, 5)...)
			store(t, s, entries(6, 10)...)
			if err := s.DeleteRange(tc.min, tc.max); err != nil {
				t.Fatalf("DeleteRange(%d, %d): %v", tc.min, tc.max, err)
			}
			checkLogs(t, s, tc.want)
			s = reopen(t, s, fsys, dir)
			checkLogs(t, s, tc.want)
			// The log takes appends after a rewrite, and keeps them.
			next := uint64(11)
			store(t, s, entry(next))
			checkLogs(t, reopen(t, s, fsys, dir), append(slices.Clone(tc.want), entry(next)))
		})
	}
}

// TestDeleteSuffixThenStore is what a follower does when its log
// conflicts with the leader's: delete a suffix, then store new entries at
// the same indexes.
func TestDeleteSuffixThenStore(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	store(t, s, entries(1, 6)...)
	if err := s.DeleteRange(4, 6); err != nil {
		t.Fatal(err)
	}
	replaced := []*raft.Log{{Index: 4, Term: 9, Data: []byte("new 4")}, {Index: 5, Term: 9}}
	store(t, s, replaced...)
	want := append(entries(1, 3), replaced...)
	checkLogs(t, s, want)
	checkLogs(t, reopen(t, s, fsys, dir), want)
}

func TestStable(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	if v, err := s.Get([]byte("missing")); v != nil || !errors.Is(err, raftstore.ErrKeyNotFound) || err.Error() != "not found" {
		t.Errorf("Get of a missing key = %q, %v; want nil and the error \"not found\" raft looks for", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); v != 0 || err != nil {
		t.Errorf("GetUint64 of a missing key = %d, %v; want 0, nil", v, err)
	}
	// Raft's InmemStore behaves the same.
	mem := raft.NewInmemStore()
	if _, err := mem.Get([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Errorf("raft.InmemStore.Get of a missing key: %v", err)
	}
	if v, err := mem.GetUint64([]byte("missing")); v != 0 || err != nil {
		t.Errorf("raft.InmemStore.GetUint64 of a missing key = %d, %v", v, err)
	}

	val := []byte("candidate-1")
	for _, err := range []error{
		s.Set([]byte("LastVoteCand"), val),
		s.SetUint64([]byte("CurrentTerm"), 7),
		s.SetUint64([]byte("CurrentTerm"), 1<<40+3),
		s.Set([]byte("empty"), nil),
		s.Set([]byte("short"), []byte{1, 2}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	val[0] = 'X' // Set keeps a copy
	check := func(s *raftstore.Store) {
		t.Helper()
		if v, err := s.Get([]byte("LastVoteCand")); string(v) != "candidate-1" || err != nil {
			t.Errorf("Get = %q, %v", v, err)
		}
		if v, err := s.GetUint64([]byte("CurrentTerm")); v != 1<<40+3 || err != nil {
			t.Errorf("GetUint64 = %d, %v", v, err)
		}
		if v, err := s.Get([]byte("empty")); v == nil || len(v) != 0 || err != nil {
			t.Errorf("Get of a key set to nothing = %q, %v; want an empty value", v, err)
		}
		if _, err := s.GetUint64([]byte("short")); !errors.Is(err, raftstore.ErrNotUint64) {
			t.Errorf("GetUint64 of a 2-byte value: %v, want ErrNotUint64", err)
		}
	}
	check(s)
	check(reopen(t, s, fsys, dir))
}

func TestClosed(t *testing.T) {
	s, err := raftstore.Open(vfs.NewMem(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	for name, err := range map[string]error{
		"Close":       s.Close(),
		"StoreLogs":   s.StoreLogs([]*raft.Log{entry(1)}),
		"DeleteRange": s.DeleteRange(1, 2),
		"GetLog":      s.GetLog(1, &l),
		"Set":         s.Set([]byte("k"), nil),
		"SetUint64":   s.SetUint64([]byte("k"), 1),
	} {
		if !errors.Is(err, raftstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	for name, f := range map[string]func() (uint64, error){"FirstIndex": s.FirstIndex, "LastIndex": s.LastIndex} {
		if _, err := f(); !errors.Is(err, raftstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestLocked(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	if _, err := raftstore.Open(fsys, dir); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second Open = %v, want vfs.ErrLocked", err)
	}
	reopen(t, s, fsys, dir)
}

// TestFailedWrite checks that a store whose write failed takes no more
// writes, still reads what was acknowledged, and opens again with it.
func TestFailedWrite(t *testing.T) {
	for _, op := range []string{"write", "sync", "rename"} {
		t.Run(op, func(t *testing.T) {
			fsys := vfs.NewMem()
			s := open(t, fsys, dir)
			store(t, s, entries(1, 3)...)
			fsys.SetHook(func(o, name string) error {
				if o == op {
					return vfs.ErrInjected
				}
				return nil
			})
			var err error
			if op == "rename" {
				err = s.DeleteRange(1, 1)
			} else {
				err = s.StoreLogs(entries(4, 4))
			}
			if !errors.Is(err, raftstore.ErrFailed) || !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("write with a failing %s = %v, want ErrFailed wrapping the fault", op, err)
			}
			fsys.SetHook(nil)
			if err := s.StoreLogs(entries(5, 5)); !errors.Is(err, raftstore.ErrFailed) {
				t.Fatalf("StoreLogs after a failure = %v, want ErrFailed", err)
			}
			if err := s.Set([]byte("k"), nil); !errors.Is(err, raftstore.ErrFailed) {
				t.Fatalf("Set after a failure = %v, want ErrFailed", err)
			}
			checkLogs(t, s, entries(1, 3))
			s = reopen(t, s, fsys, dir)
			got := readAll(t, s)
			if !slices.EqualFunc(got, entries(1, 3), sameLog) && !slices.EqualFunc(got, entries(1, 4), sameLog) {
				t.Fatalf("after reopening: %s", indexes(got))
			}
			store(t, s, entry(10))
		})
	}
}

// TestOpenDamaged changes the files of a store holding three frames
// (entries 1-2, 3-4 and 5-6) and checks what Open makes of them.
func TestOpenDamaged(t *testing.T) {
	logPath, stablePath := filepath.Join(dir, "log"), filepath.Join(dir, "stable")
	type files struct{ log, stable []byte }
	const header = 24
	for _, tc := range []struct {
		name   string
		change func(f *files, frames []int) // frames: the offset of each frame, then the end
		want   []*raft.Log                  // nil: Open fails
		err    error
	}{
		{"intact", func(*files, []int) {}, entries(1, 6), nil},
		{"last frame cut short", func(f *files, fr []int) { f.log = f.log[:fr[3]-5] }, entries(1, 4), nil},
		{"last frame's header only", func(f *files, fr []int) { f.log = f.log[:fr[2]+12] }, entries(1, 4), nil},
		{"a few bytes of a frame", func(f *files, fr []int) { f.log = f.log[:fr[2]+3] }, entries(1, 4), nil},
		{"last frame zeroed", func(f *files, fr []int) { clear(f.log[fr[2]:]) }, entries(1, 4), nil},
		{"last frame's length zeroed", func(f *files, fr []int) { clear(f.log[fr[2] : fr[2]+4]) }, entries(1, 4), nil},
		{"last frame's body changed", func(f *files, fr []int) { f.log[fr[3]-1] ^= 1 }, entries(1, 4), nil},
		{"garbage after the last frame", func(f *files, _ []int) { f.log = append(f.log, "garbage, not a frame"...) }, entries(1, 6), nil},
		{"zeros after the last frame", func(f *files, _ []int) { f.log = append(f.log, make([]byte, 9000)...) }, entries(1, 6), nil},
		{"middle frame's body changed", func(f *files, fr []int) { f.log[fr[2]-1] ^= 1 }, nil, raftstore.ErrCorrupt},
		{"middle frame's length changed", func(f *files, fr []int) { f.log[fr[1]] ^= 1 }, nil, raftstore.ErrCorrupt},
		{"middle frame zeroed", func(f *files, fr []int) { clear(f.log[fr[1]:fr[2]]) }, nil, raftstore.ErrCorrupt},
		{"first frame's length huge", func(f *files, fr []int) { f.log[fr[0]+3] = 0xff }, nil, raftstore.ErrCorrupt},
		{"middle frame cut out", func(f *files, fr []int) { f.log = append(f.log[:fr[1]], f.log[fr[2]:]...) }, nil, raftstore.ErrCorrupt},
		{"middle frame copied over the last", func(f *files, fr []int) { copy(f.log[fr[2]:], f.log[fr[1]:fr[2]]) }, nil, raftstore.ErrCorrupt},
		{"header changed", func(f *files, _ []int) { f.log[14] ^= 1 }, nil, raftstore.ErrCorrupt},
		{"header cut short", func(f *files, _ []int) { f.log = f.log[:header-1] }, nil, raftstore.ErrCorrupt},
		{"empty log", func(f *files, _ []int) { f.log = []byte{} }, nil, raftstore.ErrCorrupt},
		{"not a log", func(f *files, _ []int) { copy(f.log, "something else") }, nil, raftstore.ErrCorrupt},
		{"log missing", func(f *files, _ []int) { f.log = nil }, nil, raftstore.ErrCorrupt},
		{"stable changed", func(f *files, _ []int) { f.stable[len(f.stable)-5] ^= 1 }, nil, raftstore.ErrCorrupt},
		{"stable cut short", func(f *files, _ []int) { f.stable = f.stable[:len(f.stable)-1] }, nil, raftstore.ErrCorrupt},
		{"stable missing", func(f *files, _ []int) { f.stable = nil }, entries(1, 6), nil},
		{"log version 2", func(f *files, _ []int) { f.log[8] = 2; fixHeader(f.log) }, nil, raftstore.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := vfs.NewMem()
			s := open(t, fsys, dir)
			frames := []int{header}
			for i := uint64(1); i <= 5; i += 2 {
				store(t, s, entries(i, i+1)...)
				frames = append(frames, int(logSize(t, fsys, logPath)))
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			f := files{read(t, fsys, logPath), read(t, fsys, stablePath)}
			tc.change(&f, frames)
			write(t, fsys, logPath, f.log)
			write(t, fsys, stablePath, f.stable)

			s, err := raftstore.Open(fsys, dir)
			if tc.want == nil {
				if !errors.Is(err, tc.err) || (tc.err == raftstore.ErrCorrupt && !errors.Is(err, corrupt.Err)) {
					t.Fatalf("Open = %v, want %v", err, tc.err)
				}
				after := files{readMaybe(t, fsys, logPath), readMaybe(t, fsys, stablePath)}
				if !bytes.Equal(after.log, f.log) || !bytes.Equal(after.stable, f.stable) {
					t.Fatal("a failed Open changed the files")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			checkLogs(t, s, tc.want)
			// A torn tail is cut off, so what is stored next follows the
			// surviving frames and is read back after them.
			store(t, s, entry(7))
			checkLogs(t, reopen(t, s, fsys, dir), append(tc.want, entry(7)))
		})
	}
}

// TestHiddenFrame stores an entry whose data holds bytes laid out as a
// frame, checksummed with a guessed salt, then tears that entry's frame:
// Open must see a torn tail, not damage.
func TestHiddenFrame(t *testing.T) {
	fsys := vfs.NewMem()
	s := open(t, fsys, dir)
	store(t, s, entries(1, 2)...)
	logPath := filepath.Join(dir, "log")
	fake := raftstore.ForgeFrame(0, 2, []*raft.Log{entry(3), entry(4)})
	store(t, s, &raft.Log{Index: 3, Data: append(fake, make([]byte, 100)...)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := read(t, fsys, logPath)
	write(t, fsys, logPath, data[:len(data)-50]) // torn in the padding after the fake frame
	s = open(t, fsys, dir)
	checkLogs(t, s, entries(1, 2))
}

// fixHeader recomputes the checksum of a log file's header.
func fixHeader(log []byte) {
	binary.LittleEndian.PutUint32(log[20:], crc32.Checksum(log[:20], crc32.MakeTable(crc32.Castagnoli)))
}

func logSize(t testing.TB, fsys vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func read(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readMaybe returns the contents of name, or nil if it does not exist.
func readMaybe(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}

// write replaces name with data, durably, or removes it if data is nil.
func write(t testing.TB, fsys vfs.FS, name string, data []byte) {
	t.Helper()
	var err error
	if data == nil {
		err = fsys.Remove(name)
	} else {
		err = vfs.WriteFileAtomic(fsys, name, data, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}
