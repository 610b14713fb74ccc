package syncproto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
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
	// The requester never sees that error's text: every unknown repository
	// is answered with the same message, made from its path alone. Nor
	// does it see the text of any other error, unless it wraps ErrRefused.
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

// Policy decides, per request, what the requester may write and read.
// ctx is the request's context: the server stores the authenticated
// principal in it, and syncproto never looks inside. Methods are called
// concurrently.
//
// The Responder consults it in three places: accept (AcceptCommit for
// every incoming commit, and AdmitCommit through the Repo's
// ReceiveChecked), View before anything else in a repository's section,
// and the view then decides every byte of the answer (see View).
type Policy interface {
	// AcceptCommit is asked for every incoming commit not held yet, before
	// it is validated: nil lets it through, an error refuses it with that
	// reason.
	AcceptCommit(ctx context.Context, path string, c *commit.Commit) error
	// AdmitCommit is asked, for every incoming non-merge commit, once it is
	// complete, with the item's value before it (at its parents, merged;
	// the zero Item for a new item) and after it: nil stores it, an error
	// refuses it. It is asked only when the Repo offers ReceiveChecked
	// (repo.Repo does) and the Responder is not KeepPending; otherwise
	// AcceptCommit alone decides.
	AdmitCommit(ctx context.Context, path string, c *commit.Commit, before, after item.Item) error
	// View returns what the requester may read of repository path, open
	// as r: nil for all of it, or an error wrapping ErrUnknownRepo when it
	// may read nothing there. The repository then looks exactly like a
	// missing one: the same status and the same message as for a path
	// that does not exist, and nothing the requester sent is stored.
	View(ctx context.Context, path string, r Repo) (View, error)
}

// View is one requester's read access to one repository. The view of a
// repository R is V = the commits of the items MayRead admits, plus the
// commits Own admits; a Responder computes every element of its answer
// over V and never over R: count and digest, its Bloom filter, the
// commits it sends, the ids it answers for, and its position (see
// ResponderOptions.MaxViews). MayRead and Own are called with the view's
// cached state locked: they must not call back into the Responder.
type View interface {
	// Key identifies the view: two Views of one repository with equal keys
	// admit exactly the same commits (the Responder caches per repository
	// and key). It changes when the rules, the user or the roles change.
	Key() string
	// MayRead reports whether the item key may be read given its current
	// value. The Responder asks once per item and again whenever the item
	// changes; the answer covers the item's whole history.
	MayRead(key string) bool
	// Own reports whether c was written by the requester (its user's
	// sessions): such commits are in the view even in items it may not
	// read, so write-only "drop box" items converge. It is asked often
	// (for every commit of an unreadable item a request looks at), so it
	// should be a lookup of c.Session().
	Own(c *commit.Commit) bool
}

// AllowAll is the Policy that lets every requester read and write
// everything.
type AllowAll struct{}

// AcceptCommit returns nil.
func (AllowAll) AcceptCommit(context.Context, string, *commit.Commit) error { return nil }

// AdmitCommit returns nil.
func (AllowAll) AdmitCommit(context.Context, string, *commit.Commit, item.Item, item.Item) error {
	return nil
}

// View returns nil: all of the repository.
func (AllowAll) View(context.Context, string, Repo) (View, error) { return nil, nil }

// ResponderOptions configure a Responder. The zero value is valid.
type ResponderOptions struct {
	// Policy decides what requesters may write and read; nil means
	// AllowAll.
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
	// parents. Policy.AdmitCommit is not asked then.
	KeepPending bool
	// MaxViews bounds the view states kept, one per repository and view
	// key, least recently used first out; 0 means 1024. A state costs
	// about 20 bytes per item of its repository (a map entry; keys are
	// shared with the commits) plus 8 bytes per position it still resolves
	// and one entry per item that entered the view (at most 4096 each); an
	// evicted one is rebuilt on the next request, by reading the whole log
	// once, and its requesters' positions are no longer recognised (their
	// next sync takes the Bloom path once).
	MaxViews int
	// Secret keys the hash that makes a view's positions opaque; nil
	// means random, chosen when the Responder is made. With a secret kept
	// across restarts, a view whose repository did not change keeps its
	// position across a restart.
	Secret []byte
}

