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
session id, the public key every commit written here names. Every other
command that writes also creates them on first use; the commands that only
read create nothing.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, `print {"dir": ..., "session": ...}`)
		return func(e *env, args []string) error { return initDir(e, args, *asJSON) }
	},
}

func initDir(e *env, args []string, asJSON bool) error {
	if len(args) != 0 {
		return usagef("init", "init takes no arguments")
	}
	return e.withDB(false, func(db *goatdb.DB) error {
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
