package repo_test

// Damaged logs and failing disks: torn tails cut at every byte, a flipped
// byte at every position of a record in the middle, damaged headers and
// files that are not logs, and failing writes and fsyncs.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// faultLog is a real log file written by a workload, with the bounds of
// every record.
type faultLog struct {
	data   []byte
	model  *crashModel
	bounds [][2]int64  // bounds[i]: record i's start and end offsets
	ids    []commit.ID // ids[i]: record i's commit
	encs   [][]byte    // encs[i]: record i's commit encoding
	seqs   map[commit.ID]uint64
}

// writeFaultLog runs steps of one key each on the real filesystem and
// returns the resulting log.
func writeFaultLog(t *testing.T, steps []crashStep) *faultLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.log")
	r, err := repo.Open(path, &repo.Options{Key: crashKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	l := &faultLog{model: newCrashModel(steps), seqs: map[commit.ID]uint64{}}
	for _, s := range steps {
		start := r.Seq()
		cs, err := r.Write(crashUpdates(s)...)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Fatalf("step %v wrote %d commits, want 1", s, len(cs))
		}
		l.bounds = append(l.bounds, [2]int64{int64(start), int64(r.Seq())})
		l.ids = append(l.ids, cs[0].ID())
		l.encs = append(l.encs, cs[0].Encode())
		l.seqs[cs[0].ID()] = r.Seq()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if l.data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	// A clean Close ends the log with a mark claiming all of it.
	if end := l.bounds[len(l.bounds)-1][1]; int64(len(l.data)) != end+repo.MarkSize {
		t.Fatalf("log is %d bytes, last record ends at %d, want a %d-byte mark after it", len(l.data), end, repo.MarkSize)
	}
	return l
}

// faultRequireState fails the test unless r holds exactly want.
func faultRequireState(t *testing.T, r *repo.Repo, m *crashModel, want map[string]item.Item) {
	t.Helper()
	var extra []string
	for k := range want {
		extra = append(extra, k)
	}
	if got := crashState(t, r, m, extra...); !crashEqual(got, want) {
		t.Fatalf("recovered\n%swant\n%s", crashFormat(got), crashFormat(want))
	}
}

// TestTornTail cuts a real log at every byte inside its last record, and
// appends garbage after it: open cuts the file at exactly the end of the
// last good record, keeps everything before it, and takes new writes that
// survive another reopen.
func TestTornTail(t *testing.T) {
	big := strings.Repeat("a torn tail is cut at the last good byte; ", 30)
	for _, tc := range []struct {
		name string
		last crashStep
	}{
		{"plain", crashStep{crashStr("t", "the last write")}},
		{"zstd", crashStep{crashStr("a", big)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []crashStep{
				{crashStr("a", "a1")}, {crashStr("b", "b1")}, {crashStr("a", "a2")},
				{crashSet("c", "n", item.Int(3))}, {crashStr("b", "b2")},
				tc.last,
			}
			l := writeFaultLog(t, steps)
			n := len(steps)
			start, end := l.bounds[n-1][0], l.bounds[n-1][1]
			if tc.name == "zstd" && end-start >= int64(len(big)) {
				t.Fatalf("last record is %d bytes for a %d-byte value: not compressed", end-start, len(big))
			}
			before, after := l.model.states[n-1], l.model.states[n]
			key := crashKey(t)
			path := filepath.Join(t.TempDir(), "torn.log")

			// reopen writes content, opens it and checks the repair (the
			// log cut at wantSize, plus a mark when what is left ends
			// with data no record claims), then checks that the
			// repository takes a write that survives.
			reopen := func(t *testing.T, content []byte, wantSize int64, want map[string]item.Item) {
				t.Helper()
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := repo.Open(path, &repo.Options{Key: key})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				// A mark follows when no sound record head claims the
				// bytes left.
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				// Past the log, the file holds only zeros reserved for
				// later writes.
				n := r.LogSize()
				if n > int64(len(got)) || !allZero(got[n:]) {
					t.Fatalf("the log is %d bytes, the file %d: want zeros after the log", n, len(got))
				}
				if n != wantSize && n != wantSize+repo.MarkSize || !bytes.Equal(got[:min(n, wantSize)], content[:wantSize]) {
					t.Errorf("log is %d bytes after open, want the first %d bytes as they were, then at most a mark", n, wantSize)
				}
				if d := r.Damage(); len(d) > 0 {
					t.Errorf("a torn tail reported as damage: %v", d)
				}
				if got := r.Seq(); got != uint64(wantSize) {
					t.Errorf("Seq = %d, want %d", got, wantSize)
				}
				faultRequireState(t, r, l.model, want)
				dbtest.RequireClean(t, r)
				if _, err := r.Write(crashUpdates(crashStep{crashStr("z", "after")})...); err != nil {
					t.Fatalf("write after repair: %v", err)
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				r, err = repo.Open(path, &repo.Options{Key: key})
				if err != nil {
					t.Fatalf("second open: %v", err)
				}
				defer r.Close()
				want = crashClone(want)
				want["z"] = item.Item{}.With("v", item.String("after"))
				faultRequireState(t, r, l.model, want)
				dbtest.RequireClean(t, r)
			}

			for cut := start; cut < end; cut++ {
				t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
					reopen(t, l.data[:cut], start, before)
				})
			}

			rng := rand.New(rand.NewPCG(uint64(len(l.data)), 7))
			random := make([]byte, 1+rng.IntN(64))
			for i := range random {
				random[i] = byte(rng.Uint32())
			}
			lastRec := l.data[start:end]
			flipped := slices.Clone(lastRec)
			flipped[len(flipped)-1] ^= 0xff
			for _, g := range []struct {
				name string
				tail []byte
			}{
				{"zero byte", []byte{0}},
				{"zeros", make([]byte, 4096)},
				{"ones", bytes.Repeat([]byte{0xff}, 37)},
				{"random", random},
				{"length only", []byte{0x7f}},
				{"half a record", lastRec[:len(lastRec)/2]},
				{"record with a bad checksum", flipped},
				{"header", l.data[:repo.HeaderSize]},
			} {
				t.Run("garbage="+g.name, func(t *testing.T) {
					reopen(t, append(slices.Clone(l.data), g.tail...), int64(len(l.data)), after)
				})
				t.Run("cut+garbage="+g.name, func(t *testing.T) {
					reopen(t, append(slices.Clone(l.data[:start+(end-start)/2]), g.tail...), start, before)
				})
			}
		})
	}
}

