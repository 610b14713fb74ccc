package syncbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/goatdb/goatdb"
)

// FirstContactOptions size the first-contact scenarios. The zero value
// means the published sizes, in the system's temporary directory.
type FirstContactOptions struct {
	// Dir is where the temporary data directory goes; "" means
	// os.TempDir().
	Dir string
	// Sizes are the commits in sync before the differences are written;
	// nil means 10,000 and 100,000.
	Sizes []int
	// Diffs are the differences measured at each size, in order: that many
	// commits the server holds and the client lacks; nil means 0, 1, 10,
	// 100 and 1,000.
	Diffs []int
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Validate checks the options.
func (o *FirstContactOptions) Validate() error {
	for _, n := range append(append([]int(nil), o.Sizes...), o.Diffs...) {
		if n < 0 {
			return errors.New("syncbench: negative size in FirstContactOptions")
		}
	}
	return nil
}

func (o FirstContactOptions) withDefaults() FirstContactOptions {
	if o.Sizes == nil {
		o.Sizes = []int{10_000, 100_000}
	}
	if o.Diffs == nil {
		o.Diffs = []int{0, 1, 10, 100, 1000}
	}
	return o
}

// FirstContactResult is one first-contact sync: a client that holds
// InSync commits in common with the server, and lacks Diff the server
// holds, syncs with it without a resume point.
type FirstContactResult struct {
	InSync   int   `json:"in_sync"`
	Diff     int   `json:"diff"`
	Rounds   int   `json:"rounds"`
	Sent     int64 `json:"bytes_sent"`     // by the client
	Received int64 `json:"bytes_received"` // by the client
	// CommitZstd is the size of the Diff commits compressed with zstd
	// together; Overhead is Sent plus Received minus it.
	CommitZstd int64 `json:"commit_zstd_bytes"`
	Overhead   int64 `json:"overhead_bytes"`
}

// FirstContact measures, at each size, a client in sync with the server
// that then lacks each of the differences in turn and syncs with the
// server through a URL it never synced with (a new listener for the same
// database): no resume point, so the first contact path (rateless IBLT).
func FirstContact(ctx context.Context, opts FirstContactOptions) (res []FirstContactResult, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	l, err := newLab(o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close()) }()
	for _, n := range o.Sizes {
		p, err := newPair(ctx, l, n)
		if err != nil {
			return nil, err
		}
		if _, err := p.measure(ctx, p.cli, p.url); err != nil {
			return nil, fmt.Errorf("first sync of %d commits: %w", n, err)
		}
		for _, d := range o.Diffs {
			r, err := p.firstContactDiff(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("first contact, %d in sync, %d new: %w", n, d, err)
			}
			res = append(res, r)
		}
	}
	return res, nil
}

// firstContactDiff writes d new items on the server and syncs the client
// with it through a new URL.
func (p *pair) firstContactDiff(ctx context.Context, d int) (FirstContactResult, error) {
	inSync, err := p.count()
	if err != nil {
		return FirstContactResult{}, err
	}
	r, err := repoOf(p.srv)
	if err != nil {
		return FirstContactResult{}, err
	}
	seq := r.Seq()
	if d > 0 {
		b := p.srv.Batch()
		for j := range d {
			p.writes++
			p.paths = append(p.paths, b.Create(wireRepo, goatdb.Fields{"title": fmt.Sprintf("New %d", p.writes), "count": j}))
		}
		if _, err := b.Commit(); err != nil {
			return FirstContactResult{}, err
		}
	}
	cs, _ := r.CommitsSince(seq)
	moved := sizeOf(cs)
	url, err := p.l.serve(p.srv, nil, false)
	if err != nil {
		return FirstContactResult{}, err
	}
	began := time.Now()
	st, err := p.measure(ctx, p.cli, url)
	if err != nil {
		return FirstContactResult{}, err
	}
	p.l.log.Info("sync first contact: measured", "in_sync", inSync, "diff", d, "took", time.Since(began).Round(time.Millisecond))
	if st.CommitsReceived < len(cs) || st.CommitsSent != 0 {
		// More than the new commits come down only on the bulk path (a
		// client that lacks more than a third of the server's).
		return FirstContactResult{}, fmt.Errorf("moved %d commits down and %d up, want %d down", st.CommitsReceived, st.CommitsSent, len(cs))
	}
	t := st.BytesSent + st.BytesReceived
	return FirstContactResult{InSync: inSync, Diff: d, Rounds: st.Rounds, Sent: st.BytesSent, Received: st.BytesReceived,
		CommitZstd: moved.zstd, Overhead: t - moved.zstd}, nil
}
