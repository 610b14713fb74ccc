package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/goatdb/goatdb"
)

var syncCommand = &command{
	name:    "sync",
	args:    "URL[,URL...] [REPO...]",
	summary: "sync repositories with a goatdb server until both hold the same commits",
	about: `Sync exchanges commits with the server at URL (for example
http://127.0.0.1:8080) until each repository holds the same commits on both
sides, then prints what moved. Without REPO it syncs every repository in
the data directory; a REPO that does not exist here is created, so an empty
directory catches up by naming it. Several URLs separated by commas name
nodes of one cluster: sync uses the first that answers, moving to the next
while a node is unreachable or answers a temporary error (such as 503).

Every commit received is verified (its id and signature) before it is
stored; a commit the server refuses is listed with the reason and kept
aside, out of its item, until 'goatdb reauthor' or 'goatdb discard'
('goatdb rejected' lists it). The exit status is 0 only if every
repository synced and neither side refused a commit: 1 if the server
refused commits or this directory refused some of the server's (each is
listed with the reason), 2 if the server could not be reached, did not
accept this session, or the sync of any repository failed. With no
repository here and none named, sync asks the server who it takes this
session for, so that an unreachable server or a missing login fails all
the same. --json prints the figures as one JSON object.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print one JSON object")
		return func(e *env, args []string) error { return syncRepos(e, args, *asJSON) }
	},
}

func syncRepos(e *env, args []string, asJSON bool) error {
	if len(args) == 0 {
		return usagef("sync", "sync needs the server URL")
	}
	var urls []string
	for _, u := range strings.Split(args[0], ",") {
		n, err := goatdb.NormalizeServerURL(strings.TrimSpace(u))
		if err != nil {
			return usagef("sync", "%v", err)
		}
		urls = append(urls, n)
	}
	url := strings.Join(urls, ",")
	for _, p := range args[1:] {
		if goatdb.CheckRepoPath(p) != nil {
			return invalidPath(p, "/type/repo")
		}
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		if len(args) == 1 {
			repos, err := db.Repos()
			if err != nil {
				return err
			}
			if len(repos) == 0 {
				return syncNothing(e, db, urls[0], asJSON)
			}
		}
		st, err := db.Sync(e.ctx, url, args[1:]...)
		if perr := printSync(e, url, st, asJSON); perr != nil {
			return perr
		}
		return syncError(err, st)
	})
}

// syncNothing is a sync with no repository to sync: it still asks the
// server, which must answer and accept this session.
func syncNothing(e *env, db *goatdb.DB, url string, asJSON bool) error {
	if _, err := db.WhoAmI(e.ctx, url); err != nil {
		return syncError(err, goatdb.SyncStats{})
	}
	if asJSON {
		return printSync(e, url, goatdb.SyncStats{}, true)
	}
	_, err := fmt.Fprintf(e.stdout, "no repositories here to sync; %s answers (name a repository to fetch it)\n", url)
	return err
}

// syncError is the command's error for a sync that returned err with the
// figures st: any failure exits 2, else a commit refused by either side
// (listed by printSync) exits 1.
func syncError(err error, st goatdb.SyncStats) error {
	rest := withoutRejected(err)
	switch {
	case errors.Is(rest, goatdb.ErrUnreachable):
		return final(fmt.Errorf("%w; is 'goatdb serve' running there?", rest))
	case rest != nil:
		return rest
	case len(st.Rejected) > 0 && len(st.Refused) > 0:
		return failf("the server refused %d commits, and %d of the server's were refused here (listed above)", len(st.Rejected), len(st.Refused))
	case len(st.Rejected) > 0:
		return failf("the server refused %d commits (listed above)", len(st.Rejected))
	case len(st.Refused) > 0:
		return failf("%d of the server's commits were refused here (listed above)", len(st.Refused))
	}
	return nil
}

// withoutRejected returns err without the parts that wrap
// goatdb.ErrRejected, which the rejections listed say; nil if that was
// all of it.
func withoutRejected(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			rest = append(rest, withoutRejected(e))
		}
		return errors.Join(rest...)
	}
	if errors.Is(err, goatdb.ErrRejected) {
		return nil
	}
	return err
}

func printSync(e *env, url string, st goatdb.SyncStats, asJSON bool) error {
	if asJSON {
		type rej struct {
			Repo   string `json:"repo"`
			Commit string `json:"commit"`
			Reason string `json:"reason"`
		}
		out := struct {
			Server        string `json:"server"`
			Rounds        int    `json:"rounds"`
			Sent          int    `json:"commits_sent"`
			Received      int    `json:"commits_received"`
			BytesSent     int64  `json:"bytes_sent"`
			BytesReceived int64  `json:"bytes_received"`
			Converged     int    `json:"converged"`
			Rejected      []rej  `json:"rejected"`
			Refused       []rej  `json:"refused"`
		}{Server: url, Rounds: st.Rounds, Sent: st.CommitsSent, Received: st.CommitsReceived,
			BytesSent: st.BytesSent, BytesReceived: st.BytesReceived, Converged: st.Converged,
			Rejected: []rej{}, Refused: []rej{}}
		for _, r := range st.Rejected {
			out.Rejected = append(out.Rejected, rej{r.Path, r.ID.String(), r.Reason})
		}
		for _, r := range st.Refused {
			out.Refused = append(out.Refused, rej{r.Path, r.ID.String(), r.Reason})
		}
		return writeJSON(e.stdout, out)
	}
	if st.BytesReceived == 0 {
		return nil // no answer: the error says why
	}
	fmt.Fprintf(e.stdout, "sent %d %s (%s), received %d %s (%s), %d %s, %d %s in sync\n",
		st.CommitsSent, plural(st.CommitsSent, "commit"), byteCount(st.BytesSent),
		st.CommitsReceived, plural(st.CommitsReceived, "commit"), byteCount(st.BytesReceived),
		st.Rounds, plural(st.Rounds, "round trip"), st.Converged, pluralY(st.Converged))
	for _, r := range st.Rejected {
		fmt.Fprintf(e.stdout, "rejected by the server: %s commit %s: %s\n", r.Path, r.ID, r.Reason)
	}
	for _, r := range st.Refused {
		fmt.Fprintf(e.stdout, "refused here: %s commit %s: %s\n", r.Path, r.ID, r.Reason)
	}
	return nil
}

func byteCount(n int64) string {
	switch {
	case n < 10_000:
		return fmt.Sprintf("%d B", n)
	case n < 10_000_000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