// completeReceiver is the optional method of a Repo that refuses commits
// whose parents it does not hold (repo.Repo.ReceiveComplete).
type completeReceiver interface {
	ReceiveComplete(encs [][]byte) (stored []commit.ID, rejected []repo.Rejection, err error)
}

// checkedReceiver is the optional method of a Repo that is
// ReceiveComplete and also asks admit about each complete non-merge
// commit with its item's value before and after it
// (repo.Repo.ReceiveChecked). Without it Policy.AdmitCommit is not asked.
type checkedReceiver interface {
	ReceiveChecked(encs [][]byte, admit repo.Admit) (stored []commit.ID, rejected []repo.Rejection, err error)
}

// Validate checks the options.
func (o *ResponderOptions) Validate() error {
	switch {
	case o.MaxSendBytes < 0 || o.MaxSendBytes > MaxPayloadSize/4:
		return fmt.Errorf("syncproto: MaxSendBytes %d out of range [0, %d]", o.MaxSendBytes, MaxPayloadSize/4)
	case o.MaxViews < 0:
		return fmt.Errorf("syncproto: MaxViews %d is negative", o.MaxViews)
	}
	return nil
}

// Responder is the server side of sync. It keeps no state per client: each
// request carries everything needed to answer it. Its only state is a
// cache of each repository's digest, and of each view's (see
// ResponderOptions.MaxViews). It is safe for concurrent use.
type Responder struct {
	repos    Repos
	opts     ResponderOptions
	allowAll bool // opts.Policy is AllowAll: nothing to admit
	states   states
	views    views
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
	if o.MaxViews == 0 {
		o.MaxViews = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	_, all := o.Policy.(AllowAll)
	s := &Responder{repos: repos, opts: o, allowAll: all}
	s.views.init(o.MaxViews, o.Secret)
	return s, nil
}

type sendBudgetKey struct{}

type sendReserveKey struct{}

// sendLimit is what one answer may still carry: left commit bytes, and
// what reserve (if set) grants as they are taken. The first commit of a
// section goes whatever left says (a commit larger than the budget still
// makes progress), but never past reserve: once reserve refuses, the
// answer takes no more commits.
type sendLimit struct {
	left    int
	reserve func(n int) bool
	full    bool // reserve refused
}

// take reports whether a commit of n bytes fits, and counts it if so;
// first says it would be its section's first.
func (l *sendLimit) take(n int, first bool) bool {
	if l.full || n > l.left && !first {
		return false
	}
	if l.reserve != nil && !l.reserve(n) {
		l.full = true
		return false
	}
	l.left = max(0, l.left-n)
	return true
}

type requestKey struct{}

// RequestInfo is what the caller of Handle tells the Responder about one
// request, for the reports of its failures (WithRequest).
type RequestInfo struct {
	// ID names the request in the server's log: the message of a section
	// the Responder failed to serve cites it, and the Logger's record of
	// the failure carries it (as request_id).
	ID string
	// Failed, if not nil, is called (during Handle) with the path and the
	// error of each section the Responder failed to serve, whose message
	// hides that error.
	Failed func(path string, err error)
}

// WithRequest returns ctx carrying info about the request Handle is
// given it for.
func WithRequest(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

func requestOf(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(requestKey{}).(RequestInfo)
	return info
}

// WithSendBudget returns ctx asking Handle to answer with at most n
// commit bytes (at least one commit is still sent), when n is below
// ResponderOptions.MaxSendBytes: a server short of memory answers with
// less, and the client goes on in its next round.
func WithSendBudget(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, sendBudgetKey{}, n)
}

// WithSendReserve returns ctx asking Handle to call reserve with the size
// of each commit it would put in its answer, before it does: once reserve
// refuses, that commit and every later one are left out (More is set,
// and the client goes on in its next round); a section may then have no
// commits at all. A server
// reserves, from a memory budget, what building the answer will
// allocate, so that answers are made to fit the memory it has.
func WithSendReserve(ctx context.Context, reserve func(n int) bool) context.Context {
	return context.WithValue(ctx, sendReserveKey{}, reserve)
}

// HandleMessage decodes a request, handles it and encodes the response:
// what a transport calls with a request body. Errors wrap ErrMalformed,
// ErrVersion or ErrTooLarge when the request is at fault, and ErrStorage
// when storing its commits failed.
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
// commits the client lacks.
//
// A repository that cannot be served (it is unknown, cannot be opened, or
// the Policy fails on it) gets a section with a status and a message; the
// others are served. What the message says is chosen here from known
// texts: "does not exist" for an unknown repository, the error's own text
// only if it wraps ErrRefused, else that the repository is unavailable,
// citing the request's id (WithRequest). The error itself goes to the
// Logger, never to the requester: storage errors name files.
//
// The whole request fails when it names a repository twice (ErrMalformed),
// when ctx ends, and when storing its commits fails (a *StorageError,
// matching ErrStorage): commits not stored must not be acknowledged by a
// response, and a client that gets none sends them again.
func (s *Responder) Handle(ctx context.Context, req *Request) (*Response, error) {
	seen := make(map[string]bool, len(req.Repos))
	for _, q := range req.Repos {
		if seen[q.Path] {
			return nil, fmt.Errorf("%w: repository %s appears twice", ErrMalformed, q.Path)
		}
		seen[q.Path] = true
	}
	resp := &Response{Repos: make([]RepoResponse, len(req.Repos))}
	budget := &sendLimit{left: s.opts.MaxSendBytes}
	if n, ok := ctx.Value(sendBudgetKey{}).(int); ok && n < budget.left {
		budget.left = max(n, 0)
	}
	budget.reserve, _ = ctx.Value(sendReserveKey{}).(func(int) bool)
	for i := range req.Repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := s.handleRepo(ctx, req.Session, &req.Repos[i], budget)
		if err != nil {
			return nil, err
		}
		resp.Repos[i] = p
	}
	return resp, nil
}

