package main

import (
	"errors"
	"flag"

	"github.com/goatdb/goatdb"
)

var logCommand = &command{
	name:    "log",
	args:    "PATH",
	summary: "print an item's history, newest first",
	about: `Log prints the item's commits, newest first (a commit always before its
parents), one JSON object per line:

  {"id": "<64 hex>", "parents": ["<64 hex>", ...], "time": "<RFC 3339, UTC, ms>",
   "session": "<session id>", "kind": "full" | "delta" | "merge"}

A merge has "session": null (every peer computes the same merge), and a
commit still waiting for parents from a peer has "pending": true. After
'goatdb gc', the oldest commits kept have "collected": true: history before
them was collected, and their parents are gone. Any id listed can be given
to 'goatdb get --at'; a time before the history kept exits 1 saying so. A
deleted item still has its history; a missing item exits 1.

-p adds to each commit what it changed, as 'goatdb diff' prints it: the
list "changes" against its first parent (against nothing for the first
commit), and "deleted" or "restored" if it deleted or restored the item. A
commit whose parent was collected has no "changes".`,
	setup: func(fs *flag.FlagSet) runFunc {
		patch := fs.Bool("p", false, "show what each commit changed")
		return func(e *env, args []string) error { return history(e, args, *patch) }
	},
}

type logLine struct {
	ID      string   `json:"id"`
	Parents []string `json:"parents"`
	Time    string   `json:"time"`
	Session *string  `json:"session"`
	Kind    string   `json:"kind"`
	Pending bool     `json:"pending,omitempty"`
	// Collected: history before this commit was collected (goatdb gc);
	// its parents are named but gone.
	Collected bool `json:"collected,omitempty"`
	// With -p: the commit's changes against its first parent.
	Changes  *[]changeLine `json:"changes,omitempty"`
	Deleted  bool          `json:"deleted,omitempty"`
	Restored bool          `json:"restored,omitempty"`
}

func history(e *env, args []string, patch bool) error {
	if len(args) != 1 {
		return usagef("log", "log takes one PATH")
	}
	path := args[0]
	if _, _, err := goatdb.SplitPath(path); err != nil {
		return invalidPath(path, "/type/repo/item")
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		hist, err := db.History(path)
		if errors.Is(err, goatdb.ErrNotFound) {
			return failf("%s not found", path)
		} else if err != nil {
			return err
		}
		for _, c := range hist {
			l := logLine{ID: c.ID.String(), Parents: []string{}, Time: formatTime(c.Time), Kind: string(c.Kind), Pending: c.Pending,
				Collected: c.Collected}
			for _, p := range c.Parents {
				l.Parents = append(l.Parents, p.String())
			}
			if !c.Session.IsZero() {
				s := c.Session.String()
				l.Session = &s
			}
			if patch {
				if err := l.addChanges(db, path, c); err != nil {
					return err
				}
			}
			if err := writeJSON(e.stdout, l); err != nil {
				return err
			}
		}
		return nil
	})
}

// addChanges adds what commit c changed against its first parent (or
// nothing, for a first commit); none if that parent was collected.
func (l *logLine) addChanges(db *goatdb.DB, path string, c goatdb.CommitInfo) error {
	from := goatdb.VersionAbsent()
	if len(c.Parents) > 0 {
		if c.Collected {
			return nil
		}
		from = goatdb.VersionAt(c.Parents[0])
	}
	d, err := db.Diff(path, from, goatdb.VersionAt(c.ID))
	if err != nil {
		if errors.Is(err, goatdb.ErrNotFound) || errors.Is(err, goatdb.ErrCollected) {
			return nil // pending, or its parent is not here
		}
		return err
	}
	changes := changeLines(d)
	l.Changes, l.Deleted, l.Restored = &changes, d.Deleted, d.Restored
	return nil
}
