package goatdb

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// A write a server refuses is never dropped silently, nor sent again and
// again: after the sync that learned of the refusal it is quarantined
// (repo.ExcludeQuarantined): kept in the log, out of the item's value and
// of what this peer syncs, and listed by Rejected until Reauthor writes
// it again, Discard drops it or Restore brings it back. The commits built
// on it are quarantined with it. A refusal worth retrying unchanged (the
// reason starts with repo.MissingParents: the server lacked a parent the
// next sync sends) quarantines nothing.
//
// Commits a server answers as hidden (it holds them, but this session may
// no longer read their item) are forgotten (repo.ExcludeForgotten): the
// item leaves every read and query here, Watch reports ErrAccessRemoved
// and a query's QueryRemoved event is marked AccessRemoved. When that
// server sends one of them again, the session may read it again: they
// are restored.
//
// A commit a server refuses as below its horizon after an earlier sync
// left it there (syncproto.Stats.Collected) is history that server
// collected: this peer, which kept it, leaves it out too
// (repo.ExcludeCollected), so that it does not merge as a leaf with the
// history that replaced it. It is no refused write: Rejected does not
// list it, and a quarantined write built on it stays listed.
//
// The server's name and reason are kept in the exclusion's reason, as
// "rejected by URL: REASON", "no longer readable on URL" and "collected by
// URL".

const (
	rejectedByPrefix  = "rejected by "
	unreadablePrefix  = "no longer readable on "
	collectedByPrefix = "collected by "
	reasonSeparator   = ": "
)

// RejectedWrite is a local write a server refused, quarantined here.
type RejectedWrite struct {
	// Path is the item's path, /type/repo/item.
	Path string
	// Commit is the quarantined commit.
	Commit commit.ID
	// Cause is the commit whose refusal quarantined Commit: Commit itself,
	// or an earlier write it builds on. Discard, Reauthor and Restore act
	// on every commit of one Cause together.
	Cause commit.ID
	// Reason is the server's reason for refusing Cause.
	Reason string
	// Server is the URL of the server that refused it; "" if the
	// quarantine was not made by a sync of this package.
	Server string
	// At is when it was quarantined.
	At time.Time
}

// Rejected lists the writes servers refused that are quarantined in the
// repository /type/repo (every repository for ""), in log order per
// repository. A repository that does not exist is an error wrapping
// ErrNotFound.
func (db *DB) Rejected(repoPath string) ([]RejectedWrite, error) {
	paths := []string{repoPath}
	if repoPath == "" {
		var err error
		if paths, err = db.Repos(); err != nil {
			return nil, err
		}
	}
	var out []RejectedWrite
	for _, rp := range paths {
		r, release, err := db.AcquireExisting(rp)
		if err != nil {
			return nil, err
		}
		out = append(out, quarantinedIn(rp, r, "")...)
		release()
	}
	return out, nil
}

// quarantinedIn lists the quarantined writes of repository rp, of item key
// only unless key is "".
func quarantinedIn(rp string, r *repo.Repo, key string) []RejectedWrite {
	var out []RejectedWrite
	for _, e := range r.Excluded() {
		if e.Kind != repo.ExcludeQuarantined || key != "" && e.Key != key {
			continue
		}
		server, reason := splitReason(e.Reason, rejectedByPrefix)
		out = append(out, RejectedWrite{Path: rp + "/" + e.Key, Commit: e.ID, Cause: e.Root,
			Reason: reason, Server: server, At: e.At})
	}
	return out
}

// splitReason takes an exclusion's reason apart into the server and its
// reason, if it starts with prefix and a server URL.
func splitReason(s, prefix string) (server, reason string) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", s
	}
	// A URL has no spaces, so the first ": " ends it.
	server, reason, ok = strings.Cut(rest, reasonSeparator)
	if !ok {
		return rest, ""
	}
	return server, reason
}

