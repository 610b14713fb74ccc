package main

import (
	"flag"
	"fmt"
	"slices"

	"github.com/goatdb/goatdb"
)

var lsCommand = &command{
	name:    "ls",
	args:    "[REPO]",
	summary: "list the items of a repository (or, without REPO, the repositories)",
	about: `Ls prints the paths of the repository's items, sorted, one per line;
--deleted includes deleted items. Without REPO it lists the repositories.
A repository that does not exist exits 1.

--json prints one JSON object per line instead: {"path": ..., "deleted": ...}
for items, {"path": ...} for repositories.`,
	setup: func(fs *flag.FlagSet) runFunc {
		deleted := fs.Bool("deleted", false, "include deleted items")
		asJSON := fs.Bool("json", false, "print JSON lines")
		return func(e *env, args []string) error { return ls(e, args, *deleted, *asJSON) }
	},
}

func ls(e *env, args []string, deleted, asJSON bool) error {
	if len(args) > 1 {
		return usagef("ls", "ls takes at most one REPO")
	}
	if len(args) == 1 && goatdb.CheckRepoPath(args[0]) != nil {
		return invalidPath(args[0], "/type/repo")
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		repos, err := db.Repos()
		if err != nil {
			return err
		}
		if len(args) == 0 {
			for _, rp := range repos {
				if err := e.printPath(asJSON, rp, nil); err != nil {
					return err
				}
			}
			return nil
		}
		rp := args[0]
		if !slices.Contains(repos, rp) {
			return failf("repository %s not found ('goatdb ls' lists the repositories)", rp)
		}
		live, err := db.Keys(rp, false)
		if err != nil {
			return err
		}
		keys := live
		if deleted {
			if keys, err = db.Keys(rp, true); err != nil {
				return err
			}
		}
		for _, k := range keys {
			_, isLive := slices.BinarySearch(live, k)
			del := !isLive
			if err := e.printPath(asJSON, rp+"/"+k, &del); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *env) printPath(asJSON bool, path string, deleted *bool) error {
	if !asJSON {
		_, err := fmt.Fprintln(e.stdout, path)
		return err
	}
	return writeJSON(e.stdout, struct {
		Path    string `json:"path"`
		Deleted *bool  `json:"deleted,omitempty"`
	}{path, deleted})
}
