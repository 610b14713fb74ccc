package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/goatdb/goatdb"
)

var backupCommand = &command{
	name:    "backup",
	args:    "DEST",
	summary: "copy the data directory, consistently, while it is in use",
	about: `Backup writes a consistent copy of the data directory to DEST, a directory
that must not exist yet or be empty, and prints what it copied. Nothing
needs to stop: it opens the directory read-only, beside a running 'goatdb
serve' or any other writer, and copies every repository log up to its last
complete record, with the session key, schemas.json, a server's
deployment keys (auth/) and stored logins (credentials.json). The copy holds
every write acknowledged before backup started (and perhaps later ones).
Every file is synced before backup returns; only exit status 0 means the
copy is whole. Sync resume points and saved query states are not copied:
they are rebuilt.

To restore: stop the server (or whatever has the directory open), move the
data directory aside, copy DEST in its place, and start the server again.
Peers that hold newer commits send them back at the next sync.`,
	setup: func(*flag.FlagSet) runFunc { return backup },
}

func backup(e *env, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usagef("backup", "backup takes one DEST directory")
	}
	dest := args[0]
	return e.withDB(true, func(db *goatdb.DB) error {
		err := db.Backup(e.ctx, dest)
		if errors.Is(err, fs.ErrExist) {
			return final(fmt.Errorf("backup: %s is not empty; give a new or empty directory (a backup never overwrites one)", dest))
		}
		if err != nil {
			return err
		}
		repos, size, err := backupSize(dest)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "backed up %d %s (%s) to %s\n", repos, pluralY(repos), byteCount(size), dest)
		return err
	})
}

// backupSize counts the repository logs in a backup and the bytes of all
// its files.
func backupSize(dir string) (repos int, size int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		if strings.HasSuffix(p, ".log") && filepath.Dir(filepath.Dir(p)) == filepath.Clean(dir) {
			repos++
		}
		return nil
	})
	return repos, size, err
}
