package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// Options tune a collection.
type Options struct {
	// Policy fixes the horizon and the triggers.
	Policy Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DryRun plans and reports without changing anything.
	DryRun bool
	// Force compacts whatever the triggers say (not below a horizon the
	// log already has).
	Force bool
	// Drop names extra commits to drop (purge); see repo.CompactOptions.
	Drop func(path string) func(c *commit.Commit) bool
}

// Result is what collecting one repository did (or, in a dry run, would
// do).
type Result struct {
	Path string
	// Horizon is the horizon collected to.
	Horizon time.Time
	// Compacted says the log was rewritten (never in a dry run).
	Compacted bool
	// Skipped, when not compacted, says why: "up to date", "too little to
	// collect", "dry run".
	Skipped string
	Stats   repo.CompactStats
}

func (r Result) String() string {
	s := r.Stats
	line := fmt.Sprintf("%s: %d commits, %d bytes → %d commits, %d bytes", r.Path,
		s.CommitsBefore, s.BytesBefore, s.CommitsAfter, s.BytesAfter)
	if r.Compacted {
		return line + fmt.Sprintf(" (pause %v, took %v)", s.Pause.Round(time.Microsecond), s.Took.Round(time.Millisecond))
	}
	return line + " (" + r.Skipped + ")"
}

// ErrNoHistory is returned (wrapped) for a repository that does not exist.
var ErrNoHistory = errors.New("gc: no such repository")

// Collect plans, and unless it is a dry run or not worth it, compacts the
// repository at path of db to the policy's horizon. It holds a lease on
// the repository meanwhile.
func Collect(db *goatdb.DB, path string, o *Options) (Result, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if err := opts.Policy.Validate(); err != nil {
		return Result{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := opts.Policy.withDefaults()
	h := p.Horizon(now())
	res := Result{Path: path, Horizon: h}
	r, release, err := db.AcquireExisting(path)
	if errors.Is(err, goatdb.ErrNotFound) {
		return res, fmt.Errorf("%w: %s", ErrNoHistory, path)
	}
	if err != nil {
		return res, err
	}
	defer release()
	var copts *repo.CompactOptions
	if opts.Drop != nil {
		if d := opts.Drop(path); d != nil {
			copts = &repo.CompactOptions{Drop: d}
		}
	}
	if r.Horizon() >= h.UnixMilli() && copts == nil {
		st, err := r.PlanCompact(r.Horizon(), nil)
		res.Stats, res.Skipped = st, "up to date"
		return res, err
	}
	st, err := r.PlanCompact(h.UnixMilli(), copts)
	if err != nil {
		return res, err
	}
	res.Stats = st
	reclaimed := st.BytesBefore - st.BytesAfter
	switch {
	case opts.DryRun:
		res.Skipped = "dry run"
		return res, nil
	case !opts.Force && copts == nil && (reclaimed < p.MinBytes || float64(reclaimed) < p.MinFraction*float64(st.BytesBefore)):
		res.Skipped = fmt.Sprintf("too little to collect: %d bytes, want at least %d and %.0f%% of the log", reclaimed, p.MinBytes, 100*p.MinFraction)
		return res, nil
	}
	if res.Stats, err = r.Compact(h.UnixMilli(), copts); err != nil {
		return res, err
	}
	res.Compacted = true
	return res, nil
}

// CollectAll collects every repository of db (or those named), returning
// a result per repository; an error on one does not stop the others.
func CollectAll(ctx context.Context, db *goatdb.DB, paths []string, o *Options) ([]Result, error) {
	if len(paths) == 0 {
		var err error
		if paths, err = db.Repos(); err != nil {
			return nil, err
		}
	}
	var out []Result
	var errs []error
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		res, err := Collect(db, path, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		out = append(out, res)
	}
	return out, errors.Join(errs...)
}

// Collector collects every repository of a database in the background,
// once per Interval (the horizon moves a day at a time), until Stop.
type Collector struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// CollectorOptions tune a Collector.
type CollectorOptions struct {
	Options
	// Interval between passes; 0 means an hour (a repository is still
	// compacted at most once per horizon, that is once a day).
	Interval time.Duration
	// Logger receives what each pass did; nil discards.
	Logger *slog.Logger
}

// Start starts collecting db in the background.
func Start(db *goatdb.DB, o *CollectorOptions) (*Collector, error) {
	var opts CollectorOptions
	if o != nil {
		opts = *o
	}
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{cancel: cancel, done: make(chan struct{})}
	planned := map[string]int64{} // the horizon each repository was last planned for
	go func() {
		defer close(c.done)
		t := time.NewTicker(opts.Interval)
		defer t.Stop()
		for {
			results, err := c.pass(ctx, db, &opts, planned)
			for _, r := range results {
				if r.Compacted {
					opts.Logger.Info("compacted", "repo", r.Path, "commits_before", r.Stats.CommitsBefore,
						"commits_after", r.Stats.CommitsAfter, "bytes_before", r.Stats.BytesBefore,
						"bytes_after", r.Stats.BytesAfter, "pause", r.Stats.Pause, "took", r.Stats.Took)
				}
			}
			if err != nil && ctx.Err() == nil {
				opts.Logger.Warn("garbage collection", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return c, nil
}

// Stop stops the collector and waits for a pass in progress to end its
// current repository.
func (c *Collector) Stop() {
	c.cancel()
	<-c.done
}

// pass collects the repositories worth a look: a log of at least
// Policy.MinBytes not planned for this horizon yet (a repository is
// planned at most once per horizon: what it holds below the horizon does
// not grow until the horizon moves), and one with commits to drop.
func (c *Collector) pass(ctx context.Context, db *goatdb.DB, opts *CollectorOptions, planned map[string]int64) ([]Result, error) {
	paths, err := db.Repos()
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := opts.Policy.withDefaults()
	h := p.Horizon(now()).UnixMilli()
	var todo []string
	for _, path := range paths {
		// A repository with commits to drop (a purge) is compacted
		// whatever its size, until they are gone.
		dropping := opts.Drop != nil && opts.Drop(path) != nil
		if size, err := db.LogSize(path); !dropping && (err != nil || size < p.MinBytes || planned[path] == h) {
			continue
		}
		planned[path] = h
		todo = append(todo, path)
	}
	if len(todo) == 0 {
		return nil, nil
	}
	return CollectAll(ctx, db, todo, &opts.Options)
}