// TestFlippedByte flips one byte at every position of a record in the
// middle of a log: the record's bytes go to the quarantine file, reported
// with its offset until resolved, every other commit is kept, the log is
// rebuilt without it, and the lost commit can come back by sync, which
// resolves the quarantine.
func TestFlippedByte(t *testing.T) {
	// Steps of one key each: "p" has a history running across the middle,
	// the "m" items are written once, "m05" is updated late.
	var steps []crashStep
	for i := range 12 {
		steps = append(steps, crashStep{crashStr(fmt.Sprintf("m%02d", i), fmt.Sprintf("m%02d-1", i))})
		switch i {
		case 2:
			steps = append(steps, crashStep{crashStr("p", "p1")})
		case 5:
			steps = append(steps, crashStep{crashStr("p", "p2")})
		case 8:
			steps = append(steps, crashStep{crashStr("p", "p3")})
		case 10:
			steps = append(steps, crashStep{crashSet("p", "n", item.Int(4))})
		}
	}
	steps = append(steps, crashStep{crashStr("m05", "m05-2")})
	l := writeFaultLog(t, steps)
	final := l.model.states[len(l.model.states)-1]
	stepOf := func(key, v string) int {
		for i, s := range steps {
			if s[0].key == key && item.ItemsEqual(s[0].fn(item.Item{}), item.Item{}.With("v", item.String(v))) {
				return i
			}
		}
		t.Fatalf("no step writes %s=%s", key, v)
		return 0
	}
	key := crashKey(t)
	path := filepath.Join(t.TempDir(), "flipped.log")
	masks := []byte{0xff, 0x01, 0x80, 0x5a}

	for _, tc := range []struct {
		name   string
		victim int                  // index of the damaged record
		want   map[string]item.Item // items while the commit is lost
		check  func(*testing.T, *repo.Repo, commit.ID)
	}{
		{
			// A lone create: the item is gone, nothing else is touched.
			name:   "create",
			victim: stepOf("m07", "m07-1"),
			want:   func() map[string]item.Item { w := crashClone(final); delete(w, "m07"); return w }(),
		},
		{
			// An update with later updates of the same item: those stay
			// stored but pending, and the item shows its last complete value.
			name:   "update",
			victim: stepOf("p", "p2"),
			want: func() map[string]item.Item {
				w := crashClone(final)
				w["p"] = item.Item{}.With("v", item.String("p1"))
				return w
			}(),
			check: func(t *testing.T, r *repo.Repo, lost commit.ID) {
				if got := r.Missing(); !slices.Equal(got, []commit.ID{lost}) {
					t.Errorf("Missing = %v, want the damaged commit %s", got, lost.Short())
				}
				pending := 0
				for _, h := range r.History("p") {
					if h.Pending {
						pending++
					}
				}
				if pending != 2 {
					t.Errorf("%d pending commits of p, want the 2 written after the damaged one", pending)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := l.bounds[tc.victim][0], l.bounds[tc.victim][1]
			lost := l.ids[tc.victim]
			positions := end - start
			for pos := start; pos < end; pos++ {
				mask := masks[pos%int64(len(masks))]
				t.Run(fmt.Sprintf("pos=%d", pos), func(t *testing.T) {
					data := slices.Clone(l.data)
					data[pos] ^= mask
					os.Remove(path + ".quarantine")
					if err := os.WriteFile(path, data, 0o644); err != nil {
						t.Fatal(err)
					}
					r, err := repo.Open(path, &repo.Options{Key: key})
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					defer r.Close()
					// The damaged bytes are in the quarantine file, the
					// log is rebuilt without them.
					q := r.Quarantine()
					if len(q) != 1 || q[0].Offset != start || q[0].Length < end-start || q[0].Resolved {
						t.Fatalf("Quarantine = %v, want one unresolved range of %d+ bytes at offset %d", q, end-start, start)
					}
					qdata, err := os.ReadFile(path + ".quarantine")
					if err != nil || !bytes.Contains(qdata, data[start:end]) {
						t.Fatalf("quarantine file does not hold the damaged bytes (%v)", err)
					}
					if d := r.Damage(); len(d) > 0 {
						t.Errorf("Damage = %v after the rebuild", d)
					}
					for i, id := range l.ids {
						switch {
						case i == tc.victim && r.Has(id):
							t.Errorf("the damaged commit %s was recovered", id.Short())
						case i != tc.victim && !r.Has(id):
							t.Errorf("commit %d (%s) lost with the damaged record", i, id.Short())
						}
					}
					faultRequireState(t, r, l.model, tc.want)
					if tc.check != nil {
						tc.check(t, r, lost)
					}
					faultRequireOnlyDamage(t, r, start)
					if !dbtest.Long() && pos-start >= 8 && pos%8 != 0 {
						return // the framing bytes and every 8th byte are enough
					}

					// The lost commit comes back from a peer.
					stored, rej, err := r.Receive([][]byte{l.encs[tc.victim]})
					if err != nil || len(rej) > 0 || !slices.Equal(stored, []commit.ID{lost}) {
						t.Fatalf("receive the lost commit: stored %v, rejected %v, %v", stored, rej, err)
					}
					faultRequireState(t, r, l.model, final)
					if m := r.Missing(); len(m) > 0 {
						t.Errorf("still missing %v", m)
					}
					faultRequireOnlyDamage(t, r, start)
					// A sync that agreed resolves it: Check is clean, also
					// after a reopen.
					if n, err := r.ResolveQuarantine(); err != nil || n != 1 {
						t.Fatalf("ResolveQuarantine = %d, %v; want 1 range resolved", n, err)
					}
					dbtest.RequireClean(t, r)
					r.Close()
					r2 := dbtest.OpenRepo(t, path, &repo.Options{Key: key})
					dbtest.RequireClean(t, r2)
					faultRequireState(t, r2, l.model, final)
				})
			}
			t.Logf("flipped each of %d bytes at offset %d", positions, start)
		})
	}
}

// faultRequireOnlyDamage fails the test unless Check reports problems, all at
// offset off and naming it.
func faultRequireOnlyDamage(t *testing.T, r *repo.Repo, off int64) {
	t.Helper()
	ps := r.Check()
	if len(ps) == 0 {
		t.Fatalf("Check reports no problem for the damaged record at offset %d", off)
	}
	for _, p := range ps {
		if p.Offset != off || !strings.Contains(p.String(), fmt.Sprint(off)) {
			t.Errorf("Check: %s; want only the damage at offset %d", p, off)
		}
	}
}

// TestBadHeader opens files whose header is damaged with no records after
// it, or that are not logs: Open fails with an error that says what is
// wrong, and leaves the file byte for byte as it was, read-only or not.
func TestBadHeader(t *testing.T) {
	l := writeFaultLog(t, []crashStep{{crashStr("a", "a1")}, {crashStr("b", "b1")}})
	header := l.data[:repo.HeaderSize]
	const hs = repo.HeaderSize
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	withVersion := func(v uint32, fixSum bool) []byte {
		h := slices.Clone(header)
		binary.LittleEndian.PutUint32(h[8:], v)
		if fixSum {
			binary.LittleEndian.PutUint32(h[hs-4:], crc32.Checksum(h[:hs-4], castagnoli))
		}
		return h
	}
	withLog := func(h []byte) []byte { return append(slices.Clone(h), l.data[hs:]...) }
	badSum := slices.Clone(l.data)
	badSum[hs-3] ^= 0x10
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 0 // not 'g', so never a prefix of the magic number

	type tcase struct {
		name string
		data []byte
		want error
		says string
	}
	cases := []tcase{
		{"random", random, repo.ErrNotLog, "not a goatdb log"},
		{"random short", random[:5], repo.ErrNotLog, "not a goatdb log"},
		{"text", []byte("# shopping\n- milk\n- goats\n"), repo.ErrNotLog, "not a goatdb log"},
		{"text short", []byte("hi"), repo.ErrNotLog, "not a goatdb log"},
		{"sqlite", append([]byte("SQLite format 3\x00"), make([]byte, 100)...), repo.ErrNotLog, "bad magic"},
		{"magic typo, no records", append([]byte("goatdbLH"), header[8:]...), repo.ErrNotLog, "bad magic"},
		{"version 4", withLog(withVersion(4, true)), repo.ErrVersion, "version 4"},
		{"version 0", withVersion(0, true), repo.ErrVersion, "version 0"},
		{"bad checksum header only", badSum[:hs], repo.ErrCorrupt, "header checksum mismatch"},
	}
	// A header cut short within its magic number is also what a crash
	// leaves of a log just created (TestNeverSyncedHeader); one cut after
	// a wrong magic number is not.
	wrong := append([]byte("goatdbLH"), header[8:]...)
	for n := 9; n < hs; n++ {
		cases = append(cases, tcase{fmt.Sprintf("wrong magic, header[:%d]", n), wrong[:n], repo.ErrNotLog, "bad magic"})
	}
	sentinels := []error{repo.ErrCorrupt, repo.ErrNotLog, repo.ErrVersion}
	for _, tc := range cases {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "bad.log")
				if err := os.WriteFile(path, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := repo.Open(path, &repo.Options{Key: crashKey(t), ReadOnly: ro})
				if err == nil {
					r.Close()
					t.Fatalf("Open succeeded, want %v", tc.want)
				}
				for _, s := range sentinels {
					if errors.Is(err, s) != (s == tc.want) {
						t.Errorf("errors.Is(%q, %v) = %v", err, s, !(s == tc.want))
					}
				}
				if msg := err.Error(); !strings.Contains(msg, tc.says) || !strings.Contains(msg, path) {
					t.Errorf("error %q does not name the file and say %q", msg, tc.says)
				}
				got, rerr := os.ReadFile(path)
				if rerr != nil || !bytes.Equal(got, tc.data) {
					t.Errorf("Open changed the file: %d bytes, were %d (%v)", len(got), len(tc.data), rerr)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Errorf("Open left files behind: %v", ents)
				}
			})
		}
	}
}

