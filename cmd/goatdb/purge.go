package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

var purgeCommand = &command{
	name:    "purge",
	args:    "/type/repo/item --reason TEXT",
	summary: "erase an item's whole history from a server, its peers and its clients",
	about: `Purge removes an item's whole history everywhere, for erasure requests. It
writes a shun record in the server's /sys/shun: the item's path, the ids of
every commit it has now, the reason (required) and the time. Every node of
the deployment applies it as soon as the record reaches it: sync no longer
sends any of those commits, nor any commit built on them, to clients or to
peers; a client that holds them forgets the item at its next sync, as when
it loses read access to it; a push of a commit built on them, or of one of
them the server no longer holds, is refused as purged. The item may be written again afterwards, with a
fresh history.

The commits stay in the server's log, hidden, until the next compaction
drops them: 'goatdb gc' beside the running server (it compacts every
repository with purged commits, however small) or serve's own collection,
within the hour. The server's own reads of its directory ('goatdb get' on
it) still show the item until then.

Not promised: a client that had the item keeps what it read before, and a
malicious one keeps it for good; a client that syncs only after the
compaction gets its copy refused as purged and keeps it quarantined
('goatdb rejected' lists it, 'goatdb discard' drops it); backups keep it;
the reason is recorded, in /sys, readable by the operator.

Beside a running 'goatdb serve' purge asks it through the admin socket
DIR/auth/admin.sock; on a stopped server it writes the record in the data
directory, and the server applies it when it starts. An item with nothing
left to purge exits 1.`,
	setup: func(fs *flag.FlagSet) runFunc {
		reason := fs.String("reason", "", "why the item is purged (`TEXT`, required; recorded with the purge)")
		return func(e *env, args []string) error { return purgeItem(e, args, *reason) }
	},
}

func purgeItem(e *env, args []string, reason string) error {
	if len(args) != 1 {
		return usagef("purge", "purge takes one item path, /type/repo/item")
	}
	path := args[0]
	rp, _, err := goatdb.SplitPath(path)
	switch {
	case err != nil:
		return usagef("purge", "%v", err)
	case strings.HasPrefix(rp, "/sys/"):
		return usagef("purge", "%s is in /sys, which holds the server's accounts and purges; it cannot be purged", path)
	case strings.TrimSpace(reason) == "":
		return usagef("purge", "purge needs --reason TEXT: why the item is purged (it is recorded)")
	case len(reason) > server.MaxPurgeReason:
		return usagef("purge", "--reason is %d bytes; at most %d", len(reason), server.MaxPurgeReason)
	}
	var sh server.Shun
	c, err := server.DialAdmin(e.dir)
	switch {
	case err == nil:
		sh, err = c.Purge(server.PurgeRequest{Path: path, Reason: reason})
	case !errors.Is(err, os.ErrNotExist):
		return final(err)
	default:
		sh, err = purgeHere(e, path, reason)
	}
	switch {
	case errors.Is(err, goatdb.ErrNotFound):
		return failf("nothing to purge at %s: no such item, or it was purged already; 'goatdb ls' lists the items", path)
	case errors.Is(err, server.ErrPurgeInput):
		return final(err)
	case err != nil:
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return final(err)
	}
	commits := "commits"
	if len(sh.Commits) == 1 {
		commits = "commit"
	}
	_, err = fmt.Fprintf(e.stdout, "purged %s: %d %s, at %s; no node sends them any more, and the next compaction ('goatdb gc') drops them from the logs\n",
		sh.Path, len(sh.Commits), commits, sh.At.UTC().Format(time.RFC3339))
	return err
}

// purgeHere purges on the data directory of a stopped server.
func purgeHere(e *env, path, reason string) (server.Shun, error) {
	logger := slog.New(&warnHandler{mu: new(sync.Mutex), w: e.stderr})
	db, err := goatdb.Open(e.dir, &goatdb.Options{Logger: logger, MustExist: true})
	if err != nil {
		return server.Shun{}, e.openError(err, noAdminSocket(e.dir))
	}
	if !fileExists(filepath.Join(e.dir, "auth")) {
		err := fmt.Errorf("%s is not a server's data directory (it has no auth/): purge works on the directory of 'goatdb serve'", e.dir)
		return server.Shun{}, errors.Join(final(err), db.Close())
	}
	sh, err := server.Purge(db, path, reason, time.Now())
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", e.dir, cerr))
	}
	return sh, err
}
