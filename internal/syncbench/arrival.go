package syncbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/vfs"
)

// ArrivalOptions configure a Rig.
type ArrivalOptions struct {
	// Dir is where the temporary data directory goes; "" means
	// os.TempDir().
	Dir string
	// Receivers is the clients that receive A's writes, B included; 0
	// means 1.
	Receivers int
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Auth runs the server with authentication (server.AuthOptions): every
	// client logs in with a one-time code and signs every request.
	Auth bool
	// EventCommitBytes is the server's server.Options.EventCommitBytes:
	// 0 is its default (change events carry small commits), negative
	// turns commits in events off (every receiver syncs for each write).
	EventCommitBytes int
}

// Validate checks the options.
func (o *ArrivalOptions) Validate() error {
	if o.Receivers < 0 {
		return errors.New("syncbench: negative Receivers in ArrivalOptions")
	}
	return nil
}

// arrivalRepo is the repository the rig keeps in sync; A writes its item
// arrivalItem.
const (
	arrivalRepo = "/bench/live"
	arrivalItem = arrivalRepo + "/x"
)

// Arrival timeouts: a write that has not reached B, or every receiver,
// by then fails.
const (
	arrivalTimeout = 30 * time.Second
	allTimeout     = 60 * time.Second
)

// Rig is a server, a writing client A and receiving clients, B first, all
// syncing in the background (see the package comment). Close it when done.
type Rig struct {
	l         *lab
	a, b      *goatdb.DB
	receivers []*repo.Repo // every receiver's repository, B's first
	writes    int          // measured writes so far
	base      int          // commits before the first measured write
	auth      bool         // the server authenticates; clients log in
	// eventCommits is the server's Options.EventCommitBytes.
	eventCommits int
}

// NewRig starts a server and its clients, and returns once every receiver
// holds A's first write.
func NewRig(ctx context.Context, opts ArrivalOptions) (_ *Rig, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	n := max(opts.Receivers, 1)
	l, err := newLab(opts.Dir, opts.Logger)
	if err != nil {
		return nil, err
	}
	r := &Rig{l: l, base: 1, auth: opts.Auth, eventCommits: opts.EventCommitBytes}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.close())
		}
	}()
	began := time.Now()
	url, err := r.start(ctx, n)
	if err != nil {
		return nil, err
	}
	if err := r.waitAll(ctx, r.base); err != nil {
		return nil, err
	}
	l.log.Info("sync arrival: rig ready", "server", url, "receivers", n, "took", time.Since(began).Round(time.Millisecond))
	return r, nil
}

// start opens the server and the clients; A writes once and syncs before
// its background syncer starts.
func (r *Rig) start(ctx context.Context, receivers int) (string, error) {
	srv, err := r.l.open(nil)
	if err != nil {
		return "", err
	}
	url, err := r.l.serve(srv, &server.Options{EventCommitBytes: r.eventCommits}, r.auth)
	if err != nil {
		return "", err
	}
	if r.a, err = r.l.open(nil); err != nil {
		return "", err
	}
	if err := r.l.login(ctx, r.a, url); err != nil {
		return "", err
	}
	if _, err := r.a.Put(arrivalItem, goatdb.Fields{"v": -1.0}); err != nil {
		return "", err
	}
	if _, err := r.a.Sync(ctx, url); err != nil {
		return "", fmt.Errorf("first sync of A: %w", err)
	}
	if err := r.follow(r.a, url); err != nil {
		return "", err
	}
	for i := range receivers {
		var opts *goatdb.Options // B: on disk
		if i > 0 {
			opts = &goatdb.Options{FS: vfs.NewMem()}
		}
		db, err := r.l.open(opts)
		if err != nil {
			return "", err
		}
		if i == 0 {
			r.b = db
		}
		if err := r.l.login(ctx, db, url); err != nil {
			return "", err
		}
		if err := r.follow(db, url); err != nil {
			return "", err
		}
		rp, err := db.Repo(arrivalRepo)
		if err != nil {
			return "", err
		}
		r.receivers = append(r.receivers, rp)
	}
	return url, nil
}

// follow starts db's background syncer, with its own HTTP client.
func (r *Rig) follow(db *goatdb.DB, url string) error {
	s, err := db.StartSync([]string{url}, &goatdb.SyncOptions{Repos: []string{arrivalRepo}, Client: r.l.client()})
	if err != nil {
		return err
	}
	r.l.atClose(s.Stop)
	return nil
}

// Write makes a write on A and returns the time from the start of its Put
// until B holds it; it then waits until every receiver does.
func (r *Rig) Write(ctx context.Context) (time.Duration, error) {
	i := r.writes
	want := float64(i)
	rb := r.receivers[0]
	wctx, cancel := context.WithTimeout(ctx, arrivalTimeout)
	defer cancel()
	seq := rb.Seq()
	began := time.Now()
	if _, err := r.a.Put(arrivalItem, goatdb.Fields{"v": want}); err != nil {
		return 0, err
	}
	for {
		if v, err := r.b.Get(arrivalItem); err == nil && v.Get("v") == want {
			break
		}
		if err := rb.Wait(wctx, seq); err != nil {
			return 0, fmt.Errorf("write %d never reached B: %w", i, err)
		}
		seq = rb.Seq()
	}
	d := time.Since(began)
	r.writes++
	return d, r.waitAll(ctx, r.base+r.writes)
}

// waitAll waits until every receiver holds n commits.
func (r *Rig) waitAll(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, allTimeout)
	defer cancel()
	for i, rp := range r.receivers {
		for {
			seq := rp.Seq()
			if rp.Stats().Commits >= n {
				break
			}
			if err := rp.Wait(ctx, seq); err != nil {
				return fmt.Errorf("receiver %d has %d of %d commits: %w", i, rp.Stats().Commits, n, err)
			}
		}
	}
	return nil
}

// Close stops the clients and the server, closes every database and
// removes the data.
func (r *Rig) Close() error { return r.l.close() }

// WriteToArrival runs a Rig for writes writes and returns their latencies,
// sorted.
func WriteToArrival(ctx context.Context, opts ArrivalOptions, writes int) (lat []time.Duration, err error) {
	r, err := NewRig(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	began := time.Now()
	for range writes {
		d, err := r.Write(ctx)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	r.l.log.Info("sync arrival: measured", "receivers", len(r.receivers), "writes", writes, "took", time.Since(began).Round(time.Millisecond))
	return lat, nil
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 1) of
// sorted latencies: the smallest with at least p of them at or below it.
// It returns 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
