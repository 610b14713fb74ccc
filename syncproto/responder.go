package syncproto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// Repo is what sync needs of a repository; *repo.Repo implements it.
// Implementations must be comparable (pointers are): the state cache is
// keyed by them.
type Repo interface {
	// Epoch identifies the log; it changes when the log is rewritten.
	Epoch() uint64
	// CommitsSince returns the commits after sequence number seq, in log
	// order, and the current sequence number, atomically.
	CommitsSince(seq uint64) ([]*commit.Commit, uint64)
	// Commit returns a commit by id.
	Commit(id commit.ID) (*commit.Commit, bool)
	// Missing returns the ids pending commits wait for.
	Missing() []commit.ID
	// Receive validates and stores commits from a peer.
	Receive(encs [][]byte) (stored []commit.ID, rejected []repo.Rejection, err error)
}

var _ Repo = (*repo.Repo)(nil)

// agreer is an optional method of a Repo: Agreed is called when a sync
// finds that both sides hold the same commits. A repository that lost
// commits to damage uses it to know they are back (repo.Repo.Agreed).
type agreer interface{ Agreed() }

func agreed(r Repo) {
	if a, ok := r.(agreer); ok {
		a.Agreed()
	}
}

// Repos finds the repositories a Responder serves.
type Repos interface {
	// Repo returns the repository at path, or an error wrapping
	// ErrUnknownRepo if there is none (or the session may not know of it).
	// create is true when the peer holds or sends commits for path: a
	// Repos may create the repository then, and answer ErrUnknownRepo to
	// a peer that only asks.
	Repo(ctx context.Context, session commit.SessionID, path string, create bool) (Repo, error)
}

// ReposFunc adapts a function to Repos.
type ReposFunc func(ctx context.Context, session commit.SessionID, path string, create bool) (Repo, error)

// Repo calls f.
func (f ReposFunc) Repo(ctx context.Context, session commit.SessionID, path string, create bool) (Repo, error) {
	return f(ctx, session, path, create)
}

// Policy decides, for a session, which incoming commits a Responder stores
// and which of its commits it sends. The Responder consults it in exactly
// two places: accept (every incoming commit, before repo.Receive validates
// it) and send (every outgoing commit). Methods are called concurrently.
//
// Digests cover every commit a side holds, so a session that may not read
// some commits never sees equal digests; until the digest a Responder
// reports is restricted to what the session may read, such a session's
// syncs end with ErrNotConverged after their round budget.
type Policy interface {
	// AcceptCommit returns nil to let the commit through to validation, or
	// why the session may not write it.
	AcceptCommit(session commit.SessionID, path string, c *commit.Commit) error
	// MayRead reports whether the session may receive the commit.
	MayRead(session commit.SessionID, path string, c *commit.Commit) bool
}

// AllowAll is the Policy that lets every session read and write
// everything.
type AllowAll struct{}

// AcceptCommit returns nil.
func (AllowAll) AcceptCommit(commit.SessionID, string, *commit.Commit) error { return nil }

// MayRead returns true.
func (AllowAll) MayRead(commit.SessionID, string, *commit.Commit) bool { return true }

// ResponderOptions configure a Responder. The zero value is valid.
type ResponderOptions struct {
	// Policy decides what sessions may write and read; nil means AllowAll.
	Policy Policy
	// MaxSendBytes bounds the commit bytes of one response (at least one
	// commit is always sent); 0 means 16 MiB. The rest follows in the
	// client's next round.
	MaxSendBytes int
	// Logger receives errors serving repositories; nil discards.
	Logger *slog.Logger
	// KeepPending stores commits whose parents are missing as pending, for
	// a responder whose peers are trusted. By default a Repo that offers
	// ReceiveComplete (repo.Repo does) refuses them, as retryable, so that
	// no client can make the server keep commits hanging from made-up
	// parents.
	KeepPending bool
}

// completeReceiver is the optional method of a Repo that refuses commits
// whose parents it does not hold (repo.Repo.ReceiveComplete).
type completeReceiver interface {
	ReceiveComplete(encs [][]byte) (stored []commit.ID, rejected []repo.Rejection, err error)
}

// Validate checks the options.
func (o *ResponderOptions) Validate() error {
	if o.MaxSendBytes < 0 || o.MaxSendBytes > MaxPayloadSize/4 {
		return fmt.Errorf("syncproto: MaxSendBytes %d out of range [0, %d]", o.MaxSendBytes, MaxPayloadSize/4)
	}
	return nil
}

// Responder is the server side of sync. It keeps no state per client: each
// request carries everything needed to answer it. Its only state is a
// cache of each repository's digest. It is safe for concurrent use.
type Responder struct {
	repos  Repos
	opts   ResponderOptions
	states states
}

