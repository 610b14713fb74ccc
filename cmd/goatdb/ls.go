package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

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
for items, {"path": ...} for repositories.

--prefix P lists only the items whose key starts with P, --after K only
those whose key comes after K, and --limit N at most N of them. When the
limit cuts the list short, a last line on standard error says how to get
the next page: "more: --after KEY". Pages come from the repository's
ordered index: listing the first N items of a large repository reads N.`,
	setup: func(fs *flag.FlagSet) runFunc {
		deleted := fs.Bool("deleted", false, "include deleted items")
		asJSON := fs.Bool("json", false, "print JSON lines")
		page := new(goatdb.RangeOptions)
		fs.StringVar(&page.Prefix, "prefix", "", "list only items whose key starts with `P`")
		fs.StringVar(&page.After, "after", "", "list only items whose key comes after `KEY`")
		fs.IntVar(&page.Limit, "limit", 0, "list at most `N` items (0: all)")
		return func(e *env, args []string) error { return ls(e, args, *deleted, *asJSON, *page) }
	},
}

func ls(e *env, args []string, deleted, asJSON bool, page goatdb.RangeOptions) error {
	if len(args) > 1 {
		return usagef("ls", "ls takes at most one REPO")
	}
	if len(args) == 1 && goatdb.CheckRepoPath(args[0]) != nil {
		return invalidPath(args[0], "/type/repo")
	}
	if page.Limit < 0 {
		return usagef("ls", "--limit %d is negative", page.Limit)
	}
	if len(args) == 0 && page != (goatdb.RangeOptions{}) {
		return usagef("ls", "--prefix, --after and --limit list the items of a REPO")
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
		return lsItems(e, db, rp, page, deleted, asJSON)
	})
}

// lsItems prints the paths of the items page selects, in key order; when
// page.Limit cut the list short it says on stderr how to get the next.
func lsItems(e *env, db *goatdb.DB, rp string, page goatdb.RangeOptions, deleted, asJSON bool) error {
	limit := page.Limit
	if limit > 0 {
		page.Limit++ // one more tells whether there is a next page
	}
	keys, isDeleted, err := lsKeys(db, rp, page, deleted)
	if err != nil {
		return err
	}
	more := limit > 0 && len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	for _, k := range keys {
		del := isDeleted(k)
		if err := e.printPath(asJSON, rp+"/"+k, &del); err != nil {
			return err
		}
	}
	if more {
		_, err = fmt.Fprintf(e.stderr, "more: --after %s\n", keys[len(keys)-1])
	}
	return err
}

// lsKeys returns the sorted keys page selects and whether each is deleted.
// Live keys come from a range read; with deleted, which a range leaves
// out, from the sorted list of every key.
func lsKeys(db *goatdb.DB, rp string, page goatdb.RangeOptions, deleted bool) ([]string, func(string) bool, error) {
	if !deleted {
		var keys []string
		for k, err := range db.RangeKeys(rp, page) {
			if err != nil {
				return nil, nil, err
			}
			keys = append(keys, k)
		}
		return keys, func(string) bool { return false }, nil
	}
	live, err := db.Keys(rp, false)
	if err != nil {
		return nil, nil, err
	}
	all, err := db.Keys(rp, true)
	if err != nil {
		return nil, nil, err
	}
	i, found := slices.BinarySearch(all, max(page.After, page.Prefix))
	if found && page.After != "" && all[i] == page.After {
		i++
	}
	keys := all[i:]
	if n := slices.IndexFunc(keys, func(k string) bool { return !strings.HasPrefix(k, page.Prefix) }); n >= 0 {
		keys = keys[:n]
	}
	if page.Limit > 0 {
		keys = keys[:min(len(keys), page.Limit)]
	}
	return keys, func(k string) bool { _, ok := slices.BinarySearch(live, k); return !ok }, nil
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
