package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
)

var rejectedCommand = &command{
	name:    "rejected",
	args:    "[REPO]",
	summary: "list the local writes servers refused, kept out of the items until reauthor or discard",
	about: `Rejected lists the writes of this directory that a server refused at a
sync (its rules, or a session that had expired or was revoked): they are
quarantined, kept in the log but out of the items' values and of what
syncs send, until 'goatdb reauthor' writes them again or 'goatdb discard'
drops them. Each line names the item, the commit, the server and its
reason; a write built on a refused one names that one as its cause.
Without REPO it lists every repository's. --json prints one JSON object
per write: {"path", "commit", "cause", "server", "reason", "at"}.

Rejected only reads: it creates nothing and works beside a running goatdb.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print one JSON object per write")
		return func(e *env, args []string) error { return listRejected(e, args, *asJSON) }
	},
}

var discardCommand = &command{
	name:    "discard",
	args:    "PATH ID... | PATH --all",
	summary: "drop rejected writes for good",
	about: `Discard drops writes a server refused ('goatdb rejected' lists them): they
stay in the log, out of every value and sync, and are no longer listed.
PATH is the item (or the repository) and ID a commit listed under it; a
write built on a refused one goes with it. --all drops every rejected
write under PATH. An ID that is not a rejected write of PATH exits 1 and
drops nothing.`,
	setup: func(fs *flag.FlagSet) runFunc {
		all := fs.Bool("all", false, "every rejected write under PATH")
		return func(e *env, args []string) error { return settleRejected(e, "discard", args, *all) }
	},
}

var reauthorCommand = &command{
	name:    "reauthor",
	args:    "PATH ID... | PATH --all",
	summary: "write rejected writes again as new commits of this session; print their ids",
	about: `Reauthor writes again what writes a server refused changed: per item, one
new commit on its current value, signed by this directory's session,
after which the refused writes are no longer listed. It is how work
refused because the session had expired or was revoked gets through:
'goatdb login' again, reauthor, then 'goatdb sync'. PATH and ID are as
for discard; it prints the new commit ids, one per line (none for an
item the change leaves as it is).`,
	setup: func(fs *flag.FlagSet) runFunc {
		all := fs.Bool("all", false, "every rejected write under PATH")
		return func(e *env, args []string) error { return settleRejected(e, "reauthor", args, *all) }
	},
}

type rejectedJSON struct {
	Path   string `json:"path"`
	Commit string `json:"commit"`
	Cause  string `json:"cause"`
	Server string `json:"server"`
	Reason string `json:"reason"`
	At     string `json:"at"`
}

func listRejected(e *env, args []string, asJSON bool) error {
	if len(args) > 1 {
		return usagef("rejected", "rejected takes at most one REPO")
	}
	repo := ""
	if len(args) == 1 {
		repo = args[0]
		if goatdb.CheckRepoPath(repo) != nil {
			return invalidPath(repo, "/type/repo")
		}
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		ws, err := db.Rejected(repo)
		switch {
		case errors.Is(err, goatdb.ErrNotFound):
			return failf("repository %s not found", repo)
		case err != nil:
			return err
		}
		if len(ws) == 0 && !asJSON {
			_, err := fmt.Fprintln(e.stdout, "no rejected writes")
			return err
		}
		for _, w := range ws {
			var err error
			switch {
			case asJSON:
				err = writeJSON(e.stdout, rejectedJSON{Path: w.Path, Commit: w.Commit.String(), Cause: w.Cause.String(),
					Server: w.Server, Reason: w.Reason, At: w.At.UTC().Format(time.RFC3339)})
			default:
				err = printRejected(e, w)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func printRejected(e *env, w goatdb.RejectedWrite) error {
	by := w.Server
	if by == "" {
		by = "a server"
	}
	cause := ""
	if w.Cause != w.Commit {
		cause = fmt.Sprintf(" (builds on %s)", w.Cause.Short())
	}
	_, err := fmt.Fprintf(e.stdout, "%s %s%s: rejected by %s at %s: %s\n", w.Path, w.Commit, cause, by,
		w.At.UTC().Format(time.RFC3339), w.Reason)
	return err
}

// settleRejected runs discard or reauthor.
func settleRejected(e *env, verb string, args []string, all bool) error {
	switch {
	case len(args) == 0:
		return usagef(verb, "%s needs the PATH of an item or repository", verb)
	case len(args) == 1 && !all:
		return usagef(verb, "%s needs the commit IDs ('goatdb rejected' lists them), or --all", verb)
	case len(args) > 1 && all:
		return usagef(verb, "give either commit IDs or --all, not both")
	}
	path := args[0]
	if goatdb.CheckRepoPath(path) != nil {
		if _, _, err := goatdb.SplitPath(path); err != nil {
			return invalidPath(path, "/type/repo/item or /type/repo")
		}
	}
	ids := make([]commit.ID, 0, len(args)-1)
	for _, a := range args[1:] {
		id, err := commit.ParseID(a)
		if err != nil {
			return final(fmt.Errorf("%q is not a commit id: %v", a, err))
		}
		ids = append(ids, id)
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		var err error
		if verb == "discard" {
			err = db.Discard(path, ids...)
		} else {
			var out []commit.ID
			out, err = db.Reauthor(path, ids...)
			for _, id := range out {
				fmt.Fprintln(e.stdout, id)
			}
		}
		if errors.Is(err, goatdb.ErrNotFound) {
			return failf("%v", err)
		}
		return err
	})
}
