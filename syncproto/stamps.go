package syncproto

import (
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// stamper is the optional method of a Repo that lists its commits without
// decoding them (repo.Repo.StampsSince). A sync compares ids and times,
// and sends only the few commits the peer lacks: listing a repository of
// millions of commits by stamps reads nothing from its log.
type stamper interface {
	StampsSince(seq uint64) ([]repo.Stamp, uint64)
}

// stampsSince returns the stamps of r's commits after sequence number
// seq, in log order, and the current sequence number: StampsSince if r
// has it, else CommitsSince's commits stamped.
func stampsSince(r Repo, seq uint64) ([]repo.Stamp, uint64) {
	if s, ok := r.(stamper); ok {
		return s.StampsSince(seq)
	}
	cs, cur := r.CommitsSince(seq)
	out := make([]repo.Stamp, len(cs))
	for i, c := range cs {
		out[i] = repo.Stamp{ID: c.ID(), Key: c.Key(), Time: c.Time()}
	}
	return out, cur
}

// commitsOf returns the commits ss stamps, in order, read from r by id;
// one r no longer holds (excluded meanwhile) is left out.
func commitsOf(r Repo, ss []repo.Stamp) []*commit.Commit {
	out := make([]*commit.Commit, 0, len(ss))
	for _, s := range ss {
		if c, ok := r.Commit(s.ID); ok {
			out = append(out, c)
		}
	}
	return out
}

// lister lists r's commits after sequence number seq, as stampsSince
// does.
type lister func(r Repo, seq uint64) ([]repo.Stamp, uint64)

// stampMemo keeps the stamps of a repository's commits from one listing
// to the next within a sync, where a first contact lists every commit
// several times (its digest, its sketch, the commits to push): each later
// listing reads only the commits written since. It lists from the start
// again when the log was rewritten (a new epoch) or its exclusions
// changed (excludedSeq), as the state cache does. The slices it returns
// are shared: callers only read them.
type stampMemo struct {
	ss         []repo.Stamp
	epoch, seq uint64
	ok         bool
}

// all returns the stamps of r's commits, in log order.
func (m *stampMemo) all(r Repo) []repo.Stamp {
	for {
		xs := excludedSeq(r)
		if epoch := r.Epoch(); !m.ok || m.epoch != epoch || xs > m.seq {
			m.ss, m.epoch, m.seq, m.ok = nil, epoch, 0, true
		}
		fresh, cur := stampsSince(r, m.seq)
		if excludedSeq(r) != xs {
			continue // changed while listed, after m.seq: list again
		}
		if m.ss == nil {
			m.ss = fresh
		} else {
			m.ss = append(m.ss, fresh...)
		}
		m.seq = cur
		return m.ss
	}
}

// allStamps returns the stamps of every local commit, from the sync's
// memo.
func (u *run) allStamps() []repo.Stamp { return u.stamps.all(u.Repo) }

// stampsSince is a lister that serves a listing from the start from the
// sync's memo.
func (u *run) stampsSince(r Repo, seq uint64) ([]repo.Stamp, uint64) {
	if seq == 0 && r == u.Repo {
		ss := u.stamps.all(r)
		return ss, u.stamps.seq
	}
	return stampsSince(r, seq)
}
