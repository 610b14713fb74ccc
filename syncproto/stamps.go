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
