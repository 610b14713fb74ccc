package main

import (
	"errors"
	"flag"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
)

var getCommand = &command{
	name:    "get",
	args:    "PATH",
	summary: "print an item's fields as one JSON object",
	about: `Get prints the item's fields as one JSON object on one line: keys sorted,
sets as sorted arrays, dates as RFC 3339 in UTC with milliseconds, ints as
integers and numbers with a fraction or exponent (3.0, not 3, so that put
reads them back as numbers). A missing or deleted item exits 1.

--at prints an older version: the one a commit holds (its 64-hex id, from
'goatdb log'), or the one the item had at a time (RFC 3339, like
2024-05-01T12:00:00Z).`,
	setup: func(fs *flag.FlagSet) runFunc {
		at := fs.String("at", "", "print the version of commit `COMMIT|TIME` (64-hex id or RFC 3339 time)")
		return func(e *env, args []string) error { return get(e, args, *at) }
	},
}

func get(e *env, args []string, at string) error {
	if len(args) != 1 {
		return usagef("get", "get takes one PATH")
	}
	path := args[0]
	if _, _, err := goatdb.SplitPath(path); err != nil {
		return invalidPath(path, "/type/repo/item")
	}
	var id commit.ID
	var t time.Time
	if at != "" {
		var err error
		if id, err = commit.ParseID(at); err != nil {
			if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
				return usagef("get", "--at %q is neither a commit id (64 hex digits, from 'goatdb log') nor an RFC 3339 time like 2024-05-01T12:00:00Z", at)
			}
		}
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		var it goatdb.Item
		var err error
		switch {
		case !id.IsZero():
			it, err = db.GetAt(path, id)
		case !t.IsZero():
			it, err = db.GetAsOf(path, t)
		default:
			it, err = db.Get(path)
		}
		switch {
		case errors.Is(err, goatdb.ErrDeleted):
			return failf("%s is deleted; 'goatdb put' restores it and 'goatdb log' shows its history", path)
		case errors.Is(err, goatdb.ErrCollected):
			return failf("%v; 'goatdb log %s' shows the history kept", err, path)
		case errors.Is(err, goatdb.ErrNotFound) && at == "":
			return failf("%s not found", path)
		case errors.Is(err, goatdb.ErrNotFound):
			return failf("%w", err)
		case err != nil:
			return err
		case it.Deleted():
			return failf("%s was deleted at %s ('goatdb log' shows its history)", path, at)
		}
		return writeJSON(e.stdout, itemJSON(it.Data()))
	})
}