// Notice returns the notice for repository path, open as r, that the
// requester whose context is ctx should get now: its view's position, the
// one its next sync would end at. It returns an error wrapping
// ErrUnknownRepo if the requester may read nothing there (its text is the
// Policy's: not for the requester's eyes). For a view of some items, the
// notice changes only when the commits in view change: notices compare
// equal otherwise.
func (s *Responder) Notice(ctx context.Context, path string, r Repo) (Notice, error) {
	v, err := s.opts.Policy.View(ctx, path, r)
	if err != nil {
		return Notice{}, fmt.Errorf("notice %s: %w", path, err)
	}
	var st State
	if v == nil {
		st = s.states.of(r)
	} else {
		st = s.views.of(r, v.Key()).update(r, v)
	}
	return Notice{Repo: path, Epoch: st.Epoch, Seq: st.Seq}, nil
}

// pinner is the optional method of a Repo whose history a compaction
// collects: Pin holds off the compaction's swap until release
// (repo.Repo.Pin).
type pinner interface {
	Pin() (release func())
}

// handleRepo answers one repository's part of a request, or returns a
// *StorageError if storing its commits failed.
func (s *Responder) handleRepo(ctx context.Context, session commit.SessionID, q *RepoRequest, budget *sendLimit) (RepoResponse, error) {
	r, err := s.repos.Repo(ctx, session, q.Path, q.Count > 0 || len(q.Commits) > 0)
	if err != nil {
		return s.failed(ctx, q.Path, err), nil
	}
	v, err := s.opts.Policy.View(ctx, q.Path, r)
	if err != nil {
		return s.failed(ctx, q.Path, err), nil
	}
	rejected, got, err := s.accept(ctx, q.Path, r, q.Commits)
	if err != nil {
		return RepoResponse{}, err
	}
	if p, ok := r.(pinner); ok {
		// The answer's horizon, state, candidates and shallow roots are
		// of one state of r: a compaction's swap meanwhile would leave
		// the client commits whose parents it is never sent, or the
		// history below a horizon it is not told of.
		defer p.Pin()()
	}
	h := horizonOf(r)
	if v == nil {
		st, at := s.states.at(r, q.Horizon, h, stampsSince)
		return s.answer(&scope{r: r, h: h}, st, at, q, rejected, got, budget), nil
	}
	vs := s.views.of(r, v.Key())
	st, at := vs.updateAt(r, v, q.Horizon, h)
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	return s.answer(&scope{r: r, v: v, vs: vs, h: h}, st, at, q, rejected, got, budget), nil
}