// TestNeverSyncedHeader: an empty file, zeros, or a header cut short is
// what a crash leaves of a log created and never synced (creating a
// repository syncs nothing until its first write). It never held a
// record, so a writable open creates the log again; a read-only open shows
// an empty repository and changes nothing.
func TestNeverSyncedHeader(t *testing.T) {
	l := writeFaultLog(t, []crashStep{{crashStr("a", "a1")}})
	const hs = repo.HeaderSize
	images := map[string][]byte{"empty": {}, "zeros": make([]byte, hs), "zero page": make([]byte, 4096)}
	for _, n := range []int{1, 7, 8, 9, 30, hs - 1} {
		images[fmt.Sprintf("header[:%d]", n)] = l.data[:n]
	}
	for name, data := range images {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", name, ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "new.log")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := repo.Open(path, &repo.Options{Key: crashKey(t), ReadOnly: ro})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if n := len(r.Keys(true)); n != 0 {
					t.Fatalf("%d items in a log never synced", n)
				}
				got, _ := os.ReadFile(path)
				if ro {
					if !bytes.Equal(got, data) {
						t.Fatal("a read-only open changed the file")
					}
					r.Close()
					return
				}
				if len(got) != hs || !bytes.HasPrefix(got, []byte("goatdbLG")) {
					t.Fatalf("file of %d bytes after open, want a new header", len(got))
				}
				if _, err := r.Write(crashUpdates(crashStep{crashStr("b", "b1")})...); err != nil {
					t.Fatal(err)
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				r, err = repo.Open(path, &repo.Options{Key: crashKey(t)})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if keys := r.Keys(true); len(keys) != 1 || keys[0] != "b" {
					t.Fatalf("keys %v after a write, want [b]", keys)
				}
			})
		}
	}
}