// NewResponder returns a Responder serving repos.
func NewResponder(repos Repos, opts *ResponderOptions) (*Responder, error) {
	var o ResponderOptions
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Policy == nil {
		o.Policy = AllowAll{}
	}
	if o.MaxSendBytes == 0 {
		o.MaxSendBytes = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Responder{repos: repos, opts: o}, nil
}

// HandleMessage decodes a request, handles it and encodes the response:
// what a transport calls with a request body. Errors wrap ErrMalformed,
// ErrVersion or ErrTooLarge when the request is at fault.
func (s *Responder) HandleMessage(ctx context.Context, msg []byte) ([]byte, error) {
	req, err := DecodeRequest(msg)
	if err != nil {
		return nil, err
	}
	resp, err := s.Handle(ctx, req)
	if err != nil {
		return nil, err
	}
	return EncodeResponse(resp)
}

// Handle answers a request: for each repository, it stores the commits the
// client sent (those the Policy and validation accept), then chooses the
// commits the client lacks. A repository that fails gets a section with a
// status; only a request that names a repository twice, or a cancelled
// context, fails the whole request.
func (s *Responder) Handle(ctx context.Context, req *Request) (*Response, error) {
	seen := make(map[string]bool, len(req.Repos))
	for _, q := range req.Repos {
		if seen[q.Path] {
			return nil, fmt.Errorf("%w: repository %s appears twice", ErrMalformed, q.Path)
		}
		seen[q.Path] = true
	}
	resp := &Response{Repos: make([]RepoResponse, len(req.Repos))}
	budget := s.opts.MaxSendBytes
	for i := range req.Repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp.Repos[i] = s.handleRepo(ctx, req.Session, &req.Repos[i], &budget)
	}
	return resp, nil
}

// handleRepo answers one repository's part of a request.
func (s *Responder) handleRepo(ctx context.Context, session commit.SessionID, q *RepoRequest, budget *int) RepoResponse {
	r, err := s.repos.Repo(ctx, session, q.Path, q.Count > 0 || len(q.Commits) > 0)
	if err != nil {
		return s.failed(q.Path, err)
	}
	rejected, got, err := s.accept(session, q.Path, r, q.Commits)
	if err != nil {
		return s.failed(q.Path, err)
	}
	st := s.states.of(r)
	p := RepoResponse{Path: q.Path, Epoch: st.Epoch, Seq: st.Seq, Count: st.Count, Digest: st.Digest,
		Rejected: rejected, Missing: limitIDs(r.Missing())}
	client := discount(set{q.Digest, q.Count}, rejected, got)
	if client == (set{st.Digest, st.Count}) && !q.Repair {
		agreed(r)
		return p
	}
	out, negatives := s.candidates(r, q, client.n, got)
	sent, more := s.send(session, q.Path, out, budget)
	p.Commits, p.More = encodeAll(sent), more
	if q.Filter != nil && client.n > 0 && !more {
		// Predict the client's set once it stores what is sent: the
		// commits its filter lacks are certainly new to it. If it will
		// still differ, the client holds commits this side lacks.
		for _, c := range sent {
			if negatives[c.ID()] {
				client.add(c.ID())
			}
		}
		if client != (set{st.Digest, st.Count}) {
			p.Filter = s.filter(r, st, q.Count)
		}
	}
	return p
}

// discount removes from the client's set the commits refused here: it
// still holds them, this side never will.
func discount(client set, rejected []Rejection, got map[commit.ID]bool) set {
	done := map[commit.ID]bool{}
	for _, rj := range rejected {
		if got[rj.ID] && !done[rj.ID] && client.n > 0 {
			done[rj.ID] = true
			client = set{client.d.Sub(rj.ID), client.n - 1}
		}
	}
	return client
}

// failed turns an error serving a repository into its section.
func (s *Responder) failed(path string, err error) RepoResponse {
	if errors.Is(err, ErrUnknownRepo) {
		msg := strings.TrimPrefix(err.Error(), ErrUnknownRepo.Error()+": ")
		return RepoResponse{Path: path, Status: StatusNotFound, Message: truncate(msg, MaxReasonLen)}
	}
	s.opts.Logger.Error("sync repository", "path", path, "err", err)
	return RepoResponse{Path: path, Status: StatusError, Message: truncate(err.Error(), MaxReasonLen)}
}

// accept is the one place incoming commits are accepted or rejected: the
// Policy sees each decoded commit, then repo.Receive validates and stores
// those it let through (and rejects those that do not decode). It returns
// the rejections and the ids of every commit that decoded.
func (s *Responder) accept(session commit.SessionID, path string, r Repo, encs [][]byte) ([]Rejection, map[commit.ID]bool, error) {
	if len(encs) == 0 {
		return nil, nil, nil
	}
	got := make(map[commit.ID]bool, len(encs))
	var rejected []Rejection
	pass := encs[:0:0]
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err != nil {
			pass = append(pass, b) // Receive names and rejects it
			continue
		}
		got[c.ID()] = true
		if _, held := r.Commit(c.ID()); held {
			continue // already stored: nothing for the Policy to decide
		}
		if err := s.opts.Policy.AcceptCommit(session, path, c); err != nil {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: truncate("not accepted: "+err.Error(), MaxReasonLen)})
			continue
		}
		pass = append(pass, b)
	}
	if len(pass) == 0 {
		return rejected, got, nil
	}
	receive := r.Receive
	if rc, ok := r.(completeReceiver); ok && !s.opts.KeepPending {
		receive = rc.ReceiveComplete
	}
	_, rej, err := receive(pass)
	for _, rj := range rej {
		rejected = append(rejected, Rejection{ID: rj.ID, Reason: truncate(rj.Reason, MaxReasonLen)})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store commits: %w", err)
	}
	return rejected, got, nil
}