// answer computes a repository's section over sc, whose state is st
// (with its count and digest from the request's horizon on) and whose set
// from its own horizon on is at, once the request's commits are stored.
//
// Horizons. The two sides compare their commits from the request's
// horizon on: the server's answer carries its own horizon, and its set
// from there on (AtHorizon) if that is another, for the client to compare
// and name it next time. Commits before the server's horizon are not
// compared, nor looked for with filters, nor taken into bulk sends, once
// the client named a horizon: only the client that names none (it holds
// nothing, or never synced with a collected server) gets them as
// candidates; any client gets them when it asks for them (missing).
func (s *Responder) answer(sc *scope, st State, at set, q *RepoRequest, rejected []Rejection, got pushed, budget *sendLimit) RepoResponse {
	p := RepoResponse{Path: q.Path, Epoch: st.Epoch, Seq: st.Seq, Count: st.Count, Digest: st.Digest, Horizon: sc.h,
		Rejected: rejected, Missing: sc.missing(), Hidden: sc.hidden(got.ids)}
	if sc.h != q.Horizon {
		p.AtHorizon = &SetSum{Count: at.n, Digest: at.d}
	}
	client := discount(set{q.Digest, q.Count}, q.Horizon, rejected, p.Hidden, got)
	var out []*commit.Commit
	var negatives map[commit.ID]bool
	if client == (set{st.Digest, st.Count}) && !q.Repair {
		if sc.vs == nil && q.Horizon <= sc.h {
			agreed(sc.r) // a view's agreement says nothing of the rest
		}
		// Equal sets are compared from the horizon on: the client may
		// still wait for older commits (the parents of what it got
		// while it was offline past the horizon), which it asks by id.
		if out = sc.wanted(q.Missing); len(out) == 0 {
			return p
		}
	} else if q.Sketch != nil && q.Filter == nil && client.n > 0 {
		out, p.Symbols = sc.sketchAnswer(q, client.n, st, budget.left)
		out = append(out, sc.wanted(q.Missing, out...)...)
	} else {
		out, negatives = sc.candidates(q, client.n, got.has)
	}
	sent, more := s.send(sc, out, budget)
	p.Commits, p.More = encodeAll(sent), more
	p.Shallow = sc.shallow(sent)
	if q.Filter != nil && client.n > 0 && !more {
		// Predict the client's set once it stores what is sent: the
		// commits its filter lacks are certainly new to it. If it will
		// still differ, the client holds commits this side lacks.
		for _, c := range sent {
			if negatives[c.ID()] && (q.Horizon <= 0 || c.Time() >= q.Horizon) {
				client.add(c.ID())
			}
		}
		if client != (set{st.Digest, st.Count}) {
			// Sized for what the client holds beyond this side: its
			// count once it stores the commits its filter lacks.
			p.Filter = sc.filter(at, client.n)
		}
	}
	return p
}

