package main

import (
	"flag"
	"fmt"
	"path/filepath"

	"github.com/goatdb/goatdb"
)

var initCommand = &command{
	name:    "init",
	args:    "",
	summary: "create the data directory and this peer's session key",
	about: `Init creates the data directory and this peer's session key (DIR/session.key,
mode 0600), if they do not exist yet, and prints the directory and the
session id, the public key every commit written here names. Init and
serve are the only commands that create a data directory: every other one
refuses a directory that is not one (it does not exist, or has no
session.key), creating nothing, so that a mistyped --dir is an error and
not a new, empty database.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, `print {"dir": ..., "session": ...}`)
		return func(e *env, args []string) error { return initDir(e, args, *asJSON) }
	},
}

func initDir(e *env, args []string, asJSON bool) error {
	if len(args) != 0 {
		return usagef("init", "init takes no arguments")
	}
	return e.withOpts(goatdb.Options{}, func(db *goatdb.DB) error {
		dir, err := filepath.Abs(db.Dir())
		if err != nil {
			return err
		}
		session := db.Session().String()
		if asJSON {
			return writeJSON(e.stdout, map[string]string{"dir": dir, "session": session})
		}
		_, err = fmt.Fprintf(e.stdout, "dir:     %s\nsession: %s\n", dir, session)
		return err
	})
}
