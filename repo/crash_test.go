package repo_test

// Crash recovery: a workload is cut at every mutating filesystem operation
// (vfs.MemFS.FailAfter), the machine "loses power" (MemFS.Crash, with and
// without torn writes), and the log is reopened. Under Sync durability every
// acknowledged write must survive; under both durabilities the recovered
// repository must be a prefix of what was written and pass Check.
//
// The shared helpers here (crashKey, crashWorkload, crashModel, ...) are
// also used by fault_test.go and kill_test.go.

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// crashKey returns a fixed session key, so that failures reproduce.
func crashKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "goatdb crash tests")
	return ed25519.NewKeyFromSeed(seed)
}

// crashMut is one update of a workload step: a key and a pure function of
// its current value.
type crashMut struct {
	key string
	fn  func(item.Item) item.Item
}

// crashStep is one Write call.
type crashStep []crashMut

func crashSet(key, field string, v item.Value) crashMut {
	return crashMut{key, func(it item.Item) item.Item { return it.With(field, v) }}
}

func crashStr(key, s string) crashMut { return crashSet(key, "v", item.String(s)) }

// crashWorkload returns a workload with creates, updates, batches of several
// items, a batch updating one key twice, a value large and repetitive enough
// to be stored zstd-compressed, a delete and an undelete.
func crashWorkload() []crashStep {
	big := strings.Repeat("all work and no play makes jack a dull boy. ", 40)
	return []crashStep{
		{crashStr("a", "a1")},
		{crashStr("b", "b1")},
		{crashStr("a", "a2")},
		{crashStr("c", "c1"), crashStr("d", "d1"), crashStr("a", "a3")},
		{crashStr("b", "b2"), crashSet("b", "w", item.Int(2))},
		{crashStr("c", big)},
		{{"d", func(it item.Item) item.Item { return it.WithDeleted(true) }}},
		{{"a", func(it item.Item) item.Item { return it.Without("v").With("n", item.Number(8)) }}},
		{crashStr("e", "e1"), crashStr("f", "f1"), crashStr("g", "g1")},
		{crashStr("e", "e2")},
		{{"d", func(it item.Item) item.Item { return it.WithDeleted(false).With("v", item.String("d2")) }}},
		{crashStr("b", "b3")},
	}
}

// crashUpdates turns a step into the updates passed to Write.
func crashUpdates(s crashStep) []repo.Update {
	us := make([]repo.Update, len(s))
	for i, m := range s {
		us[i] = repo.Update{Key: m.key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
			return m.fn(c.Value), c.Schema, nil
		}}
	}
	return us
}

// crashModel is what a workload should leave behind: the repository's items
// after every commit (a batch writes one commit per distinct key, in order
// of first appearance), and the commit count at the end of every step.
type crashModel struct {
	states   []map[string]item.Item // states[i]: after i commits
	stepEnds []int                  // stepEnds[s]: commits after steps 0..s
	keys     []string               // every key the workload touches
}

func newCrashModel(steps []crashStep) *crashModel {
	m := &crashModel{states: []map[string]item.Item{{}}}
	seen := map[string]bool{}
	for _, s := range steps {
		var order []string
		byKey := map[string][]crashMut{}
		for _, mu := range s {
			if byKey[mu.key] == nil {
				order = append(order, mu.key)
			}
			byKey[mu.key] = append(byKey[mu.key], mu)
			if !seen[mu.key] {
				seen[mu.key] = true
				m.keys = append(m.keys, mu.key)
			}
		}
		for _, k := range order {
			next := crashClone(m.states[len(m.states)-1])
			v := next[k]
			for _, mu := range byKey[k] {
				v = mu.fn(v)
			}
			next[k] = v
			m.states = append(m.states, next)
		}
		m.stepEnds = append(m.stepEnds, len(m.states)-1)
	}
	return m
}

// commitsAfter returns the commit count after the first n steps.
func (m *crashModel) commitsAfter(n int) int {
	if n == 0 {
		return 0
	}
	return m.stepEnds[n-1]
}

