package main

import (
	"cmp"
	"flag"
	"slices"
	"strings"

	"github.com/goatdb/goatdb"
)

var exportCommand = &command{
	name:    "export",
	args:    "REPO",
	summary: "print a repository's live items as JSON lines",
	about: `Export prints the repository's items that are not deleted, sorted by key,
one JSON object per line:

  {"key": "t1", "schema": "task", "fields": {"title": "Write docs", ...}}

"schema" (the item's schema namespace) is left out for items without one.
Fields are written as 'goatdb get' writes them. 'goatdb import' reads the
same lines: export then import into an empty directory (with the same
schema file) gives the same items. History is not exported.`,
	setup: func(*flag.FlagSet) runFunc { return export },
}

// record is one line of export and import.
type record struct {
	Key    string         `json:"key"`
	Schema string         `json:"schema,omitempty"`
	Fields map[string]any `json:"fields"`
}

func export(e *env, args []string) error {
	if len(args) != 1 {
		return usagef("export", "export takes one REPO")
	}
	rp := args[0]
	if goatdb.CheckRepoPath(rp) != nil {
		return invalidPath(rp, "/type/repo")
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		if ok, err := repoExists(db, rp); err != nil {
			return err
		} else if !ok {
			return failf("repository %s not found ('goatdb ls' lists the repositories)", rp)
		}
		var recs []record
		for it, err := range db.All(rp) {
			if err != nil {
				return err
			}
			key := it.Path()[strings.LastIndexByte(it.Path(), '/')+1:]
			recs = append(recs, record{Key: key, Schema: it.Schema().NS, Fields: itemJSON(it.Data())})
		}
		slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(a.Key, b.Key) })
		for _, r := range recs {
			if err := writeJSON(e.stdout, r); err != nil {
				return err
			}
		}
		return nil
	})
}