// Discard drops quarantined writes: they stay in the log, out of every
// value and of sync, and are no longer listed by Rejected. path is an
// item /type/repo/item or a repository /type/repo; ids name writes that
// Rejected lists under it (each takes the writes of its Cause with it),
// and none means all of them. An id that is not a rejected write under
// path is an error wrapping ErrNotFound, and nothing is discarded.
func (db *DB) Discard(path string, ids ...commit.ID) error {
	r, release, picked, err := db.pickRejected("discard", path, ids)
	defer release()
	if err != nil || len(picked) == 0 {
		return err
	}
	if err := r.Discard(picked); err != nil {
		return fmt.Errorf("goatdb: discard rejected writes of %s: %w", path, err)
	}
	return nil
}

// Reauthor writes quarantined writes again: per item, the change they
// made (relative to the value they were written on) is applied to the
// item's current value as one new commit, signed by this database's
// session, so other fields changed since stay as they are; then the
// quarantined writes are discarded. It is
// how work refused for a session that had expired or was revoked gets
// through once the session has logged in again (DB.LoginCode); the next
// sync sends the new commits. path and ids are as for Discard. It returns
// the ids of the new commits (none for an item the change leaves as it
// is).
func (db *DB) Reauthor(path string, ids ...commit.ID) ([]commit.ID, error) {
	r, release, picked, err := db.pickRejected("reauthor", path, ids)
	defer release()
	if err != nil || len(picked) == 0 {
		return nil, err
	}
	cs, err := r.Reauthor(picked)
	out := idsOf(cs)
	if err != nil {
		return out, fmt.Errorf("goatdb: reauthor rejected writes of %s: %w", path, err)
	}
	return out, nil
}

// Restore brings quarantined writes back, as they were: into their
// items' values, and to be sent by the next sync (for a server whose
// rules changed). A server that still refuses them quarantines them
// again. path and ids are as for Discard.
func (db *DB) Restore(path string, ids ...commit.ID) error {
	r, release, picked, err := db.pickRejected("restore", path, ids)
	defer release()
	if err != nil || len(picked) == 0 {
		return err
	}
	if err := r.Restore(picked); err != nil {
		return fmt.Errorf("goatdb: restore rejected writes of %s: %w", path, err)
	}
	return nil
}

// pickRejected returns the repository of path, with a lease the caller
// releases (a no-op on error), and the quarantined commits ids name under
// it (all of them if ids is empty).
func (db *DB) pickRejected(op, path string, ids []commit.ID) (*repo.Repo, func(), []commit.ID, error) {
	if db.opts.ReadOnly {
		return nil, nop, nil, fmt.Errorf("goatdb: %s %s: %w", op, path, ErrReadOnly)
	}
	rp, key := path, ""
	if CheckRepoPath(path) != nil {
		var err error
		if rp, key, err = SplitPath(path); err != nil {
			return nil, nop, nil, err
		}
	}
	r, release, err := db.AcquireExisting(rp)
	if err != nil {
		return nil, nop, nil, fmt.Errorf("goatdb: %s %s: %w", op, path, err)
	}
	listed := quarantinedIn(rp, r, key)
	if len(ids) == 0 {
		out := make([]commit.ID, len(listed))
		for i, w := range listed {
			out[i] = w.Commit
		}
		return r, release, out, nil
	}
	for _, id := range ids {
		if !slices.ContainsFunc(listed, func(w RejectedWrite) bool { return w.Commit == id }) {
			release()
			return nil, nop, nil, fmt.Errorf("goatdb: %s %s: %w: commit %s is not a rejected write there (see DB.Rejected)", op, path, ErrNotFound, id)
		}
	}
	return r, release, ids, nil
}

// settled counts what settle did after a sync.
type settled struct {
	quarantined []RejectedWrite // writes quarantined, their descendants left out
	forgotten   int             // commits forgotten
	collected   int             // commits left out as history the server collected
	restored    int             // forgotten commits the server sent again
}