func crashClone(m map[string]item.Item) map[string]item.Item {
	c := make(map[string]item.Item, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// crashState reads every key of the model (and the extra keys) from r, and
// fails the test if r holds a key the workload never wrote.
func crashState(t *testing.T, r *repo.Repo, m *crashModel, extra ...string) map[string]item.Item {
	t.Helper()
	keys := append(slices.Clone(m.keys), extra...)
	got := map[string]item.Item{}
	for _, k := range keys {
		if v, _, ok := r.Get(k); ok {
			got[k] = v
		}
	}
	for _, k := range r.Keys(true) {
		if !slices.Contains(keys, k) {
			t.Errorf("recovered item %q that was never written", k)
		}
	}
	return got
}

func crashEqual(a, b map[string]item.Item) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !item.ItemsEqual(v, w) {
			return false
		}
	}
	return true
}

// crashPrefix returns the commit counts p in [lo, hi] whose model state r
// holds (several if the states repeat; none means r holds something no
// prefix of the workload explains).
func crashPrefix(t *testing.T, r *repo.Repo, m *crashModel, lo, hi int) []int {
	t.Helper()
	got := crashState(t, r, m)
	var ps []int
	for p := lo; p <= hi; p++ {
		if crashEqual(got, m.states[p]) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		for p := range m.states {
			if crashEqual(got, m.states[p]) {
				t.Errorf("recovered the state after %d commits, want between %d and %d", p, lo, hi)
				return nil
			}
		}
		t.Errorf("recovered a state that is no prefix of the workload:\n%s", crashFormat(got))
	}
	return ps
}

func crashFormat(s map[string]item.Item) string {
	var b strings.Builder
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s = %.80s\n", k, s[k].String())
	}
	return b.String()
}

// crashTear is what of the unsynced state reaches the disk in a crash:
// a prefix of each file's unsynced bytes (none, half, all, random), or
// any combination of unsynced pages, file sizes and directory entries
// (pages: a later page kept and an earlier one lost, a new file's or
// directory's entry lost).
type crashTear struct {
	name  string
	crash func(fs *vfs.MemFS, seed uint64) *vfs.MemFS
}

func crashPrefixTear(name string, fn func(seed uint64) func(string, []byte) int) crashTear {
	return crashTear{name, func(fs *vfs.MemFS, seed uint64) *vfs.MemFS { return fs.Crash(fn(seed)) }}
}

var crashTears = []crashTear{
	crashPrefixTear("none", func(uint64) func(string, []byte) int { return nil }),
	crashPrefixTear("half", func(uint64) func(string, []byte) int {
		return func(_ string, b []byte) int { return len(b) / 2 }
	}),
	crashPrefixTear("all", func(uint64) func(string, []byte) int {
		return func(_ string, b []byte) int { return len(b) }
	}),
	crashPrefixTear("random", func(seed uint64) func(string, []byte) int {
		rng := rand.New(rand.NewPCG(seed, 0x60a7))
		return func(_ string, b []byte) int { return rng.IntN(len(b) + 1) }
	}),
	{"pages", func(fs *vfs.MemFS, seed uint64) *vfs.MemFS {
		return fs.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, 0xd15c))))
	}},
	{"later-page", func(fs *vfs.MemFS, seed uint64) *vfs.MemFS {
		// Every unsynced page but the first of each file reaches the
		// disk, at full size, with every entry.
		first := map[string]bool{}
		return fs.CrashWith(vfs.CrashPlan{
			KeepEntry: func(string, string) bool { return true },
			Size:      func(_ string, _, current int64) int64 { return current },
			KeepPage: func(name string, _ int64) bool {
				seen := first[name]
				first[name] = true
				return seen
			},
		})
	}},
}

const crashPath = "/data/crash.log"

// crashRun is the outcome of running a workload until the first failure.
type crashRun struct {
	acked     int   // steps whose Write returned nil
	attempted int   // steps whose Write was called
	flushed   int   // steps before the last Flush that returned nil
	err       error // the first failure, if any
	ops       int   // mutating filesystem operations when the run stopped
}

// runCrashWorkload opens a repository on fs and runs the workload, stopping
// at the first error. flushAfter lists the steps after which Flush is called.
// The repository is returned open (or nil if Open failed), so the caller can
// crash the filesystem under it.
func runCrashWorkload(t *testing.T, fs *vfs.MemFS, opts repo.Options, steps []crashStep, flushAfter []int) (*repo.Repo, crashRun) {
	t.Helper()
	opts.FS = fs
	var run crashRun
	r, err := repo.Open(crashPath, &opts)
	if err != nil {
		run.err = err
		run.ops = fs.Ops()
		return nil, run
	}
	for i, s := range steps {
		run.attempted = i + 1
		if _, err := r.Write(crashUpdates(s)...); err != nil {
			run.err = err
			break
		}
		run.acked = i + 1
		if slices.Contains(flushAfter, i) {
			if err := r.Flush(); err != nil {
				run.err = err
				break
			}
			run.flushed = i + 1
		}
	}
	run.ops = fs.Ops()
	return r, run
}

