package syncbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/klauspost/compress/zstd"
)

// Scenario names a wire scenario.
type Scenario string

// The wire scenarios, in the order Wire returns them (see the package
// comment).
const (
	InSync             Scenario = "in-sync"
	InSyncFirstContact Scenario = "in-sync-first-contact"
	NewOnClient        Scenario = "new-on-client"
	NewBothSides       Scenario = "new-both-sides"
	ToEmpty            Scenario = "to-empty"
	NewOneBig          Scenario = "new-one-big"
)

// WireOptions size the wire scenarios. The zero value means the published
// sizes, in the system's temporary directory.
type WireOptions struct {
	// Dir is where the temporary data directory goes; "" means
	// os.TempDir().
	Dir string
	// N is the commits in sync in every scenario but NewOneBig; 0 means
	// 10,000.
	N int
	// BigN is the commits in sync in NewOneBig; 0 means 100,000.
	BigN int
	// New is the commits written on each side that writes before a sync
	// of NewOnClient and NewBothSides; 0 means 10.
	New int
	// Reps is the measured syncs of InSync, NewOnClient, NewBothSides and
	// NewOneBig; 0 means 50.
	Reps int
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Validate checks the options.
func (o *WireOptions) Validate() error {
	if o.N < 0 || o.BigN < 0 || o.New < 0 || o.Reps < 0 {
		return errors.New("syncbench: negative size in WireOptions")
	}
	return nil
}

func (o WireOptions) withDefaults() WireOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.N, 10_000)
	def(&o.BigN, 100_000)
	def(&o.New, 10)
	def(&o.Reps, 50)
	return o
}

// WireResult is what the measured syncs of one scenario moved. Byte
// counts are on the wire, after compression, and are medians over Syncs.
type WireResult struct {
	Scenario Scenario `json:"scenario"`
	InSync   int      `json:"in_sync"` // commits both sides held before
	New      int      `json:"new"`     // commits written before each sync, both sides together
	Syncs    int      `json:"syncs"`   // measured syncs
	// OneRound is the fraction of the syncs done in one round trip;
	// Rounds the mean round trips per sync and MaxRounds the most.
	OneRound  float64 `json:"one_round"`
	Rounds    float64 `json:"rounds"`
	MaxRounds int     `json:"max_rounds"`
	Sent      int64   `json:"bytes_sent"`     // by the client
	Received  int64   `json:"bytes_received"` // by the client
	Total     int64   `json:"bytes_total"`    // sent and received in one sync
	// CommitBytes is the encoded size of the commits the sync had to move;
	// CommitZstd their size compressed with zstd, each side's commits
	// together (they travel in different messages). Overhead is each
	// sync's Total minus its CommitZstd: what the protocol adds to the
	// commits themselves.
	CommitBytes int64 `json:"commit_bytes"`
	CommitZstd  int64 `json:"commit_zstd_bytes"`
	Overhead    int64 `json:"overhead_bytes"`
	// Ratio (ToEmpty only) is Total over CommitZstd.
	Ratio float64 `json:"ratio,omitempty"`
}

// Wire runs the wire scenarios and returns their results in the order of
// the Scenario constants.
func Wire(ctx context.Context, opts WireOptions) (res []WireResult, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	l, err := newLab(o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close()) }()

	p, err := newPair(ctx, l, o.N)
	if err != nil {
		return nil, err
	}
	toEmpty, err := p.toEmpty(ctx)
	if err != nil {
		return nil, err
	}
	type step struct {
		id  Scenario
		run func() (WireResult, error)
	}
	steps := []step{
		{InSync, func() (WireResult, error) { return p.repeat(ctx, InSync, o.Reps, fixed(0, 0)) }},
		{InSyncFirstContact, func() (WireResult, error) { return p.firstContact(ctx) }},
		{NewOnClient, func() (WireResult, error) { return p.repeat(ctx, NewOnClient, o.Reps, fixed(o.New, 0)) }},
		{NewBothSides, func() (WireResult, error) { return p.repeat(ctx, NewBothSides, o.Reps, fixed(o.New, o.New)) }},
	}
	for _, s := range steps {
		r, err := s.run()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.id, err)
		}
		res = append(res, r)
	}
	res = append(res, toEmpty)
	big, err := bigPair(ctx, l, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", NewOneBig, err)
	}
	return append(res, big), nil
}

