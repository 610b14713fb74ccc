package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/server"
)

var gcCommand = &command{
	name:    "gc",
	args:    "[/type/repo]...",
	summary: "collect history older than the horizon and compact the logs",
	about: `Gc collects the history no session can build on any more and rewrites each
repository's log without it, while writers write and clients sync. The
horizon is the start of the UTC day 37 days back (the longest session
certificate lifetime, 30 days, plus the offline grace, 7 days, plus 5
minutes of clock skew). Kept: everything from the horizon on, every commit
that was an item's head since then, the snapshots those need, and every
item's current value however old: current state is never collected. A
repository is compacted when at least a quarter of its log (and 1 MiB)
would be reclaimed, and at most once per horizon (a day); --force
compacts whatever would be reclaimed.

With no repository, gc collects every repository of the data directory.
It prints a line per repository: the commits and bytes before and after,
and the pause writers saw (or why it was skipped). --dry-run prints what
it would do and changes nothing.

Beside a running 'goatdb serve', gc asks it through the admin socket
DIR/auth/admin.sock (serve also collects by itself, once a day); on a
stopped server or a local database it works on the directory itself.
History before the horizon is gone afterwards: 'goatdb log' and 'get --at'
say so.`,
	setup: func(fs *flag.FlagSet) runFunc {
		dry := fs.Bool("dry-run", false, "print what would be collected and change nothing")
		force := fs.Bool("force", false, "compact even when less than a quarter of a log would be reclaimed")
		return func(e *env, args []string) error { return collect(e, args, *dry, *force) }
	},
}

func collect(e *env, args []string, dryRun, force bool) error {
	for _, p := range args {
		if err := goatdb.CheckRepoPath(p); err != nil {
			return usagef("gc", "%v", err)
		}
	}
	req := server.GCRequest{Repos: args, DryRun: dryRun, Force: force}
	var results []gc.Result
	c, err := server.DialAdmin(e.dir)
	switch {
	case err == nil:
		results, err = c.Collect(e.ctx, req)
	case !errors.Is(err, os.ErrNotExist):
		return final(err)
	default:
		results, err = collectHere(e, req)
	}
	for _, r := range results {
		fmt.Fprintln(e.stdout, r)
	}
	var ee *exitError
	switch {
	case errors.Is(err, gc.ErrNoHistory):
		return failf("%v; 'goatdb ls' lists the repositories", err)
	case errors.As(err, &ee):
		return err
	case err != nil:
		return final(err)
	}
	if len(results) == 0 {
		fmt.Fprintln(e.stdout, "no repositories")
	}
	return nil
}

// collectHere collects on the data directory opened here.
func collectHere(e *env, req server.GCRequest) ([]gc.Result, error) {
	logger := slog.New(&warnHandler{mu: new(sync.Mutex), w: e.stderr})
	reg, err := e.reg()
	if err != nil {
		return nil, err
	}
	db, err := goatdb.Open(e.dir, &goatdb.Options{Schemas: reg, Logger: logger, MustExist: true})
	if err != nil {
		return nil, e.openError(err, noAdminSocket(e.dir))
	}
	drop, err := server.ShunDrop(db) // what 'goatdb purge' shunned goes at compaction
	if err != nil {
		return nil, errors.Join(final(err), db.Close())
	}
	results, err := gc.CollectAll(e.ctx, db, req.Repos, &gc.Options{DryRun: req.DryRun, Force: req.Force, Drop: drop})
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", e.dir, cerr))
	}
	return results, err
}
