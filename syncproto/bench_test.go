package syncproto_test

// Benchmarks report, per sync: round trips (rt/sync), the share of syncs
// done in one round trip (1rt-%), bytes on the wire each way after
// compression (sent-B/sync, recv-B/sync), and the bytes beyond the raw
// size of the commits carried (overhead-B/sync). Repositories are built in
// trusted mode with async durability and batched writes, on in-memory
// filesystems; syncs run over Loopback with default options except that
// periodic repair is off (BenchmarkRepair measures a repair round).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
	"github.com/klauspost/compress/zstd"
)

func openBench(b testing.TB) *repo.Repo {
	b.Helper()
	return dbtest.OpenRepo(b, "/bench.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(0), Trusted: true, Durability: repo.Async})
}

// benchPair is a server and a client repository that have synced, and
// the Syncer that keeps the client's resume point.
type benchPair struct {
	srv, cli *repo.Repo
	syncer   *syncproto.Syncer
	n        int // items
}

func newBenchPair(b testing.TB, n int) *benchPair {
	p := &benchPair{srv: openBench(b), cli: openBench(b), n: n}
	writeItems(b, p.srv, "k", n, 1000)
	p.syncer = newSyncer(b, syncproto.Loopback(serve(b, p.srv, nil)), &syncproto.SyncerOptions{RepairEvery: -1})
	syncOnce(b, p.syncer, p.cli)
	return p
}

// update writes count updates of random existing items.
func update(b testing.TB, r *repo.Repo, rng *rand.Rand, items, count int) []*commit.Commit {
	var ups []repo.Update
	for range count {
		key := fmt.Sprintf("k%09d", rng.IntN(items))
		v := item.Int(rng.Int64())
		ups = append(ups, repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With("count", v), cur.Schema, nil
		}})
	}
	cs, err := r.Write(ups...)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// wire accumulates per-sync figures and reports them.
type wire struct {
	syncs, oneRT, rounds int
	sent, recv, raw      int64
}

func (w *wire) add(st syncproto.Stats, raw int) {
	w.syncs++
	w.rounds += st.Rounds
	if st.Rounds == 1 {
		w.oneRT++
	}
	w.sent += st.BytesSent
	w.recv += st.BytesReceived
	w.raw += int64(raw)
}

func (w *wire) report(b *testing.B) {
	n := float64(w.syncs)
	b.ReportMetric(float64(w.rounds)/n, "rt/sync")
	b.ReportMetric(100*float64(w.oneRT)/n, "1rt-%")
	b.ReportMetric(float64(w.sent)/n, "sent-B/sync")
	b.ReportMetric(float64(w.recv)/n, "recv-B/sync")
	b.ReportMetric(float64(w.sent+w.recv-w.raw)/n, "overhead-B/sync")
}

func rawSize(cs []*commit.Commit) int {
	n := 0
	for _, c := range cs {
		n += c.Size()
	}
	return n
}

// BenchmarkInSync10k: 10,000 commits on both sides, nothing new.
func BenchmarkInSync10k(b *testing.B) {
	p := newBenchPair(b, 10_000)
	var w wire
	b.ReportAllocs()
	for b.Loop() {
		w.add(syncOnce(b, p.syncer, p.cli), 0)
	}
	w.report(b)
}

// BenchmarkNewOneSide10k: 10,000 in sync, then 10 new commits on one side
// (the server and the client in turn).
func BenchmarkNewOneSide10k(b *testing.B) {
	p := newBenchPair(b, 10_000)
	rng := rand.New(rand.NewPCG(1, 2))
	var w wire
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		side := p.srv
		if i%2 == 1 {
			side = p.cli
		}
		raw := rawSize(update(b, side, rng, p.n, 10))
		b.StartTimer()
		w.add(syncOnce(b, p.syncer, p.cli), raw)
	}
	w.report(b)
}

// BenchmarkNewBothSides10k: 10,000 in sync, then 10 new commits on each
// side.
func BenchmarkNewBothSides10k(b *testing.B) {
	p := newBenchPair(b, 10_000)
	rng := rand.New(rand.NewPCG(3, 4))
	var w wire
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		raw := rawSize(update(b, p.srv, rng, p.n, 10)) + rawSize(update(b, p.cli, rng, p.n, 10))
		b.StartTimer()
		w.add(syncOnce(b, p.syncer, p.cli), raw)
	}
	w.report(b)
}

// BenchmarkToEmpty10k: 10,000 commits to an empty client. x-zstd is the
// bytes on the wire over the size of the commits compressed together.
func BenchmarkToEmpty10k(b *testing.B) {
	srv := openBench(b)
	writeItems(b, srv, "k", 10_000, 1000)
	cs, _ := srv.CommitsSince(0)
	var all []byte
	for _, c := range cs {
		all = c.AppendEncoding(all)
	}
	enc, _ := zstd.NewWriter(nil)
	compressed := len(enc.EncodeAll(all, nil))
	resp := serve(b, srv, nil)
	var w wire
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cli := openBench(b)
		s := newSyncer(b, syncproto.Loopback(resp), nil)
		b.StartTimer()
		w.add(syncOnce(b, s, cli), len(all))
		b.StopTimer()
		cli.Close()
		b.StartTimer()
	}
	w.report(b)
	b.ReportMetric(float64(w.sent+w.recv)/float64(w.syncs)/float64(compressed), "x-zstd")
	b.ReportMetric(float64(compressed), "zstd-B")
}

// big100k is the 100,000-commit pair, built once per process.
var big100k = sync.OnceValue(func() *benchPair {
	tb := &onceTB{}
	p := newBenchPair(tb, 100_000)
	if tb.failed != nil {
		panic(tb.failed)
	}
	return p
})