// discount removes from the client's set (from horizon h on) the commits
// refused or hidden here: it still holds them, this side never will (or
// will never count them for it).
func discount(client set, h int64, rejected []Rejection, hidden []commit.ID, got pushed) set {
	if len(rejected) == 0 && len(hidden) == 0 {
		return client
	}
	done := map[commit.ID]bool{}
	sub := func(id commit.ID) {
		if got.has[id] && !done[id] && client.n > 0 && (h <= 0 || got.at[id] >= h) {
			done[id] = true
			client = set{client.d.Sub(id), client.n - 1}
		}
	}
	for _, rj := range rejected {
		sub(rj.ID)
	}
	for _, id := range hidden {
		sub(id)
	}
	return client
}

// failed turns an error serving a repository into its section. Every
// unknown repository gets the same message, made from its path alone, so
// that a repository the requester may not read is indistinguishable from
// one that does not exist whatever the error says. A refusal (ErrRefused)
// is answered with its text; any other error is logged, and the section
// says only that the repository is unavailable: the error may name the
// server's files.
func (s *Responder) failed(ctx context.Context, path string, err error) RepoResponse {
	switch {
	case errors.Is(err, ErrUnknownRepo):
		return RepoResponse{Path: path, Status: StatusNotFound, Message: truncate(notFound(path), MaxReasonLen)}
	case errors.Is(err, ErrRefused):
		return RepoResponse{Path: path, Status: StatusError, Message: truncate(err.Error(), MaxReasonLen)}
	}
	info := requestOf(ctx)
	s.opts.Logger.Error("sync repository unavailable", "request_id", info.ID, "path", path, "err", err)
	if info.Failed != nil {
		info.Failed(path, err)
	}
	return RepoResponse{Path: path, Status: StatusError, Message: truncate(unavailable(info.ID), MaxReasonLen)}
}

// notFound is the message of every StatusNotFound section.
func notFound(path string) string { return path + " does not exist on this server" }

// unavailable is the message of a section the Responder failed to serve.
func unavailable(requestID string) string {
	if requestID == "" {
		return "repository unavailable on the server; retry later (the server's log has the details)"
	}
	return "repository unavailable on the server (request id " + requestID + "); retry later (the server's log has the details)"
}

// pushed are the ids of the commits a request carried that decode, in
// request order and without repeats (ids), and as a set (has), with
// their times (at).
type pushed struct {
	ids []commit.ID
	has map[commit.ID]bool
	at  map[commit.ID]int64
}

// accept is the one place incoming commits are accepted or rejected: the
// Policy sees each decoded commit, then the Repo validates and stores
// those it let through (and rejects those that do not decode), asking the
// Policy again about each once it is complete (see store). It returns the
// rejections and the commits that decoded.
func (s *Responder) accept(ctx context.Context, path string, r Repo, encs [][]byte) ([]Rejection, pushed, error) {
	if len(encs) == 0 {
		return nil, pushed{}, nil
	}
	got := pushed{ids: make([]commit.ID, 0, len(encs)), has: make(map[commit.ID]bool, len(encs)),
		at: make(map[commit.ID]int64, len(encs))}
	var rejected []Rejection
	pass := encs[:0:0]
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err != nil {
			pass = append(pass, b) // the Repo names and rejects it
			continue
		}
		if got.has[c.ID()] {
			continue
		}
		got.has[c.ID()] = true
		got.at[c.ID()] = c.Time()
		got.ids = append(got.ids, c.ID())
		if _, held := r.Commit(c.ID()); held {
			continue // already stored: nothing for the Policy to decide
		}
		if h := horizonOf(r); c.Time() < h {
			// Refused for good whoever wrote it: the reason says so
			// before any rule is asked (a client that knows this
			// server stored the commit once takes it as collected).
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: truncate(repo.BelowHorizonReason(c.Time(), h), MaxReasonLen)})
			continue
		}
		if err := s.opts.Policy.AcceptCommit(ctx, path, c); err != nil {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: truncate("not accepted: "+err.Error(), MaxReasonLen)})
			continue
		}
		pass = append(pass, b)
	}
	if len(pass) == 0 {
		return rejected, got, nil
	}
	rej, err := s.store(ctx, path, r, pass)
	for _, rj := range rej {
		rejected = append(rejected, Rejection{ID: rj.ID, Reason: truncate(rj.Reason, MaxReasonLen)})
	}
	if err != nil {
		return nil, pushed{}, &StorageError{Path: path, Err: err}
	}
	return rejected, got, nil
}

