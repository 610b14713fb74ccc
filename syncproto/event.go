package syncproto

import (
	"context"
	"fmt"

	"github.com/goatdb/goatdb/commit"
)

// NoticeSince is Notice with the commits that moved the requester's view
// of repository path, open as r, from position from to the notice's
// position: every commit in the view written in between, in log order,
// when there are some, they add up to at most maxBytes (commit.Size), and
// the view changed only by them since from (no item entered or left it,
// the log was not rewritten, and from is a position the view still
// resolves). Otherwise the commits are nil and the notice alone tells the
// requester to sync. What goes in is decided by the same view (Policy.View)
// that decides a sync's answer, so a requester never gets a commit here
// that a sync would not send it.
func (s *Responder) NoticeSince(ctx context.Context, path string, r Repo, from Point, maxBytes int) (Notice, []*commit.Commit, error) {
	v, err := s.opts.Policy.View(ctx, path, r)
	if err != nil {
		return Notice{}, nil, fmt.Errorf("notice %s: %w", path, err)
	}
	if v == nil {
		return logSince(path, r, from, maxBytes)
	}
	vs := s.views.of(r, v.Key())
	at, cs := vs.since(r, v, from, maxBytes)
	return Notice{Repo: path, Epoch: at.Epoch, Seq: at.Seq}, cs, nil
}

// logSince is NoticeSince for a requester that may read all of r: its
// positions are the log's.
func logSince(path string, r Repo, from Point, maxBytes int) (Notice, []*commit.Commit, error) {
	e := r.Epoch()
	all, cur := r.CommitsSince(from.Seq)
	n := Notice{Repo: path, Epoch: r.Epoch(), Seq: cur}
	if n.Epoch != e || from.Epoch != e || from.Seq >= cur {
		return n, nil, nil
	}
	return n, fitAll(all, maxBytes), nil
}

// fitAll returns cs if it is not empty and its commits add up to at most
// maxBytes, else nil.
func fitAll(cs []*commit.Commit, maxBytes int) []*commit.Commit {
	size := 0
	for _, c := range cs {
		if size += c.Size(); size > maxBytes {
			return nil
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return cs
}

// since brings the state up to date with r, whose view v is, and returns
// V's position and the commits of V after position pt up to it, if V
// changed since pt only by them and they fit maxBytes (see NoticeSince);
// nil otherwise.
func (vs *viewState) since(r Repo, v View, pt Point, maxBytes int) (Point, []*commit.Commit) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if e := r.Epoch(); !vs.built || vs.epoch != e {
		vs.build(r, v, e)
	} else {
		vs.advance(r, v)
	}
	now := Point{Epoch: vs.point, Seq: vs.pos}
	seq, in, ok := vs.resolve(pt)
	if !ok || len(in) > 0 || vs.flip > pt.Seq || pt.Seq == vs.pos {
		return now, nil
	}
	// The commits of V after seq up to vs.seq: those after seq, less those
	// after vs.seq (read after, so that none written meanwhile is taken).
	all, _ := r.CommitsSince(seq)
	later, _ := r.CommitsSince(vs.seq)
	if r.Epoch() != vs.epoch {
		return now, nil
	}
	skip := make(map[commit.ID]bool, len(later))
	for _, c := range later {
		skip[c.ID()] = true
	}
	out := make([]*commit.Commit, 0, max(0, len(all)-len(later)))
	for _, c := range all {
		if !skip[c.ID()] && vs.visible(c, v) {
			out = append(out, c)
		}
	}
	return now, fitAll(out, maxBytes)
}