// settle quarantines the local commits the server refused for good and
// forgets those it answered as hidden, in the repositories of locals.
// What it cannot do is returned as an error; what it did is in the
// result either way.
func (rm *remote) settle(locals []syncproto.Local, st SyncStats) (settled, error) {
	var out settled
	repos := make(map[string]*repo.Repo, len(locals))
	for _, l := range locals {
		if r, ok := l.Repo.(*repo.Repo); ok {
			repos[l.Path] = r
		}
	}
	var errs []error
	for _, g := range refusals(st.Rejected) {
		r := repos[g.path]
		if r == nil {
			continue
		}
		cs := inGraph(r, g.ids)
		if len(cs) == 0 {
			continue
		}
		if err := r.Exclude(idsOf(cs), repo.ExcludeQuarantined, rejectedByPrefix+rm.url+reasonSeparator+g.reason); err != nil {
			errs = append(errs, fmt.Errorf("quarantine the writes %s refused in %s: %w", rm.url, g.path, err))
			continue
		}
		now := rm.db.opts.Now()
		for _, c := range cs {
			out.quarantined = append(out.quarantined, RejectedWrite{Path: g.path + "/" + c.Key(), Commit: c.ID(),
				Cause: c.ID(), Reason: g.reason, Server: rm.url, At: now})
		}
	}
	for path, ids := range byRepo(st.Collected) {
		r := repos[path]
		if r == nil {
			continue
		}
		cs := inGraph(r, ids)
		if len(cs) == 0 {
			continue
		}
		if err := r.Exclude(idsOf(cs), repo.ExcludeCollected, collectedByPrefix+rm.url); err != nil {
			errs = append(errs, fmt.Errorf("leave out the history %s collected in %s: %w", rm.url, path, err))
			continue
		}
		out.collected += len(cs)
		// Writes built on that history were never on the server (it
		// could not take them without it): they are quarantined, so
		// that they stay listed, not left out with it.
		var over []commit.ID
		for _, e := range r.Excluded() {
			if e.Kind == repo.ExcludeCollected && e.ID != e.Root && !e.Merge {
				over = append(over, e.ID)
			}
		}
		if len(over) == 0 {
			continue
		}
		reason := repo.BelowHorizon + ": builds on history the server collected"
		if err := r.Exclude(over, repo.ExcludeQuarantined, rejectedByPrefix+rm.url+reasonSeparator+reason); err != nil {
			errs = append(errs, fmt.Errorf("quarantine the writes on history %s collected in %s: %w", rm.url, path, err))
			continue
		}
		now := rm.db.opts.Now()
		for _, e := range quarantinedIn(path, r, "") {
			if slices.Contains(over, e.Commit) && e.Cause == e.Commit {
				out.quarantined = append(out.quarantined, RejectedWrite{Path: e.Path, Commit: e.Commit, Cause: e.Cause,
					Reason: reason, Server: rm.url, At: now})
			}
		}
	}
	for _, h := range st.Hidden {
		r := repos[h.Path]
		if r == nil {
			continue
		}
		cs := inGraph(r, h.IDs)
		if len(cs) == 0 {
			continue
		}
		if err := r.Exclude(idsOf(cs), repo.ExcludeForgotten, unreadablePrefix+rm.url); err != nil {
			errs = append(errs, fmt.Errorf("forget what %s no longer lets this session read in %s: %w", rm.url, h.Path, err))
			continue
		}
		out.forgotten += len(cs)
	}
	for path, ids := range heldOutside(st.Refused) {
		r := repos[path]
		if r == nil {
			continue
		}
		back := forgottenRoots(r, rm.url, ids)
		if len(back) == 0 {
			continue
		}
		if err := r.Restore(back); err != nil {
			errs = append(errs, fmt.Errorf("restore what %s lets this session read again in %s: %w", rm.url, path, err))
			continue
		}
		out.restored += len(back)
	}
	return out, errors.Join(errs...)
}

// byRepo groups rejections' commits by repository.
func byRepo(rs []syncproto.RepoRejection) map[string][]commit.ID {
	out := map[string][]commit.ID{}
	for _, rj := range rs {
		out[rj.Path] = append(out[rj.Path], rj.ID)
	}
	return out
}