// TestCrashEveryWriteSync fails the filesystem at every mutating operation
// of a Sync workload, crashes it with several tearing patterns, and checks
// that every acknowledged write is recovered with its value and nothing
// else appears.
func TestCrashEveryWriteSync(t *testing.T) {
	steps := crashWorkload()
	m := newCrashModel(steps)
	key := crashKey(t)
	opts := repo.Options{Key: key, Durability: repo.Sync}

	// A fault-free run counts the operations the workload needs.
	fs := vfs.NewMem()
	r, run := runCrashWorkload(t, fs, opts, steps, nil)
	if run.err != nil {
		t.Fatalf("fault-free run: %v", run.err)
	}
	total := run.ops
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if total < 2*len(steps) {
		t.Fatalf("workload needed %d operations, want at least a write and a sync per step", total)
	}

	tearTrials := 1
	if dbtest.Long() {
		tearTrials = 20
	}
	midBatch := 0
	for k := 0; k <= total; k++ {
		for _, tear := range crashTears {
			trials := 1
			if tear.name == "random" || tear.name == "pages" {
				trials = tearTrials
			}
			for trial := range trials {
				name := fmt.Sprintf("k=%d/%s", k, tear.name)
				if trials > 1 {
					name += fmt.Sprintf("/%d", trial)
				}
				t.Run(name, func(t *testing.T) {
					fs := vfs.NewMem()
					fs.FailAfter(k)
					r, run := runCrashWorkload(t, fs, opts, steps, nil)
					if k >= total && run.err != nil {
						t.Fatalf("no fault was due, yet: %v", run.err)
					}
					if k < total && run.err == nil {
						t.Fatalf("FailAfter(%d) of %d operations, yet the workload succeeded", k, total)
					}
					if run.err != nil && !errors.Is(run.err, vfs.ErrInjected) {
						t.Errorf("failure does not wrap the injected fault: %v", run.err)
					}
					if run.err != nil && r != nil && !errors.Is(run.err, repo.ErrLogFailed) {
						t.Errorf("failed write does not wrap ErrLogFailed: %v", run.err)
					}
					crashed := tear.crash(fs, uint64(k*1000+trial))
					if r != nil {
						r.Close() // fails: the filesystem still refuses writes
					}
					r2 := dbtest.OpenRepo(t, crashPath, &repo.Options{FS: crashed, Key: key})
					dbtest.RequireClean(t, r2)
					if d := r2.Damage(); len(d) > 0 {
						t.Errorf("crash left damage: %v", d)
					}
					lo, hi := m.commitsAfter(run.acked), m.commitsAfter(run.attempted)
					ps := crashPrefix(t, r2, m, lo, hi)
					if len(ps) > 0 && !slices.ContainsFunc(ps, func(p int) bool { return p == lo || p == hi }) {
						// A Write of several items is neither wholly present nor
						// wholly absent: see TestCrashBatchAtomic.
						midBatch++
					}

					// The recovered repository takes writes, and they survive.
					if _, err := r2.Write(crashUpdates(crashStep{crashStr("z", "after")})...); err != nil {
						t.Fatalf("write after recovery: %v", err)
					}
					r3 := dbtest.OpenRepo(t, crashPath, &repo.Options{FS: crashed.Crash(nil), Key: key})
					dbtest.RequireClean(t, r3)
					if v, _, ok := r3.Get("z"); !ok || !item.ItemsEqual(v, item.Item{}.With("v", item.String("after"))) {
						t.Errorf("write after recovery lost in a second crash: %v %v", v, ok)
					}
				})
			}
		}
	}
	t.Logf("%d operations per workload; %d crash images held part of a batch", total, midBatch)
}