// bigPair measures NewOneBig on a new pair of BigN commits.
func bigPair(ctx context.Context, l *lab, o WireOptions) (WireResult, error) {
	p, err := newPair(ctx, l, o.BigN)
	if err != nil {
		return WireResult{}, err
	}
	if _, err := p.measure(ctx, p.cli, p.url); err != nil {
		return WireResult{}, fmt.Errorf("first sync: %w", err)
	}
	return p.repeat(ctx, NewOneBig, o.Reps, func(i int) (int, int) { return i % 2, 1 - i%2 })
}

// sides says how many commits the client and the server write before the
// i-th measured sync.
type sides func(i int) (onCli, onSrv int)

func fixed(onCli, onSrv int) sides { return func(int) (int, int) { return onCli, onSrv } }

// wireRepo is the repository the scenarios sync.
const wireRepo = "/bench/wire"

// pair is a server database, served, and a client database; paths are
// the items written on the server, which the client holds once synced.
type pair struct {
	l        *lab
	srv, cli *goatdb.DB
	url      string
	paths    []string
	rng      *rand.Rand
	n        int // commits written at setup
	writes   int // updates written since, for distinct values
}

// newPair writes n items on a new server database, serves it, and opens
// an empty client database.
func newPair(ctx context.Context, l *lab, n int) (*pair, error) {
	p := &pair{l: l, n: n, rng: rand.New(rand.NewPCG(uint64(n), 1))}
	var err error
	if p.srv, err = l.open(nil); err != nil {
		return nil, err
	}
	began := time.Now()
	for i := 0; i < n; i += 1000 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := p.srv.Batch()
		for j := i; j < min(i+1000, n); j++ {
			p.paths = append(p.paths, b.Create(wireRepo, goatdb.Fields{"title": fmt.Sprintf("Item %d", j), "count": j}))
		}
		if _, err := b.Commit(); err != nil {
			return nil, fmt.Errorf("write %d items: %w", n, err)
		}
	}
	l.log.Info("sync wire: wrote the server's items", "commits", n, "took", time.Since(began).Round(time.Millisecond))
	if p.url, err = l.serve(p.srv, nil, false); err != nil {
		return nil, err
	}
	p.cli, err = l.open(nil)
	return p, err
}

// toEmpty measures the empty client's first sync.
func (p *pair) toEmpty(ctx context.Context) (WireResult, error) {
	r, err := repoOf(p.srv)
	if err != nil {
		return WireResult{}, err
	}
	all, _ := r.CommitsSince(0)
	size := sizeOf(all)
	began := time.Now()
	st, err := p.measure(ctx, p.cli, p.url)
	if err != nil {
		return WireResult{}, fmt.Errorf("%s: %w", ToEmpty, err)
	}
	p.l.log.Info("sync wire: measured", "scenario", ToEmpty, "took", time.Since(began).Round(time.Millisecond))
	res := summarize(ToEmpty, 0, len(all), []sample{{st: st, moved: size}})
	res.Ratio = float64(res.Total) / float64(res.CommitZstd)
	return res, nil
}

// firstContact measures a sync between two peers that hold the same
// commits and never talked: the server database, as a client, and a new
// server for the client database.
func (p *pair) firstContact(ctx context.Context) (WireResult, error) {
	inSync, err := p.count()
	if err != nil {
		return WireResult{}, err
	}
	url, err := p.l.serve(p.cli, nil, false)
	if err != nil {
		return WireResult{}, err
	}
	st, err := p.measure(ctx, p.srv, url)
	if err != nil {
		return WireResult{}, err
	}
	return summarize(InSyncFirstContact, inSync, 0, []sample{{st: st}}), nil
}

// repeat measures reps syncs, each after the writes that plan says.
func (p *pair) repeat(ctx context.Context, id Scenario, reps int, plan sides) (WireResult, error) {
	began := time.Now()
	inSync, err := p.count()
	if err != nil {
		return WireResult{}, err
	}
	samples := make([]sample, 0, reps)
	for i := range reps {
		moved, err := p.write(plan(i))
		if err != nil {
			return WireResult{}, err
		}
		st, err := p.measure(ctx, p.cli, p.url)
		if err != nil {
			return WireResult{}, fmt.Errorf("sync %d: %w", i+1, err)
		}
		samples = append(samples, sample{st: st, moved: moved})
	}
	p.l.log.Info("sync wire: measured", "scenario", id, "syncs", reps, "took", time.Since(began).Round(time.Millisecond))
	c, s := plan(0)
	return summarize(id, inSync, c+s, samples), nil
}