// candidates chooses the commits the client lacks, in log order (so
// parents come before children): everything if it is empty; what is new
// since its resume point; what its filter does not hold (and, if that is
// most of the repository, everything else after it, so that no round is
// needed to find commits hidden by false positives); and the ids it asked
// for. negatives are the ids its filter certainly lacks.
func (s *Responder) candidates(r Repo, q *RepoRequest, clientCount uint64, got map[commit.ID]bool) (out []*commit.Commit, negatives map[commit.ID]bool) {
	switch {
	case clientCount == 0:
		out, _ = r.CommitsSince(0)
	case q.Resume != nil && q.Resume.Epoch == r.Epoch():
		since, _ := r.CommitsSince(q.Resume.Seq)
		for _, c := range since {
			if !got[c.ID()] {
				out = append(out, c)
			}
		}
	}
	if q.Filter != nil && clientCount > 0 {
		var neg []*commit.Commit
		neg, negatives = split(r, q.Filter, nil)
		out = appendUnique(out, neg)
	}
	return appendWanted(out, r, q.Missing), negatives
}

// split returns the commits of r (but those in skip) that f certainly
// lacks, followed by the rest if those are most of r's commits (bulk: no
// round is then needed to find those hidden by false positives), and the
// ids f lacks.
func split(r Repo, f *Filter, skip map[commit.ID]bool) ([]*commit.Commit, map[commit.ID]bool) {
	all, _ := r.CommitsSince(0)
	var neg, pos []*commit.Commit
	ids := map[commit.ID]bool{}
	for _, c := range all {
		switch {
		case skip[c.ID()]:
		case f.Has(c.ID()):
			pos = append(pos, c)
		default:
			neg = append(neg, c)
			ids[c.ID()] = true
		}
	}
	if len(neg) > len(all)/2 {
		neg = append(neg, pos...)
	}
	return neg, ids
}

// appendUnique appends the commits of cs that out lacks.
func appendUnique(out, cs []*commit.Commit) []*commit.Commit {
	if len(out) == 0 {
		return append(out, cs...)
	}
	have := make(map[commit.ID]bool, len(out))
	for _, c := range out {
		have[c.ID()] = true
	}
	for _, c := range cs {
		if !have[c.ID()] {
			have[c.ID()] = true
			out = append(out, c)
		}
	}
	return out
}

// appendWanted appends the commits with the given ids that r holds and out
// lacks.
func appendWanted(out []*commit.Commit, r Repo, ids []commit.ID) []*commit.Commit {
	if len(ids) == 0 {
		return out
	}
	have := make(map[commit.ID]bool, len(out))
	for _, c := range out {
		have[c.ID()] = true
	}
	for _, id := range ids {
		if c, ok := r.Commit(id); ok && !have[id] {
			have[id] = true
			out = append(out, c)
		}
	}
	return out
}

// send is the one place outgoing commits are chosen: it keeps those the
// Policy lets the session read, within the byte budget (always at least
// one), and reports whether it left any out for lack of room.
func (s *Responder) send(session commit.SessionID, path string, cs []*commit.Commit, budget *int) ([]*commit.Commit, bool) {
	var out []*commit.Commit
	for i, c := range cs {
		if !s.opts.Policy.MayRead(session, path, c) {
			continue
		}
		if c.Size() > *budget && len(out) > 0 {
			return out, i < len(cs)
		}
		out = append(out, c)
		*budget -= c.Size()
	}
	return out, false
}

// encodeAll returns the commits' encodings.
func encodeAll(cs []*commit.Commit) [][]byte {
	if len(cs) == 0 {
		return nil
	}
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Encode()
	}
	return out
}

// filter returns a filter of r's commit ids for the client to find what it
// should send; it is sized for the difference in counts.
func (s *Responder) filter(r Repo, st State, clientCount uint64) *Filter {
	cs, _ := r.CommitsSince(0)
	ids := make([]commit.ID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID()
	}
	diff := max(clientCount, st.Count) - min(clientCount, st.Count)
	return filterOf(ids, diff, 0)
}

// limitIDs keeps at most MaxMissing ids, so a response always encodes.
func limitIDs(ids []commit.ID) []commit.ID { return ids[:min(len(ids), MaxMissing)] }

// truncate shortens s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