// TestCrashEveryWriteAsync does the same under Async durability, with a
// background flusher racing the workload: the recovered log must be a
// prefix of the commits written that includes everything before the last
// successful Flush.
func TestCrashEveryWriteAsync(t *testing.T) {
	steps := crashWorkload()
	m := newCrashModel(steps)
	key := crashKey(t)
	flushAfter := []int{2, 5, 9}
	intervals := []time.Duration{time.Millisecond, time.Hour}
	// An upper bound on the operations: opening, then a write and a sync
	// per step and per explicit flush.
	total := 5 + 2*(len(steps)+len(flushAfter)) + 2
	for _, every := range intervals {
		opts := repo.Options{Key: key, Durability: repo.Async, FlushInterval: every}
		for k := 0; k <= total; k++ {
			for _, tear := range crashTears {
				t.Run(fmt.Sprintf("every=%v/k=%d/%s", every, k, tear.name), func(t *testing.T) {
					fs := vfs.NewMem()
					fs.FailAfter(k)
					r, run := runCrashWorkload(t, fs, opts, steps, flushAfter)
					if run.err != nil && !errors.Is(run.err, vfs.ErrInjected) {
						t.Errorf("failure does not wrap the injected fault: %v", run.err)
					}
					crashed := tear.crash(fs, uint64(k))
					if r != nil {
						r.Close()
					}
					r2 := dbtest.OpenRepo(t, crashPath, &repo.Options{FS: crashed, Key: key})
					dbtest.RequireClean(t, r2)
					crashPrefix(t, r2, m, m.commitsAfter(run.flushed), m.commitsAfter(run.attempted))
				})
			}
		}
	}
}

// TestCrashBatchAtomic checks that a Write of several items survives a
// crash wholly or not at all.
//
// Known issue: it does not. The log frames one commit per record and marks
// no batch boundary, so a crash that keeps a prefix of an unacknowledged
// batch's bytes recovers some of its items and not the others. The test
// skips, showing the state recovered, until the format marks batches; then
// it guards the fix.
func TestCrashBatchAtomic(t *testing.T) {
	key := crashKey(t)
	batch := crashStep{crashStr("x", "x1"), crashStr("y", "y1"), crashStr("z", "z1")}
	m := newCrashModel([]crashStep{batch})
	fs := vfs.NewMem()
	r, err := repo.Open(crashPath, &repo.Options{FS: fs, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The records reach the file, the fsync fails: the Write is not
	// acknowledged, and a crash may keep any prefix of its bytes.
	fs.SetHook(func(op, name string) error {
		if op == "sync" {
			return errors.New("EIO")
		}
		return nil
	})
	if _, err := r.Write(crashUpdates(batch)...); !errors.Is(err, repo.ErrLogFailed) {
		t.Fatalf("Write with a failing fsync: %v, want ErrLogFailed", err)
	}
	var unsynced int
	fs.Crash(func(_ string, b []byte) int { unsynced = len(b); return 0 })
	for cut := 0; cut <= unsynced; cut++ {
		crashed := fs.Crash(func(string, []byte) int { return cut })
		r2, err := repo.Open(crashPath, &repo.Options{FS: crashed, Key: key})
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		dbtest.RequireClean(t, r2)
		got := crashState(t, r2, m)
		r2.Close()
		if !crashEqual(got, m.states[0]) && !crashEqual(got, m.states[len(m.states)-1]) {
			t.Fatalf("a crash after %d of %d unacknowledged bytes kept part of a batch:\n%s", cut, unsynced, crashFormat(got))
		}
	}
}

// TestCrashConcurrentSync crashes writers that share fsyncs (group commit):
// every write acknowledged to any of them survives.
func TestCrashConcurrentSync(t *testing.T) {
	key := crashKey(t)
	const writers, perWriter = 4, 12
	// run writes until the first error from each writer; acked[g] is the
	// last value writer g was acknowledged (-1: none), tried[g] the last
	// it attempted.
	run := func(fs *vfs.MemFS) (r *repo.Repo, acked, tried [writers]int) {
		r, err := repo.Open(crashPath, &repo.Options{FS: fs, Key: key})
		for g := range writers {
			acked[g], tried[g] = -1, -1
		}
		if err != nil {
			return nil, acked, tried
		}
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range perWriter {
					tried[g] = i
					k := fmt.Sprintf("w%d", g)
					if _, err := r.Write(crashUpdates(crashStep{crashSet(k, "i", item.Int(int64(i)))})...); err != nil {
						return
					}
					acked[g] = i
				}
			})
		}
		wg.Wait()
		return r, acked, tried
	}
	fs := vfs.NewMem()
	r, _, _ := run(fs)
	total := fs.Ops()
	r.Close()

	stride := 1
	if !dbtest.Long() {
		stride = max(1, total/30)
	}
	for k := 0; k <= total; k += stride {
		for _, tear := range crashTears {
			t.Run(fmt.Sprintf("k=%d/%s", k, tear.name), func(t *testing.T) {
				fs := vfs.NewMem()
				fs.FailAfter(k)
				r, acked, tried := run(fs)
				crashed := tear.crash(fs, uint64(k))
				if r != nil {
					r.Close()
				}
				r2 := dbtest.OpenRepo(t, crashPath, &repo.Options{FS: crashed, Key: key})
				dbtest.RequireClean(t, r2)
				for g := range writers {
					v, _, ok := r2.Get(fmt.Sprintf("w%d", g))
					got := int64(-1)
					if ok {
						x, _ := v.Get("i")
						got = x.Int64()
					}
					if got != int64(acked[g]) && got != int64(tried[g]) {
						t.Errorf("writer %d: recovered %d, acknowledged %d, attempted %d", g, got, acked[g], tried[g])
					}
				}
			})
		}
	}
}