// write updates onCli items on the client and onSrv on the server, never
// the same ones (the client takes even items, the server odd ones), and
// returns the size of the new commits.
func (p *pair) write(onCli, onSrv int) (size, error) {
	var sz size
	for _, w := range []struct {
		db    *goatdb.DB
		count int
		odd   int
	}{{p.cli, onCli, 0}, {p.srv, onSrv, 1}} {
		if w.count == 0 {
			continue
		}
		r, err := repoOf(w.db)
		if err != nil {
			return size{}, err
		}
		seq := r.Seq()
		b := w.db.Batch()
		for _, i := range p.pick(w.count, w.odd) {
			p.writes++
			b.Put(p.paths[i], goatdb.Fields{"count": p.n + p.writes})
		}
		if _, err := b.Commit(); err != nil {
			return size{}, err
		}
		cs, _ := r.CommitsSince(seq)
		s := sizeOf(cs)
		sz.raw += s.raw
		sz.zstd += s.zstd
	}
	return sz, nil
}

// pick returns count distinct item indexes of the given parity.
func (p *pair) pick(count, odd int) []int {
	half := (len(p.paths) - odd + 1) / 2
	picked := make([]int, 0, count)
	for len(picked) < min(count, half) {
		i := 2*p.rng.IntN(half) + odd
		if !slices.Contains(picked, i) {
			picked = append(picked, i)
		}
	}
	return picked
}

// size is the size of some commits: their encodings, and those
// compressed together.
type size struct{ raw, zstd int64 }

// zenc compresses as the protocol does (zstd, SpeedDefault).
var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))

func sizeOf(cs []*commit.Commit) size {
	if len(cs) == 0 {
		return size{}
	}
	var enc []byte
	for _, c := range cs {
		enc = c.AppendEncoding(enc)
	}
	return size{raw: int64(len(enc)), zstd: int64(len(zenc.EncodeAll(enc, nil)))}
}

func repoOf(db *goatdb.DB) (*repo.Repo, error) { return db.Repo(wireRepo) }

// count returns the server's commits, and checks that the client holds as
// many.
func (p *pair) count() (int, error) {
	rs, err := repoOf(p.srv)
	if err != nil {
		return 0, err
	}
	rc, err := repoOf(p.cli)
	if err != nil {
		return 0, err
	}
	s, c := rs.Stats().Commits, rc.Stats().Commits
	if s != c {
		return 0, fmt.Errorf("not in sync: the server holds %d commits, the client %d", s, c)
	}
	return s, nil
}

// measure syncs db's repository with the server at url, and fails unless
// the repository converged.
func (p *pair) measure(ctx context.Context, db *goatdb.DB, url string) (goatdb.SyncStats, error) {
	st, err := db.Sync(ctx, url, wireRepo)
	if err == nil && st.Converged != 1 {
		err = fmt.Errorf("did not converge in %d round trips", st.Rounds)
	}
	return st, err
}

// sample is one measured sync.
type sample struct {
	st    goatdb.SyncStats
	moved size // of the commits the sync had to move
}

func summarize(id Scenario, inSync, newCommits int, ss []sample) WireResult {
	r := WireResult{Scenario: id, InSync: inSync, New: newCommits, Syncs: len(ss)}
	var sent, recv, total, raw, zst, over []int64
	one, rounds := 0, 0
	for _, s := range ss {
		if s.st.Rounds == 1 {
			one++
		}
		rounds += s.st.Rounds
		r.MaxRounds = max(r.MaxRounds, s.st.Rounds)
		t := s.st.BytesSent + s.st.BytesReceived
		sent, recv, total = append(sent, s.st.BytesSent), append(recv, s.st.BytesReceived), append(total, t)
		raw, zst, over = append(raw, s.moved.raw), append(zst, s.moved.zstd), append(over, t-s.moved.zstd)
	}
	n := float64(len(ss))
	r.OneRound, r.Rounds = float64(one)/n, float64(rounds)/n
	r.Sent, r.Received, r.Total = median(sent), median(recv), median(total)
	r.CommitBytes, r.CommitZstd, r.Overhead = median(raw), median(zst), median(over)
	return r
}

// median returns the median; of an even count, the mean of the two middle
// values, rounded toward zero.
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