// heldOutside returns, by repository, the commits the server sent that
// were held here outside the synced set.
func heldOutside(rs []syncproto.RepoRejection) map[string][]commit.ID {
	out := map[string][]commit.ID{}
	for _, rj := range rs {
		if rj.Reason == syncproto.HeldOutside {
			out[rj.Path] = append(out[rj.Path], rj.ID)
		}
	}
	return out
}

// forgottenRoots returns those of ids that r forgot by name because
// server hid them. The server sending such a commit means this session
// may read it again. (Commits forgotten only as descendants may be sent
// while their item stays unreadable: they are the session's own.)
func forgottenRoots(r *repo.Repo, server string, ids []commit.ID) []commit.ID {
	want := map[commit.ID]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []commit.ID
	for _, e := range r.Excluded() {
		if e.Kind == repo.ExcludeForgotten && e.ID == e.Root && want[e.ID] && e.Reason == unreadablePrefix+server {
			out = append(out, e.ID)
		}
	}
	return out
}

// refusal is the commits of one repository a server refused for one
// reason.
type refusal struct {
	path, reason string
	ids          []commit.ID
}

// refusals groups the refusals that are not worth retrying unchanged by
// repository and reason, in the order they came (log order, so a parent
// is quarantined before the commits built on it, which it takes along).
func refusals(rs []syncproto.RepoRejection) []refusal {
	var out []refusal
	at := map[[2]string]int{}
	for _, rj := range rs {
		if retryableRefusal(rj.Reason) {
			continue
		}
		k := [2]string{rj.Path, rj.Reason}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, refusal{path: rj.Path, reason: rj.Reason})
		}
		out[i].ids = append(out[i].ids, rj.ID)
	}
	return out
}

// retryableRefusal reports whether a server's reason for refusing a
// commit says that sending it again unchanged may succeed: it lacked the
// commit's parents (repo.MissingParents), which a later round sends.
func retryableRefusal(reason string) bool {
	return strings.HasPrefix(reason, repo.MissingParents)
}

// inGraph returns the commits ids name that r holds in its graph and
// that are not merges: one excluded already (with an ancestor, say) needs
// nothing more, and a merge leaves only with a parent
// (repo.ErrExcludeMerge), which takes it along.
func inGraph(r *repo.Repo, ids []commit.ID) []*commit.Commit {
	var out []*commit.Commit
	seen := map[commit.ID]bool{}
	for _, id := range ids {
		if c, ok := r.Commit(id); ok && !c.IsMerge() && !seen[id] {
			seen[id] = true
			out = append(out, c)
		}
	}
	return out
}

func idsOf(cs []*commit.Commit) []commit.ID {
	out := make([]commit.ID, len(cs))
	for i, c := range cs {
		out[i] = c.ID()
	}
	return out
}

// forgottenBy returns the server that made this peer forget item key of
// r, and whether its commits are forgotten and nothing else of it is
// left.
func forgottenBy(r *repo.Repo, key string) (string, bool) {
	if _, ok := r.Head(key); ok {
		return "", false
	}
	for _, e := range r.Excluded() {
		if e.Key == key && e.Kind == repo.ExcludeForgotten {
			server, _ := splitReason(e.Reason, unreadablePrefix)
			if server == "" {
				server = "a server"
			}
			return server, true
		}
	}
	return "", false
}

// goneError says why item key of repository rp, which existed, is gone.
func goneError(rp, key string, r *repo.Repo) error {
	if server, ok := forgottenBy(r, key); ok {
		return fmt.Errorf("%w: %s/%s is no longer readable on %s; its commits are forgotten here", ErrAccessRemoved, rp, key, server)
	}
	if len(quarantinedIn(rp, r, key)) > 0 {
		return fmt.Errorf("%w: %s/%s: its writes were refused by a server and are quarantined (see DB.Rejected)", ErrNotFound, rp, key)
	}
	return fmt.Errorf("%w: %s/%s left this database", ErrNotFound, rp, key)
}