// TestCrashMerge crashes a repository while it receives a concurrent commit
// and writes the merge: after recovery the merge is there (recomputed at
// open if it was lost) and is the same commit a fault-free run writes.
func TestCrashMerge(t *testing.T) {
	now := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	keyA := crashKey(t)
	keyB := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

	// A writes x, B receives it; then both change x concurrently.
	base := vfs.NewMem()
	a, err := repo.Open(crashPath, &repo.Options{FS: base, Key: keyA, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := a.Write(crashUpdates(crashStep{crashStr("x", "1")})...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Open("/b.log", &repo.Options{FS: vfs.NewMem(), Key: keyB, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, rej, err := b.Receive([][]byte{cs[0].Encode()}); err != nil || rej != nil {
		t.Fatal(rej, err)
	}
	if _, err := a.Write(crashUpdates(crashStep{crashStr("x", "from a")})...); err != nil {
		t.Fatal(err)
	}
	fromB, err := b.Write(crashUpdates(crashStep{crashSet("x", "n", item.Int(7))})...)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	enc := fromB[0].Encode()
	merged := item.Item{}.With("n", item.Int(7)).With("v", item.String("from a"))
	single := item.Item{}.With("v", item.String("from a"))

	// The fault-free outcome.
	fs := base.Crash(nil)
	a, err = repo.Open(crashPath, &repo.Options{FS: fs, Key: keyA, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	start := fs.Ops()
	if _, _, err := a.Receive([][]byte{enc}); err != nil {
		t.Fatal(err)
	}
	a.Flush()
	total := fs.Ops() - start
	head, _ := a.Head("x")
	if v, _, _ := a.Get("x"); !item.ItemsEqual(v, merged) || len(a.Leaves("x")) != 1 {
		t.Fatalf("fault-free merge: %v with %d leaves, want %v", v, len(a.Leaves("x")), merged)
	}
	a.Close()

	for k := 0; k <= total; k++ {
		for _, tear := range crashTears {
			t.Run(fmt.Sprintf("k=%d/%s", k, tear.name), func(t *testing.T) {
				fs := base.Crash(nil)
				a, err := repo.Open(crashPath, &repo.Options{FS: fs, Key: keyA, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				fs.FailAfter(k)
				_, _, rerr := a.Receive([][]byte{enc})
				crashed := tear.crash(fs, uint64(k))
				a.Close()
				r := dbtest.OpenRepo(t, crashPath, &repo.Options{FS: crashed, Key: keyA, Now: now})
				dbtest.RequireClean(t, r)
				v, _, _ := r.Get("x")
				if l := r.Leaves("x"); len(l) != 1 {
					t.Errorf("%d leaves after recovery, want 1 (the merge)", len(l))
				}
				switch {
				case r.Has(fromB[0].ID()):
					if h, _ := r.Head("x"); h != head || !item.ItemsEqual(v, merged) {
						t.Errorf("recovered head %s = %v, want the merge %s = %v", h.Short(), v, head.Short(), merged)
					}
				case rerr == nil:
					t.Errorf("received commit acknowledged, then lost")
				case !item.ItemsEqual(v, single):
					t.Errorf("recovered %v without the received commit, want %v", v, single)
				}
			})
		}
	}
}