// BenchmarkNewOne100k: 100,000 in sync, then 1 new commit (on the server
// and the client in turn).
func BenchmarkNewOne100k(b *testing.B) {
	p := big100k()
	rng := rand.New(rand.NewPCG(5, 6))
	var w wire
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		side := p.srv
		if i%2 == 1 {
			side = p.cli
		}
		raw := rawSize(update(b, side, rng, p.n, 1))
		b.StartTimer()
		w.add(syncOnce(b, p.syncer, p.cli), raw)
	}
	w.report(b)
}

// BenchmarkFirstContact100k: 100,000 in sync, then 1 new commit on the
// client, synced by a Syncer with no resume point (a first contact: every
// commit's stamp compared on each side).
func BenchmarkFirstContact100k(b *testing.B) {
	p := big100k()
	rng := rand.New(rand.NewPCG(7, 8))
	resp := serve(b, p.srv, nil)
	var w wire
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		raw := rawSize(update(b, p.cli, rng, p.n, 1))
		s := newSyncer(b, syncproto.Loopback(resp), &syncproto.SyncerOptions{RepairEvery: -1})
		b.StartTimer()
		w.add(syncOnce(b, s, p.cli), raw)
	}
	w.report(b)
}

// BenchmarkRepair10k: a repair sync (full Bloom round) of 10,000 commits
// in sync, the periodic cost of Options.RepairEvery.
func BenchmarkRepair10k(b *testing.B) {
	p := newBenchPair(b, 10_000)
	s := newSyncer(b, syncproto.Loopback(serve(b, p.srv, nil)), &syncproto.SyncerOptions{RepairEvery: 1})
	syncOnce(b, s, p.cli) // a resume point, so the next syncs are repairs
	var w wire
	for b.Loop() {
		w.add(syncOnce(b, s, p.cli), 0)
	}
	w.report(b)
}

// onceTB lets the shared fixture use the test helpers outside any one
// benchmark: it never cleans up (the fixture lives as long as the process).
type onceTB struct {
	testing.TB
	failed error
}

func (t *onceTB) Helper()        {}
func (t *onceTB) Cleanup(func()) {}
func (t *onceTB) Fatal(args ...any) {
	t.failed = fmt.Errorf("%v", fmt.Sprint(args...))
	panic(t.failed)
}
func (t *onceTB) Fatalf(f string, args ...any) {
	t.failed = fmt.Errorf(f, args...)
	panic(t.failed)
}

var _ = context.Background

// BenchmarkViewResume10k compares, in one run, resumed syncs of a session
// that may read half of 10,000 items (a rule on each item's value) with
// those of a session that may read everything, against the same server:
// unrestricted-ns/sync, restricted-ns/sync and their ratio. InSync writes
// nothing between syncs; NewTen writes 10 commits to random items (about
// half of them in view) before each; NewTenInView 10 commits to items in
// view, so that both sessions receive the same commits.
func BenchmarkViewResume10k(b *testing.B) {
	for _, bc := range []struct {
		name   string
		writes int
		step   int // write to items k, k+step, ...: 2 keeps to items in view
	}{{"InSync", 0, 1}, {"NewTen", 10, 1}, {"NewTenInView", 10, 2}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := openBench(b)
			writeItems(b, srv, "k", 10_000, 1000)
			opts := &syncproto.SyncerOptions{RepairEvery: -1}
			all := newSyncer(b, syncproto.Loopback(serve(b, srv, nil)), opts)
			policy := newRulePolicy(evenCount)
			half := newSyncer(b, syncproto.Loopback(serve(b, srv, &syncproto.ResponderOptions{Policy: policy})), opts)
			cliAll, cliHalf := openBench(b), openBench(b)
			syncOnce(b, all, cliAll)
			syncOnce(b, half, cliHalf)
			if n, m := len(cliHalf.IDs()), len(cliAll.IDs()); n != m/2 {
				b.Fatalf("restricted client holds %d of %d commits, want half", n, m)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			var tAll, tHalf time.Duration
			var w wire
			b.ReportAllocs()
			timed := func(s *syncproto.Syncer, cli *repo.Repo, d *time.Duration) syncproto.Stats {
				t0 := time.Now()
				st := syncOnce(b, s, cli)
				*d += time.Since(t0)
				return st
			}
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				retitle(b, srv, rng, 10_000, bc.step, bc.writes)
				b.StartTimer()
				if i%2 == 0 { // each goes first half the time
					timed(all, cliAll, &tAll)
					w.add(timed(half, cliHalf, &tHalf), 0)
				} else {
					w.add(timed(half, cliHalf, &tHalf), 0)
					timed(all, cliAll, &tAll)
				}
			}
			n := float64(w.syncs)
			b.ReportMetric(float64(tAll.Nanoseconds())/n, "unrestricted-ns/sync")
			b.ReportMetric(float64(tHalf.Nanoseconds())/n, "restricted-ns/sync")
			b.ReportMetric(float64(tHalf)/float64(tAll), "ratio")
			b.ReportMetric(float64(w.rounds)/n, "restricted-rt/sync")
		})
	}
}

// retitle writes count title updates of random existing items, among
// every step-th: values that leave every item's readability as it was.
func retitle(b testing.TB, r *repo.Repo, rng *rand.Rand, items, step, count int) {
	if count == 0 {
		return
	}
	var ups []repo.Update
	for range count {
		key := fmt.Sprintf("k%09d", rng.IntN(items/step)*step)
		v := item.String(fmt.Sprint("title ", rng.Int64()))
		ups = append(ups, repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With("title", v), cur.Schema, nil
		}})
	}
	if _, err := r.Write(ups...); err != nil {
		b.Fatal(err)
	}
}