// store has r validate and store encs: with ReceiveChecked, asking
// Policy.AdmitCommit about each complete non-merge commit; else with
// ReceiveComplete; else (or if KeepPending) with Receive. A panic in the
// Policy is raised again once the Repo has returned, so that it never
// unwinds through the Repo's locks.
func (s *Responder) store(ctx context.Context, path string, r Repo, encs [][]byte) ([]repo.Rejection, error) {
	if s.opts.KeepPending {
		_, rej, err := r.Receive(encs)
		return rej, err
	}
	if cr, ok := r.(checkedReceiver); ok {
		var admit repo.Admit
		var panicked any
		if !s.allowAll {
			admit = func(c *commit.Commit, before, after item.Item) (err error) {
				if panicked != nil {
					return errPolicyFailed
				}
				defer func() {
					if p := recover(); p != nil {
						panicked, err = p, errPolicyFailed
					}
				}()
				return s.opts.Policy.AdmitCommit(ctx, path, c, before, after)
			}
		}
		_, rej, err := cr.ReceiveChecked(encs, admit)
		if panicked != nil {
			panic(panicked)
		}
		return rej, err
	}
	if cr, ok := r.(completeReceiver); ok {
		_, rej, err := cr.ReceiveComplete(encs)
		return rej, err
	}
	_, rej, err := r.Receive(encs)
	return rej, err
}

// errPolicyFailed refuses the commits of a batch in which the Policy
// panicked.
var errPolicyFailed = errors.New("the server's policy failed")

// send is the one place outgoing commits are chosen: it keeps those in
// the scope (the candidates are chosen from it already: this is the last
// word), within the byte budget (always at least one), and reports
// whether it left any out for lack of room.
func (s *Responder) send(sc *scope, cs []*commit.Commit, budget *sendLimit) ([]*commit.Commit, bool) {
	var out []*commit.Commit
	for _, c := range cs {
		if !sc.visible(c) {
			continue
		}
		if !budget.take(c.Size(), len(out) == 0) {
			return out, true // c is left out
		}
		out = append(out, c)
	}
	return out, false
}

// splitStamps returns the stamps of ss (but those in skip) that f
// certainly lacks, followed by the rest if those are most of ss (bulk: no
// round is then needed to find those hidden by false positives), and the
// ids f lacks.
func splitStamps(ss []repo.Stamp, f *Filter, skip map[commit.ID]bool) ([]repo.Stamp, map[commit.ID]bool) {
	var neg, pos []repo.Stamp
	ids := map[commit.ID]bool{}
	for _, s := range ss {
		switch {
		case skip[s.ID]:
		case f.Has(s.ID):
			pos = append(pos, s)
		default:
			neg = append(neg, s)
			ids[s.ID] = true
		}
	}
	if len(neg) > len(ss)/2 {
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

// appendWanted appends the commits with the given ids that r holds, ok
// admits (nil: all) and out lacks.
func appendWanted(out []*commit.Commit, r Repo, ids []commit.ID, ok func(*commit.Commit) bool) []*commit.Commit {
	if len(ids) == 0 {
		return out
	}
	have := make(map[commit.ID]bool, len(out))
	for _, c := range out {
		have[c.ID()] = true
	}
	for _, id := range ids {
		if c, held := r.Commit(id); held && !have[id] && (ok == nil || ok(c)) {
			have[id] = true
			out = append(out, c)
		}
	}
	return out
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
