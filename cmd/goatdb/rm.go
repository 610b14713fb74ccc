package main

import (
	"errors"
	"flag"

	"github.com/goatdb/goatdb"
)

var rmCommand = &command{
	name:    "rm",
	args:    "PATH",
	summary: "delete an item (put restores it)",
	about: `Rm marks the item deleted. Its history stays ('goatdb log'), 'goatdb get
--at' still shows its older versions, and 'goatdb put' restores it. A
missing or already deleted item exits 1.`,
	setup: func(*flag.FlagSet) runFunc { return rm },
}

func rm(e *env, args []string) error {
	if len(args) != 1 {
		return usagef("rm", "rm takes one PATH")
	}
	path := args[0]
	if _, _, err := goatdb.SplitPath(path); err != nil {
		return invalidPath(path, "/type/repo/item")
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		// Get first: Delete would create the log of a missing repository.
		_, err := db.Get(path)
		switch {
		case errors.Is(err, goatdb.ErrDeleted):
			return failf("%s is already deleted", path)
		case errors.Is(err, goatdb.ErrNotFound):
			return failf("%s not found", path)
		case err != nil:
			return err
		}
		return db.Delete(path)
	})
}
