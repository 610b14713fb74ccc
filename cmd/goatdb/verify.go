package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
)

var verifyCommand = &command{
	name:    "verify",
	args:    "",
	summary: "check every repository log",
	about: `Verify checks every repository log in the data directory: record framing
and checksums, every commit's id (re-hashed) and signature, every delta and
merge (recomputed), and every item's leaves, head and value. It opens the
directory read-only, so it repairs and creates nothing, and it works beside
a running 'goatdb serve': each log is checked up to its last complete record
when verify opened it (what follows is a write in flight, or a torn tail
that the next writer cuts off by itself). A log that cannot be opened at
all (a file that is not a goatdb log) is a problem like any other.

Damage is never deleted. A write (or 'goatdb serve') that finds a damaged
record moves its bytes to FILE.quarantine beside the log, salvages every
commit in it that still verifies, and rebuilds the log without it; verify
reports each quarantined range until it is resolved. To resolve it, sync
with a peer that holds the lost commits ('goatdb sync URL', or let the
server's clients and peers sync): once a sync agrees on every commit and
the commits the damage left missing are back, the range is marked resolved
and verify passes. With no peer holding them, the lost commits are gone
from this copy, and the quarantine file keeps their raw bytes. A file that
is not a goatdb log at all is restored from a backup ('goatdb backup').

Each problem is printed on its own line as
  FILE: offset N: item KEY: commit ID: what is wrong
(offset, item and commit when known), and verify exits 1. With no problem
it prints one summary line and exits 0. --json prints one object:
{"repositories", "items", "commits", "pending", "problems": [{"file",
"offset", "item", "commit", "what"}]}, offset -1 when unknown.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env, args []string) error { return verify(e, args, *asJSON) }
	},
}

type problem struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Item   string `json:"item,omitempty"`
	Commit string `json:"commit,omitempty"`
	What   string `json:"what"`
}

func (p problem) String() string {
	s := p.File + ":"
	if p.Offset >= 0 {
		s += fmt.Sprintf(" offset %d:", p.Offset)
	}
	if p.Item != "" {
		s += " item " + p.Item + ":"
	}
	if p.Commit != "" {
		s += " commit " + p.Commit[:12] + ":"
	}
	return s + " " + oneLine(p.What)
}

type verifyReport struct {
	Repositories int       `json:"repositories"`
	Items        int       `json:"items"`
	Commits      int       `json:"commits"`
	Pending      int       `json:"pending"`
	Problems     []problem `json:"problems"`
}

func verify(e *env, args []string, asJSON bool) error {
	if len(args) != 0 {
		return usagef("verify", "verify takes no arguments")
	}
	e.quiet = true // damage is reported as problems, not warnings
	var rep verifyReport
	bad := 0
	err := e.withDB(true, func(db *goatdb.DB) error {
		repos, err := db.Repos()
		if err != nil {
			return err
		}
		rep.Repositories = len(repos)
		rep.Problems = []problem{}
		for _, rp := range repos {
			if err := e.ctx.Err(); err != nil {
				return err
			}
			ps := checkRepo(db, rp, &rep)
			if len(ps) > 0 {
				bad++
			}
			rep.Problems = append(rep.Problems, ps...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
	}
	if n := len(rep.Problems); n > 0 {
		return failf("verify found %d %s in %d of %d %s; see 'goatdb help verify' for what to do", n, plural(n, "problem"), bad, rep.Repositories, pluralY(rep.Repositories))
	}
	if !asJSON {
		s := fmt.Sprintf("ok: %d %s, %d %s, %d %s", rep.Repositories, pluralY(rep.Repositories), rep.Items, plural(rep.Items, "item"), rep.Commits, plural(rep.Commits, "commit"))
		if rep.Pending > 0 {
			s += fmt.Sprintf(" (%d pending: waiting for parents from a peer)", rep.Pending)
		}
		fmt.Fprintln(e.stdout, s)
	}
	return nil
}

func pluralY(n int) string {
	if n == 1 {
		return "repository"
	}
	return "repositories"
}

// checkRepo checks one repository and adds its counts to rep.
func checkRepo(db *goatdb.DB, rp string, rep *verifyReport) []problem {
	file := filepath.Join(db.Dir(), filepath.FromSlash(strings.TrimPrefix(rp, "/"))+".log")
	r, err := db.LookupRepo(rp)
	if err != nil {
		off := int64(-1)
		if damaged(err) {
			off = 0 // the header
		}
		what := strings.TrimPrefix(err.Error(), "open "+file+": ")
		return []problem{{File: file, Offset: off, What: "cannot open the log: " + what}}
	}
	st := r.Stats()
	rep.Items += st.Items
	rep.Commits += st.Commits
	rep.Pending += st.Pending
	var ps []problem
	for _, p := range r.Check() {
		ps = append(ps, fromRepo(r.Path(), p))
	}
	return ps
}

func fromRepo(file string, p repo.Problem) problem {
	// Damage reasons already start with their offset.
	what := strings.TrimPrefix(p.What, fmt.Sprintf("offset %d: ", p.Offset))
	q := problem{File: file, Offset: p.Offset, Item: p.Item, What: what}
	if !p.Commit.IsZero() {
		q.Commit = p.Commit.String()
	}
	return q
}