// faultHook fails op on name with err while armed.
func faultHook(op, name string, err error) func(string, string) error {
	return func(o, n string) error {
		if o == op && n == name {
			return err
		}
		return nil
	}
}

// TestFailedWrite makes the log's write (disk full) or fsync fail (finding
// 7). Under Sync the write fails with ErrLogFailed, is never readable, not
// before and not after a crash, and Health reports the failure; once the
// disk works again the next write succeeds without a reopen. Under Async
// the write was acknowledged, so it stays readable and is written once the
// disk works again.
func TestFailedWrite(t *testing.T) {
	steps := crashWorkload()
	m := newCrashModel(steps)
	key := crashKey(t)
	const good = 4 // steps written before the fault
	apply := func(state map[string]item.Item, s crashStep) map[string]item.Item {
		state = crashClone(state)
		for _, mu := range s {
			state[mu.key] = mu.fn(state[mu.key])
		}
		return state
	}
	for _, tc := range []struct {
		op         string
		err        error
		durability repo.Durability
	}{
		{"sync", syscall.EIO, repo.Sync},
		{"write", syscall.ENOSPC, repo.Sync},
		{"sync", syscall.EIO, repo.Async},
		{"write", syscall.ENOSPC, repo.Async},
	} {
		t.Run(fmt.Sprintf("%s/%v/%v", tc.durability, tc.op, tc.err), func(t *testing.T) {
			fs := vfs.NewMem()
			// A flusher that never ticks: the test flushes.
			opts := repo.Options{FS: fs, Key: key, Durability: tc.durability, FlushInterval: time.Hour}
			r, err := repo.Open(crashPath, &opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps[:good] {
				if _, err := r.Write(crashUpdates(s)...); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			before := m.states[m.commitsAfter(good)]

			fs.SetHook(faultHook(tc.op, crashPath, tc.err))
			err = faultWithin(t, 10*time.Second, func() error {
				_, err := r.Write(crashUpdates(steps[good])...)
				if tc.durability == repo.Async {
					if err != nil {
						return fmt.Errorf("async Write waited for the disk: %w", err)
					}
					err = r.Flush()
				}
				return err
			})
			if !errors.Is(err, repo.ErrLogFailed) || !errors.Is(err, tc.err) {
				t.Fatalf("failed %s: got %v, want an error wrapping ErrLogFailed and %v", tc.op, err, tc.err)
			}
			if h := r.Health(); !errors.Is(h.Failure, tc.err) || h.OK() {
				t.Errorf("Health = %+v during the failure, want it reported", h)
			}
			var want map[string]item.Item
			if tc.durability == repo.Sync {
				// The failed write is invisible, and does not come back
				// after a crash that keeps every byte written, even when
				// they all reached the file (a failed fsync).
				faultRequireState(t, r, m, before)
				r0, err := repo.Open(crashPath, &repo.Options{FS: fs.Crash(func(_ string, b []byte) int { return len(b) }), Key: key})
				if err != nil {
					t.Fatalf("open the crash image right after the failure: %v", err)
				}
				faultRequireState(t, r0, m, before)
				r0.Close()
				// And a second write fails while the disk still does.
				if _, err := r.Write(crashUpdates(steps[good+1])...); !errors.Is(err, repo.ErrLogFailed) {
					t.Errorf("write while the disk fails: %v, want ErrLogFailed", err)
				}
				faultRequireState(t, r, m, before)
				want = apply(before, steps[good+1])
			} else {
				// Acknowledged: readable, and kept for the next flush.
				faultRequireState(t, r, m, m.states[m.commitsAfter(good+1)])
				want = m.states[m.commitsAfter(good+2)]
			}

			fs.SetHook(nil) // the disk works again: no reopen needed
			if _, err := r.Write(crashUpdates(steps[good+1])...); err != nil {
				t.Fatalf("write after the disk recovered: %v", err)
			}
			if err := r.Flush(); err != nil {
				t.Fatalf("Flush after the disk recovered: %v", err)
			}
			if h := r.Health(); !h.OK() {
				t.Errorf("Health = %+v after recovery", h)
			}
			faultRequireState(t, r, m, want)
			dbtest.RequireClean(t, r)

			// After a power loss, and after a clean reopen, the same.
			crashed := fs.Crash(nil)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			for name, fsys := range map[string]*vfs.MemFS{"crashed": crashed, "closed": fs} {
				r2, err := repo.Open(crashPath, &repo.Options{FS: fsys, Key: key})
				if err != nil {
					t.Fatalf("%s: reopen: %v", name, err)
				}
				dbtest.RequireClean(t, r2)
				faultRequireState(t, r2, m, want)
				r2.Close()
			}
		})
	}
}

// TestFailedWriteNotSynced checks that a commit whose fsync has not
// returned is neither readable nor handed to peers (CommitsSince and IDs,
// what sync reads, leave it out), and that after the fsync failed it
// never is.
func TestFailedWriteNotSynced(t *testing.T) {
	fs := vfs.NewMem()
	key := crashKey(t)
	r, err := repo.Open(crashPath, &repo.Options{FS: fs, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Write(crashUpdates(crashStep{crashStr("a", "a1")})...); err != nil {
		t.Fatal(err)
	}
	ids := r.IDs()
	// The fsync blocks until the test has looked, then fails.
	syncing, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	fs.SetHook(func(op, name string) error {
		if op == "sync" && name == crashPath {
			first.Do(func() {
				close(syncing)
				<-release
			})
			return syscall.EIO
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := r.Write(crashUpdates(crashStep{crashStr("a", "a2")})...)
		done <- err
	}()
	<-syncing
	if v, _, _ := r.Get("a"); !item.ItemsEqual(v, item.Item{}.With("v", item.String("a1"))) {
		t.Errorf("Get returns %v while its fsync runs", v)
	}
	close(release)
	for {
		if got := r.IDs(); !slices.Equal(got, ids) {
			t.Fatalf("IDs changed while the write was failing: %d commits, want %d", len(got), len(ids))
		}
		if cs, _ := r.CommitsSince(0); len(cs) != len(ids) {
			t.Fatalf("CommitsSince returned %d commits, want %d", len(cs), len(ids))
		}
		select {
		case err := <-done:
			fs.SetHook(nil)
			if !errors.Is(err, repo.ErrLogFailed) {
				t.Fatalf("write: %v", err)
			}
			if v, _, _ := r.Get("a"); !item.ItemsEqual(v, item.Item{}.With("v", item.String("a1"))) {
				t.Fatalf("Get returns %v after the failed write", v)
			}
			return
		default:
		}
	}
}

// faultWithin runs fn and returns its error, failing the test if fn does not
// return within d (a writer retrying a failed fsync forever, say).
func faultWithin(t *testing.T, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
		return nil
	}
}

// TestFailedRepair makes cutting a torn tail fail at open: Open returns the
// error, and a later Open repairs the log.
func TestFailedRepair(t *testing.T) {
	key := crashKey(t)
	steps := crashWorkload()[:3]
	m := newCrashModel(steps)
	for _, op := range []string{"truncate", "sync"} {
		t.Run(op, func(t *testing.T) {
			fs := vfs.NewMem()
			r, run := runCrashWorkload(t, fs, repo.Options{Key: key}, steps, nil)
			if run.err != nil {
				t.Fatal(run.err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			good, err := fs.ReadFile(crashPath)
			if err != nil {
				t.Fatal(err)
			}
			f, err := fs.OpenFile(crashPath, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0x40, 1, 2, 3}) // a record that never finished
			f.Sync()
			f.Close()

			fs.SetHook(faultHook(op, crashPath, syscall.EIO))
			if r, err := repo.Open(crashPath, &repo.Options{FS: fs, Key: key}); !errors.Is(err, syscall.EIO) {
				if err == nil {
					r.Close()
				}
				t.Fatalf("Open with a failing %s: %v, want EIO", op, err)
			}
			fs.SetHook(nil)
			// After a crash the repair was never durable; either way the
			// next Open repairs.
			for name, fsys := range map[string]*vfs.MemFS{"crashed": fs.Crash(nil), "live": fs} {
				r, err := repo.Open(crashPath, &repo.Options{FS: fsys, Key: key})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				dbtest.RequireClean(t, r)
				faultRequireState(t, r, m, m.states[len(m.states)-1])
				r.Close()
				if got, _ := fsys.ReadFile(crashPath); !bytes.Equal(got, good) {
					t.Errorf("%s: log is %d bytes after repair, want %d", name, len(got), len(good))
				}
			}
		})
	}
}

// TestDamagedHeaderKeepsRecords damages a log's header in every way that
// leaves its records: the records are all read (verified, since nothing
// vouches for them now), a read-only open changes nothing and reports the
// damage at offset 0, and a writable open quarantines the header, rebuilds
// the log with a new one and takes writes.
func TestDamagedHeaderKeepsRecords(t *testing.T) {
	steps := []crashStep{{crashStr("a", "a1")}, {crashStr("b", "b1")}, {crashStr("a", "a2")}}
	l := writeFaultLog(t, steps)
	final := l.model.states[len(l.model.states)-1]
	const hs = repo.HeaderSize
	damaged := map[string][]byte{}
	for _, pos := range []int{0, 7, 8, 11, 12, 30, 43, 44, 51, 52, 55} {
		b := slices.Clone(l.data)
		b[pos] ^= 0x5a
		damaged[fmt.Sprintf("byte %d", pos)] = b
	}
	zeroed := slices.Clone(l.data)
	clear(zeroed[:hs])
	damaged["zeroed"] = zeroed
	key := crashKey(t)
	for name, data := range damaged {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.log")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			ro, err := repo.Open(path, &repo.Options{Key: key, ReadOnly: true})
			if err != nil {
				t.Fatalf("read-only open: %v", err)
			}
			faultRequireState(t, ro, l.model, final)
			if d := ro.Damage(); len(d) == 0 || d[0].Offset != 0 {
				t.Errorf("read-only Damage = %v, want the header at offset 0", d)
			}
			ro.Close()
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Fatalf("a read-only open changed the file")
			}

			r, err := repo.Open(path, &repo.Options{Key: key})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			faultRequireState(t, r, l.model, final)
			q := r.Quarantine()
			if len(q) != 1 || q[0].Offset != 0 || q[0].Length != hs {
				t.Fatalf("Quarantine = %v, want the %d header bytes", q, hs)
			}
			if qb, _ := os.ReadFile(path + ".quarantine"); !bytes.Contains(qb, data[:hs]) {
				t.Errorf("the quarantine file does not hold the damaged header")
			}
			faultRequireOnlyDamage(t, r, 0)
			if _, err := r.Write(crashUpdates(crashStep{crashStr("z", "after")})...); err != nil {
				t.Fatal(err)
			}
			r.Close()
			r, err = repo.Open(path, &repo.Options{Key: key})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer r.Close()
			want := crashClone(final)
			want["z"] = item.Item{}.With("v", item.String("after"))
			faultRequireState(t, r, l.model, want)
			if n := len(r.Quarantine()); n != 1 {
				t.Errorf("%d quarantined ranges after reopen, want 1", n)
			}
		})
	}
}

// lyingSyncFS is a MemFS whose fsync of one file, while armed, makes the
// data durable and then reports an error anyway, as a real disk can.
type lyingSyncFS struct {
	*vfs.MemFS
	armed *atomic.Bool
}

func (l lyingSyncFS) OpenFile(name string, flag int, perm iofs.FileMode) (vfs.File, error) {
	f, err := l.MemFS.OpenFile(name, flag, perm)
	if err != nil || name != crashPath {
		return f, err
	}
	return lyingSyncFile{f, l.armed}, nil
}

type lyingSyncFile struct {
	vfs.File
	armed *atomic.Bool
}

func (f lyingSyncFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	if f.armed.CompareAndSwap(true, false) {
		return syscall.EIO
	}
	return nil
}

// TestFailedSyncThatWrote is the case a crash test with LazyFS found: the
// fsync of a Sync write reports an error although every byte reached the
// disk. The write returned an error, so it must not come back after a
// crash: the log cuts it off before the writer is told.
func TestFailedSyncThatWrote(t *testing.T) {
	mem := vfs.NewMem()
	armed := new(atomic.Bool)
	fsys := lyingSyncFS{mem, armed}
	key := crashKey(t)
	r, err := repo.Open(crashPath, &repo.Options{FS: fsys, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Write(crashUpdates(crashStep{crashStr("a", "kept")})...); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, err := r.Write(crashUpdates(crashStep{crashStr("a", "failed")})...); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write: %v, want the fsync's EIO", err)
	}
	r2, err := repo.Open(crashPath, &repo.Options{FS: mem.Crash(nil), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if v, _, _ := r2.Get("a"); !item.ItemsEqual(v, item.Item{}.With("v", item.String("kept"))) {
		t.Fatalf("after a crash a = %v: the write that failed came back", v)
	}
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
