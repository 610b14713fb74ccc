package repo

import (
	"fmt"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// Rejection says why a received commit was not stored.
type Rejection struct {
	ID     commit.ID // blake3 of the bytes' body, or of all the bytes if they do not decode
	Reason string
}

func (r Rejection) Error() string { return fmt.Sprintf("commit %s: %s", r.ID.Short(), r.Reason) }

// Receive validates commits from another peer and stores the valid ones.
// A commit is rejected, with a reason, if it does not decode, its signature
// does not verify against its session (or it is unsigned where signatures
// are required), it names another repository than this one (see
// Options.Name), it is stamped more than Options.MaxSkew after this peer's
// clock, or, when its parents are here, it does not fit them: wrong
// item, timestamp before a parent, a delta base that is not a full-snapshot
// ancestor, or a merge that differs from the merge this peer computes from
// the same leaves. Commits whose parents are missing are stored as pending
// and checked when they complete. Duplicates are ignored. Under Sync
// durability Receive returns after the stored commits are durable.
func (r *Repo) Receive(encs [][]byte) (stored []commit.ID, rejected []Rejection, err error) {
	if r.log == nil {
		return nil, nil, fmt.Errorf("repo: %s is read-only", r.path)
	}
	decoded := make([]*commit.Commit, 0, len(encs))
	latest := r.opts.Now().UnixMilli() + min(r.opts.MaxSkew.Milliseconds(), 1<<62)
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err == nil {
			err = c.VerifySignature(!r.opts.Trusted)
		}
		if err == nil {
			err = r.fits(c, latest)
		}
		if err != nil {
			id := commit.ID(blake3.Sum256(b))
			if c != nil { // it decodes: name it by its id, as documented
				id = c.ID()
			}
			rejected = append(rejected, Rejection{ID: id, Reason: err.Error()})
			continue
		}
		decoded = append(decoded, c)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, rejected, ErrClosed
	}
	var fresh []*commit.Commit
	seen := map[commit.ID]bool{}
	for _, c := range decoded {
		if r.commits[c.ID()] != nil || seen[c.ID()] || r.held[c.ID()] {
			continue
		}
		if reason := r.precheckLocked(c); reason != "" {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: reason})
			continue
		}
		seen[c.ID()] = true
		fresh = append(fresh, c)
	}
	var t ticket
	if len(fresh) > 0 {
		if r.opts.Durability == Sync {
			t, err = r.holdLocked(fresh, true, nil)
		} else {
			r.untrusted = seen
			_, err = r.appendLocked(fresh)
			r.untrusted = nil
		}
	}
	r.mu.Unlock()
	if err != nil {
		return nil, rejected, err
	}
	if err := r.settleDurable(t); err != nil {
		return nil, rejected, err
	}
	// A commit that completed here but does not fit its parents (a forged
	// merge whose parents came in the same batch, say) stays out of the
	// graph; it is reported like any other rejection.
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range fresh {
		if n := r.commits[c.ID()]; n != nil && n.bad != "" {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: n.bad})
		} else {
			stored = append(stored, c.ID())
		}
	}
	return stored, rejected, nil
}

// fits checks what a received commit says of where and when it was made:
// it must name this repository (when this one is named), and not be
// stamped after latest (Unix ms).
func (r *Repo) fits(c *commit.Commit, latest int64) error {
	switch {
	case r.opts.Name != "" && c.Repo() == "":
		return fmt.Errorf("commit names no repository (version 1); %s takes only commits that name it", r.opts.Name)
	case c.Repo() != r.opts.Name:
		return fmt.Errorf("commit belongs to repository %s, not %s", c.Repo(), r.opts.Name)
	case c.Time() > latest:
		return fmt.Errorf("commit is stamped %s, more than %v after this peer's clock",
			time.UnixMilli(c.Time()).UTC().Format(time.RFC3339), r.opts.MaxSkew)
	}
	return nil
}

// precheckLocked checks a received commit against its parents when they are
// all here and complete; it returns why the commit is invalid, or "".
func (r *Repo) precheckLocked(c *commit.Commit) string {
	deps := c.Parents()
	if !c.IsFull() {
		deps = append(deps[:len(deps):len(deps)], c.Base())
	}
	for _, id := range deps {
		if p := r.commits[id]; p == nil || !p.complete() {
			return "" // pending: checked on completion
		}
	}
	if err := r.link(&node{c: c}); err != nil {
		return err.Error()
	}
	if c.IsMerge() {
		return r.checkMerge(c)
	}
	return ""
}

// checkMerge recomputes a merge commit from its parents.
func (r *Repo) checkMerge(c *commit.Commit) string {
	leaves := make([]*node, len(c.Parents()))
	for i, p := range c.Parents() {
		leaves[i] = r.commits[p]
	}
	want, err := r.computeMerge(c.Key(), leaves)
	if err != nil {
		return "cannot recompute merge: " + err.Error()
	}
	if want.ID() != c.ID() {
		return fmt.Sprintf("merge differs from its recomputation %s", want.ID().Short())
	}
	return ""
}
