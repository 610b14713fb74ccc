package syncproto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// SyncerOptions configure a Syncer. The zero value is valid.
type SyncerOptions struct {
	// MaxRounds bounds the round trips of one Sync; 0 means 8.
	MaxRounds int
	// RepairEvery makes every RepairEvery-th sync of a repository with the
	// same server a repair: a full Bloom round whatever the digests say,
	// which also catches digest collisions. 0 means 1000; negative, never.
	RepairEvery int
	// MaxSendBytes bounds the commit bytes of one request (at least one
	// commit is always sent); 0 means 16 MiB. The rest follows in the next
	// round.
	MaxSendBytes int
	// Resumes keeps the resume point of each repository with this server;
	// nil means in memory, for the Syncer's lifetime.
	Resumes ResumeStore
	// Logger receives per-round details at debug level; nil discards.
	Logger *slog.Logger
	// OnHidden, if set, is called at the end of each Sync, once per
	// repository the server answered hidden ids for (Stats.Hidden): local
	// commits the server holds but this peer may no longer read. Sync
	// leaves them in place; until they are purged, every sync of the
	// repository takes the Bloom path to find them again.
	OnHidden func(path string, ids []commit.ID)
}

// Validate checks the options.
func (o *SyncerOptions) Validate() error {
	switch {
	case o.MaxRounds < 0 || o.MaxRounds > 1000:
		return fmt.Errorf("syncproto: MaxRounds %d out of range [0, 1000]", o.MaxRounds)
	case o.MaxSendBytes < 0 || o.MaxSendBytes > MaxPayloadSize/4:
		return fmt.Errorf("syncproto: MaxSendBytes %d out of range [0, %d]", o.MaxSendBytes, MaxPayloadSize/4)
	}
	return nil
}

func (o SyncerOptions) withDefaults() SyncerOptions {
	if o.MaxRounds == 0 {
		o.MaxRounds = 8
	}
	if o.RepairEvery == 0 {
		o.RepairEvery = 1000
	}
	if o.MaxSendBytes == 0 {
		o.MaxSendBytes = 16 << 20
	}
	if o.Resumes == nil {
		o.Resumes = &MemResumes{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Resume is where a repository's last converged sync with one server left
// off: after it, every server commit up to ServerSeq (in the server log of
// ServerEpoch) was here, and every local commit up to LocalSeq (in the
// local log of LocalEpoch) was on the server. It lives on the client only;
// a wrong one costs a Bloom round, never a lost commit, since digests are
// still compared.
type Resume struct {
	ServerEpoch, ServerSeq uint64
	LocalEpoch, LocalSeq   uint64
	ServerCount            uint64 // the server's commit count then, to size filters
	Syncs                  int    // converged syncs since the last repair
	// Horizon is the server's horizon then (RepoResponse.Horizon): the
	// next sync's requests compare the commits from it on.
	Horizon int64
}

// ResumeStore keeps resume points by repository path, for one server. The
// root package persists them; MemResumes keeps them in memory.
type ResumeStore interface {
	LoadResume(path string) (Resume, bool)
	StoreResume(path string, r Resume)
}

// MemResumes is a ResumeStore in memory, safe for concurrent use. The zero
// value is ready to use.
type MemResumes struct {
	mu sync.Mutex // guards m
	m  map[string]Resume
}

// LoadResume returns the resume point stored for path.
func (m *MemResumes) LoadResume(path string) (Resume, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[path]
	return r, ok
}

// StoreResume stores the resume point for path.
func (m *MemResumes) StoreResume(path string, r Resume) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]Resume{}
	}
	m.m[path] = r
}

// Local is a local repository to sync and its path on the server.
type Local struct {
	Path string
	Repo Repo
}

// Stats describes one Sync.
type Stats struct {
	Rounds          int   // round trips
	BytesSent       int64 // request bytes on the wire (after compression)
	BytesReceived   int64 // response bytes on the wire (after compression)
	CommitsSent     int
	CommitsReceived int
	Rejected        []RepoRejection // our commits the server refused
	Refused         []RepoRejection // the server's commits this peer refused, or holds outside its set (HeldOutside)
	Hidden          []RepoHidden    // our commits the server holds outside what we may read
	Converged       int             // repositories that ended with the same commits on both sides
	Missing         int             // ids local pending commits still wait for, which the server lacks too
	// Collected are local commits the server refused as below its
	// horizon that an earlier sync left on it: history it has since
	// collected, not writes it refused (see Syncer).
	Collected []RepoRejection
}

// RepoRejection is a Rejection in one repository.
type RepoRejection struct {
	Path string
	Rejection
}

// RepoHidden names the local commits of one repository that the server
// answered as hidden (RepoResponse.Hidden): it holds them, but they are
// outside what this peer may read there, so they no longer count toward
// agreement with it.
type RepoHidden struct {
	Path string
	IDs  []commit.ID
}

// Syncer is the client side of sync with one server: it runs rounds until
// every repository holds the same commits as the server's copy, or the
// round budget is spent. It keeps resume points (in SyncerOptions.Resumes) and a
// digest cache, nothing else. It is safe for concurrent use.
type Syncer struct {
	transport Transport
	session   commit.SessionID
	opts      SyncerOptions
	states    states
	noSketch  atomic.Bool // the server refused a sketch's version: no rateless exchange with it
}

// NewSyncer returns a Syncer that reaches its server through t and names
// session in every request.
func NewSyncer(t Transport, session commit.SessionID, opts *SyncerOptions) (*Syncer, error) {
	var o SyncerOptions
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Syncer{transport: t, session: session, opts: o.withDefaults()}, nil
}

// Sync syncs the repositories with the server. It returns when each has
// converged (the two sides' commit-id sets are equal, up to commits one of
// them refused) or failed, or when MaxRounds round trips are spent
// (ErrNotConverged). A transport or decoding error ends the sync at once.
// Stats are valid even with an error.
func (s *Syncer) Sync(ctx context.Context, repos ...Local) (Stats, error) {
	var st Stats
	runs := make([]*run, len(repos))
	for i, l := range repos {
		runs[i] = s.newRun(l)
	}
	for st.Rounds < s.opts.MaxRounds {
		var active []*run
		for _, u := range runs {
			if !u.done {
				active = append(active, u)
			}
		}
		if len(active) == 0 {
			break
		}
		if err := s.round(ctx, active, &st); err != nil {
			s.save(runs)
			return st, err
		}
	}
	s.save(runs)
	err := s.finish(runs, &st)
	s.reportHidden(&st)
	return st, err
}

// reportHidden hands the hidden ids of each repository to OnHidden.
func (s *Syncer) reportHidden(st *Stats) {
	if s.opts.OnHidden == nil {
		return
	}
	for _, h := range st.Hidden {
		s.opts.OnHidden(h.Path, h.IDs)
	}
}

// save stores the resume points of the repositories that converged.
func (s *Syncer) save(runs []*run) {
	for _, u := range runs {
		if u.done && u.err == nil {
			s.opts.Resumes.StoreResume(u.Path, u.next)
		}
	}
}

// round sends one request for the active repositories and handles the
// response.
func (s *Syncer) round(ctx context.Context, active []*run, st *Stats) error {
	req := &Request{Session: s.session, Repos: make([]RepoRequest, len(active))}
	budget := s.opts.MaxSendBytes
	for i, u := range active {
		req.Repos[i] = u.request(s.opts.MaxRounds-st.Rounds, &budget)
		st.CommitsSent += len(req.Repos[i].Commits)
	}
	msg, err := EncodeRequest(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	st.Rounds++
	st.BytesSent += int64(len(msg))
	out, err := s.transport.RoundTrip(ctx, msg)
	st.BytesReceived += int64(len(out))
	if err != nil && sketchRefused(req, err) && s.noSketch.CompareAndSwap(false, true) {
		for _, u := range active {
			u.fc = nil
		}
		return s.round(ctx, active, st)
	}
	if err != nil {
		return fmt.Errorf("sync round %d: %w", st.Rounds, err)
	}
	resp, err := DecodeResponse(out)
	if err != nil {
		return fmt.Errorf("sync round %d: %w", st.Rounds, err)
	}
	if err := answers(resp, active); err != nil {
		return err
	}
	for i, u := range active {
		u.handle(&resp.Repos[i], st)
		s.opts.Logger.Debug("sync round", "round", st.Rounds, "path", u.Path, "done", u.done,
			"sent", len(req.Repos[i].Commits), "received", len(resp.Repos[i].Commits),
			"filter", req.Repos[i].Filter != nil, "resume", req.Repos[i].Resume != nil)
	}
	return nil
}

// answers checks that resp has one section per active repository, in
// order.
func answers(resp *Response, active []*run) error {
	if len(resp.Repos) != len(active) {
		return fmt.Errorf("%w: %d sections for %d repositories", ErrMismatch, len(resp.Repos), len(active))
	}
	for i, u := range active {
		if resp.Repos[i].Path != u.Path {
			return fmt.Errorf("%w: section %d is for %s, not %s", ErrMismatch, i, resp.Repos[i].Path, u.Path)
		}
	}
	return nil
}

// finish counts the outcome and gathers what did not converge.
func (s *Syncer) finish(runs []*run, st *Stats) error {
	var errs []error
	var stuck []string
	for _, u := range runs {
		st.Missing += len(u.Repo.Missing())
		switch {
		case u.err != nil:
			errs = append(errs, u.err)
		case !u.done:
			stuck = append(stuck, u.Path)
		default:
			st.Converged++
		}
	}
	if len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("%w after %d rounds: %v", ErrNotConverged, st.Rounds, stuck))
	}
	return errors.Join(errs...)
}

// run is one repository's progress through a Sync.
type run struct {
	Local
	states *states
	resume Resume // the stored resume point, if ok
	ok     bool
	repair bool

	srv      *RepoResponse      // the server's last answer; nil before the first
	got      map[commit.ID]bool // commits received from the server in this sync
	backlog  []*commit.Commit   // commits to send that did not fit a request
	lastSeq  uint64             // local sequence number at the last request
	lastLog  uint64             // and the local log's epoch then
	acked    map[commit.ID]bool // once needed: ackedBefore the server's horizon
	asked    map[commit.ID]bool // ids asked for (RepoRequest.Missing)
	reported map[commit.ID]bool // refusals in Stats.Rejected
	gone     map[commit.ID]bool // refused for good, or collected (see dropOver)
	lost     map[commit.ID]bool // collected (see collected)
	lastGot  int                // commits received in the last round
	excluded map[commit.ID]bool // ids one side refused, or the server hides
	exLocal  stamps             // our commits the server refused or hides
	exRemote stamps             // the server's commits we refused

	// Horizons. h is the server's horizon as last heard of (from the
	// stored resume point, then from each answer): the requests name it,
	// and the two sides compare their commits from it on. A repository
	// that held nothing at the first request is cold: its requests name
	// no horizon, so that it gets every commit the server holds, older
	// ones too, and the sides compare all their commits.
	h     int64
	cold  bool
	lastH int64 // the horizon the last request named

	// retry are the commits to push again in the next round: the parents
	// and delta base of a commit the server refused for lack of them, and
	// that commit (once per commit and sync: retried).
	retry   []*commit.Commit
	retried map[commit.ID]bool

	fc *contact // the rateless exchange of first contact, while it lasts

	stamps stampMemo // the local commits' stamps, listed once per sync

	done bool
	err  error
	next Resume // the resume point to store once done
}

func (s *Syncer) newRun(l Local) *run {
	u := &run{Local: l, states: &s.states, got: map[commit.ID]bool{}, excluded: map[commit.ID]bool{},
		asked: map[commit.ID]bool{}, reported: map[commit.ID]bool{}, gone: map[commit.ID]bool{}, lost: map[commit.ID]bool{}}
	u.resume, u.ok = s.opts.Resumes.LoadResume(l.Path)
	u.repair = s.opts.RepairEvery > 0 && u.ok && u.resume.Syncs+1 >= s.opts.RepairEvery
	if u.ok {
		u.h = max(u.resume.Horizon, 0)
	}
	if !s.noSketch.Load() {
		u.fc = newContact()
	}
	return u
}

// request builds this round's section. The first round resumes from the
// resume point if it is usable, or else sends a Bloom filter of every
// local commit from the horizon on (none if there are none: the server
// then sends everything). Later rounds send what the server's last
// answer showed it lacks, and a filter unless that will make both sides
// equal.
func (u *run) request(roundsLeft int, budget *int) RepoRequest {
	st, all := u.states.at(u.Repo, u.h, 0, u.stampsSince)
	if u.srv == nil && all.n == 0 {
		u.cold = true
	}
	h := u.h
	if u.cold {
		h = 0
		st.Count, st.Digest = all.n, all.d
	}
	h, st = u.sketchHorizon(h, st)
	q := RepoRequest{Path: u.Path, Horizon: h, Count: st.Count, Digest: st.Digest, Missing: limitIDs(u.Repo.Missing())}
	for _, id := range q.Missing {
		u.asked[id] = true
	}
	var push []*commit.Commit
	switch {
	case u.srv == nil && u.ok && !u.repair && u.resume.LocalEpoch == st.Epoch && u.resume.LocalSeq <= st.Seq:
		q.Resume = &Point{Epoch: u.resume.ServerEpoch, Seq: u.resume.ServerSeq}
		push, _ = u.Repo.CommitsSince(u.resume.LocalSeq)
	case u.sketchOn(&q, st, h, &push):
	case u.srv == nil:
		q.Repair = u.repair
	default:
		push = u.toPush()
	}
	push, u.backlog = fit(push, budget)
	q.Commits = encodeAll(push)
	if q.Resume == nil && q.Sketch == nil && st.Count > 0 && (u.srv == nil || !u.equalAfter(st, h, push)) {
		q.Filter = filterOf(idsFrom(u.allStamps(), h), max(u.diff(st, h), u.sketchDiff()), roundsLeft)
	}
	u.lastSeq, u.lastLog, u.lastH = st.Seq, u.Repo.Epoch(), h
	return q
}

// toPush returns the commits the server's last answer showed it lacks:
// those from its horizon on that its filter does not hold (all of them if
// that is most), else those written here since the last request; and the
// ids it asked for. Commits before the server's horizon are never pushed
// for its filter: it collected them, and would refuse them. Nor are the
// commits it sent in this sync (got), on any path: it holds them.
func (u *run) toPush() []*commit.Commit {
	out := u.unsent(u.backlog)
	var cand []*commit.Commit
	if f := u.srv.Filter; f != nil {
		// Stamps first: only the commits the filter lacks are read.
		all := u.allStamps()
		pool := make([]repo.Stamp, 0, len(all))
		for _, s := range all {
			if (u.srv.Horizon <= 0 || s.Time >= u.srv.Horizon) && !u.got[s.ID] {
				pool = append(pool, s)
			}
		}
		pick, _ := splitStamps(pool, f, u.excluded)
		cand = commitsOf(u.Repo, pick)
	} else {
		since, _ := u.Repo.CommitsSince(u.lastSeq)
		for _, c := range since {
			if !u.got[c.ID()] && !u.excluded[c.ID()] {
				cand = append(cand, c)
			}
		}
	}
	out = appendUnique(out, cand)
	out = appendWanted(out, u.Repo, u.srv.Missing, nil)
	out, u.retry = appendUnique(out, u.retry), nil
	return out
}

// unsent returns the commits of cs the server did not send in this sync.
func (u *run) unsent(cs []*commit.Commit) []*commit.Commit {
	if len(u.got) == 0 {
		return cs
	}
	out := make([]*commit.Commit, 0, len(cs))
	for _, c := range cs {
		if !u.got[c.ID()] {
			out = append(out, c)
		}
	}
	return out
}

// fit splits commits into those that fit the byte budget (at least one)
// and the rest.
func fit(cs []*commit.Commit, budget *int) (now, later []*commit.Commit) {
	for i, c := range cs {
		if c.Size() > *budget && i > 0 {
			return cs[:i], cs[i:]
		}
		*budget -= c.Size()
	}
	return cs, nil
}

// equalAfter reports whether both sides will hold the same commits from
// horizon h on (st's count and digest are over them) once the server
// stores push (assuming it lacks all of them and refuses none).
func (u *run) equalAfter(st State, h int64, push []*commit.Commit) bool {
	srv, ok := u.server(u.srv, h)
	if !ok {
		return false
	}
	for _, c := range push {
		if h <= 0 || c.Time() >= h {
			srv.add(c.ID())
		}
	}
	return srv == u.local(st, h) && len(u.backlog) == 0
}

// server returns the server's set from horizon h on, as its answer p (to
// a request that named horizon u.lastH) says, less the commits this side
// refused; false if p says nothing of that set.
func (u *run) server(p *RepoResponse, h int64) (set, bool) {
	var s set
	switch {
	case h == u.lastH:
		s = set{p.Digest, p.Count}
	case h == p.Horizon && p.AtHorizon != nil:
		s = set{p.AtHorizon.Digest, p.AtHorizon.Count}
	default:
		return set{}, false
	}
	return s.minus(u.exRemote.above(h)), true
}

// local is the local set from horizon h on (st's count and digest are
// over it) less the commits the server refused or hides.
func (u *run) local(st State, h int64) set {
	return set{st.Digest, st.Count}.minus(u.exLocal.above(h))
}

// diff estimates how many commits the server holds that this peer lacks:
// what it sent last round, or the difference in counts from horizon h on
// (st's count is over them).
func (u *run) diff(st State, h int64) uint64 {
	srvCount := st.Count
	switch {
	case u.srv != nil:
		if s, ok := u.server(u.srv, h); ok {
			srvCount = s.n
		}
	case u.ok && u.resume.Horizon == h:
		srvCount = u.resume.ServerCount
	}
	return max(uint64(u.lastGot), max(srvCount, st.Count)-min(srvCount, st.Count))
}

// handle stores the server's answer and decides whether this repository
// is done: it is when the two sides' sets, less the commits either
// refused, are equal.
func (u *run) handle(p *RepoResponse, st *Stats) {
	switch p.Status {
	case StatusOK:
	case StatusNotFound:
		u.done, u.err = true, &RepoError{Path: u.Path, Err: fmt.Errorf("%w: %s", ErrUnknownRepo, p.Message)}
		return
	default:
		u.done, u.err = true, &RepoError{Path: u.Path, Err: fmt.Errorf("%w: %s", ErrRemote, p.Message)}
		return
	}
	if len(p.Shallow) > 0 && u.acked == nil {
		// Storing shallow roots may compact the local log, after which
		// the resume point no longer says what the server stored.
		u.acked = u.ackedBefore(p.Horizon)
	}
	if err := u.store(p, st); err != nil {
		u.done, u.err = true, &RepoError{Path: u.Path, Err: fmt.Errorf("store commits: %w", err)}
		return
	}
	if e := u.Repo.Epoch(); e != u.lastLog {
		// Storing shallow roots compacted the local log: a position in
		// the old one means nothing in the new one. Later rounds push
		// what is written from here on; a commit written since the last
		// request, not pushed yet, makes the sets differ, and the Bloom
		// path finds it.
		_, u.lastSeq = u.Repo.CommitsSince(math.MaxInt64)
		u.lastLog = e
	}
	for _, rj := range p.Rejected {
		switch {
		case u.collected(rj, p.Horizon):
			st.Collected = append(st.Collected, RepoRejection{u.Path, rj})
			u.exclude(rj.ID)
			u.gone[rj.ID], u.lost[rj.ID] = true, true
		case u.retryParents(rj):
			// Sent again with its parents next round; reported only if
			// refused again.
		default:
			u.exclude(rj.ID)
			if !strings.HasPrefix(rj.Reason, repo.MissingParents) {
				u.gone[rj.ID] = true
			}
			if !u.reported[rj.ID] { // a commit sent again is reported once
				u.reported[rj.ID] = true
				st.Rejected = append(st.Rejected, RepoRejection{u.Path, rj})
			}
		}
	}
	st.Rejected = u.dropOver(st.Rejected)
	u.hide(p.Hidden, st)
	u.takeSymbols(p)
	// Compare from the server's horizon on; a cold repository compares
	// everything, and names no horizon until it converged.
	h := p.Horizon
	if u.cold {
		h = 0
	} else {
		u.h = p.Horizon
	}
	now, _ := u.states.at(u.Repo, h, 0, u.stampsSince)
	srv, ok := u.server(p, h)
	if !ok || srv != u.local(now, h) || p.More || len(u.backlog) > 0 || u.unasked() {
		u.srv = p
		return
	}
	u.done = true
	agreed(u.Repo)
	u.next = Resume{ServerEpoch: p.Epoch, ServerSeq: p.Seq, LocalEpoch: now.Epoch, LocalSeq: now.Seq,
		ServerCount: srv.n, Syncs: u.resume.Syncs + 1, Horizon: p.Horizon}
	if u.repair || !u.ok {
		u.next.Syncs = 0
	}
}

// dropOver settles the refusals in rs for missing parents of this
// repository's commits that build on a commit the server refused for good
// or collected (gone). Over a refused write they are dropped: they are
// quarantined with it, and its refusal is the one that matters. Over
// collected history (lost), merges this peer computed with it are dropped
// (they leave with it), and writes are refused for good, below the
// horizon, so that they are quarantined and listed.
func (u *run) dropOver(rs []RepoRejection) []RepoRejection {
	if len(u.gone) == 0 {
		return rs
	}
	drop := make([]bool, len(rs))
	for changed := true; changed; {
		changed = false
		for i := range rs {
			rj := &rs[i]
			if drop[i] || u.gone[rj.ID] || rj.Path != u.Path || !strings.HasPrefix(rj.Reason, repo.MissingParents) {
				continue
			}
			c, ok := u.Repo.Commit(rj.ID)
			if !ok || !slices.ContainsFunc(deps(c), func(d commit.ID) bool { return u.gone[d] }) {
				continue
			}
			u.gone[rj.ID], changed = true, true
			if lost := slices.IndexFunc(deps(c), func(d commit.ID) bool { return u.lost[d] }); lost >= 0 && !c.IsMerge() {
				// A write on top of history the server collected:
				// refused for good, and kept (quarantined) like any
				// refused write.
				rj.Reason = truncate(fmt.Sprintf("%s: builds on %s, history the server collected", repo.BelowHorizon, deps(c)[lost].Short()), MaxReasonLen)
				continue
			}
			drop[i] = true
		}
	}
	out := rs[:0]
	for i, rj := range rs {
		if !drop[i] {
			out = append(out, rj)
		}
	}
	return out
}

// deps returns a commit's parents and, for a delta, its base.
func deps(c *commit.Commit) []commit.ID {
	if c.IsFull() {
		return c.Parents()
	}
	return append(slices.Clone(c.Parents()), c.Base())
}

// unasked reports whether local pending commits wait for an id this run
// did not ask the server for yet. Equal sets are compared from the
// server's horizon on, so they can hide older parents the server holds
// (of commits it sent a peer offline past its horizon); the next round
// asks for them.
func (u *run) unasked() bool {
	for _, id := range limitIDs(u.Repo.Missing()) {
		if !u.asked[id] {
			return true
		}
	}
	return false
}

// collected reports whether the server refused a local commit as below
// its horizon h (repo.BelowHorizon) that an earlier sync left on it: it
// stored the commit then and has collected it since, which it does only
// to history something it keeps replaced. Such a commit is pushed only as
// the parent of a merge this peer computed with the history that replaced
// it (the link between them was collected too); it is no refused write.
func (u *run) collected(rj Rejection, h int64) bool {
	if !strings.HasPrefix(rj.Reason, repo.BelowHorizon) {
		return false
	}
	if u.acked == nil {
		u.acked = u.ackedBefore(h)
	}
	return u.acked[rj.ID] && !reinstated(u.Repo, rj.ID)
}

// ackedBefore returns the local commits stamped before h that an earlier
// sync left on the server: those at or before the local position of the
// resume point, in the log it names. (A refused commit may be there too,
// brought back by a Restore: see reinstated.) It is empty when the resume
// point says nothing of the log as it is.
func (u *run) ackedBefore(h int64) map[commit.ID]bool {
	out := map[commit.ID]bool{}
	if !u.ok || u.Repo.Epoch() != u.resume.LocalEpoch {
		return out
	}
	all := u.allStamps()
	// After all: a commit written between the calls is in after only,
	// so never taken as acknowledged.
	after, _ := stampsSince(u.Repo, u.resume.LocalSeq)
	later := make(map[commit.ID]bool, len(after))
	for _, s := range after {
		later[s.ID] = true
	}
	for _, s := range all {
		if s.Time < h && !later[s.ID] {
			out[s.ID] = true
		}
	}
	return out
}

// reinstater is the optional method of a Repo whose refused commits can
// come back (repo.Repo.Reinstated): whether a commit or an ancestor is a
// refused write brought back.
type reinstater interface{ Reinstated(id commit.ID) bool }

// reinstated reports whether r says commit id or an ancestor is a refused
// write brought back.
func reinstated(r Repo, id commit.ID) bool {
	x, ok := r.(reinstater)
	return ok && x.Reinstated(id)
}

// retryParents queues for the next round, once per commit and sync, the
// parents and delta base held here of a local commit the server refused
// for lack of them (repo.MissingParents), and the commit again, and
// reports whether it did. A parent can miss the push that carried its
// child: written after the position the push was read from but before
// the child (sequence numbers are taken before writes join the graph), or
// older than the server's horizon, where no filter looks. The server
// refuses a parent for good if it collected it (repo.BelowHorizon), and
// the embedding layer quarantines it with what builds on it, instead of
// the commit being refused for missing parents at every sync.
func (u *run) retryParents(rj Rejection) bool {
	if !strings.HasPrefix(rj.Reason, repo.MissingParents) || u.retried[rj.ID] {
		return false
	}
	c, ok := u.Repo.Commit(rj.ID)
	if !ok {
		return false
	}
	var held []*commit.Commit
	for _, id := range deps(c) {
		if d, ok := u.Repo.Commit(id); ok {
			held = append(held, d)
		}
	}
	if len(held) == 0 {
		return false
	}
	if u.retried == nil {
		u.retried = map[commit.ID]bool{}
	}
	u.retried[rj.ID] = true
	u.retry = append(append(u.retry, held...), c)
	return true
}

// exclude leaves a local commit the server refused or hides out of the
// comparison with the server's set. It reports whether id was held here
// and not excluded yet.
func (u *run) exclude(id commit.ID) bool {
	c, ok := u.Repo.Commit(id)
	if !ok || u.excluded[id] {
		return false
	}
	u.excluded[id] = true
	u.exLocal = append(u.exLocal, stamp{id, c.Time()})
	return true
}

// hide excludes the ids the server answered as hidden, as if it had
// refused them, and adds those held here to the repository's entry in
// st.Hidden.
func (u *run) hide(ids []commit.ID, st *Stats) {
	var held []commit.ID
	for _, id := range ids {
		if u.exclude(id) {
			held = append(held, id)
		}
	}
	if len(held) == 0 {
		return
	}
	for i := range st.Hidden {
		if st.Hidden[i].Path == u.Path {
			st.Hidden[i].IDs = append(st.Hidden[i].IDs, held...)
			return
		}
	}
	st.Hidden = append(st.Hidden, RepoHidden{Path: u.Path, IDs: held})
}

// shallowReceiver is the optional method of a Repo that can store
// commits whose parents it lacks as shallow roots, with the generation the
// server gives (repo.Repo.ReceiveShallow): the commits of a collected
// server whose parents it collected.
type shallowReceiver interface {
	ReceiveShallow(encs [][]byte, roots map[commit.ID]repo.Shallow) (stored []commit.ID, rejected []repo.Rejection, err error)
}

// receive has the Repo validate and store the commits of p: those p
// names as shallow roots as such, if the Repo can (shallowReceiver);
// without it they wait for their parents.
func (u *run) receive(p *RepoResponse) ([]commit.ID, []repo.Rejection, error) {
	if sr, ok := u.Repo.(shallowReceiver); ok && len(p.Shallow) > 0 {
		roots := make(map[commit.ID]repo.Shallow, len(p.Shallow))
		for _, r := range p.Shallow {
			roots[r.ID] = repo.Shallow{Gen: r.Gen, Depth: r.Depth, Absent: r.Absent}
		}
		return sr.ReceiveShallow(p.Commits, roots)
	}
	return u.Repo.Receive(p.Commits)
}

// store receives the server's commits (repo.Receive validates them) and
// notes those refused.
func (u *run) store(p *RepoResponse, st *Stats) error {
	st.CommitsReceived += len(p.Commits)
	u.lastGot = len(p.Commits)
	if len(p.Commits) == 0 {
		return nil
	}
	stored, refused, err := u.receive(p)
	if err != nil {
		return err
	}
	// The server holds every commit it sent, whether this call stored it,
	// another writer did (a concurrent sync, or the server pushing to
	// this peer's own server), or it was refused here: none of them is
	// ever pushed back in this sync.
	for _, b := range p.Commits {
		if c, err := commit.Decode(b); err == nil {
			u.got[c.ID()] = true
		}
	}
	var real map[commit.ID]int64 // times of the commits sent that decode, by id
	if len(refused) > 0 {
		real = decodedTimes(p.Commits)
	}
	for _, rj := range refused {
		st.Refused = append(st.Refused, RepoRejection{u.Path, rj})
		// The server's digest counts what it holds: commits that decode.
		if at, ok := real[rj.ID]; ok && !u.excluded[rj.ID] {
			u.excluded[rj.ID] = true
			u.exRemote = append(u.exRemote, stamp{rj.ID, at})
		}
	}
	if len(stored)+len(refused) < len(p.Commits) {
		u.heldOutside(p.Commits, st)
	}
	return nil
}

// holder is the optional method of a Repo that says whether it holds a
// commit in its graph, in the synced set or not (repo.Repo.Has).
type holder interface{ Has(id commit.ID) bool }

// HeldOutside is the reason Stats.Refused gives for a commit the server
// sent that this peer holds outside the set it syncs: excluded
// (repo.Repo.Exclude) or refused when it first came.
const HeldOutside = "held here outside the synced commits (excluded or refused before)"

// heldOutside counts as refused here the commits the server sent that
// Receive passed over as held but that are not among the local commits
// (Commit does not return them): without them the two sides' sets
// would never agree. A commit another sync is storing at this moment
// (not in the graph yet: Has says no) is not one of them.
func (u *run) heldOutside(encs [][]byte, st *Stats) {
	h, ok := u.Repo.(holder)
	if !ok {
		return
	}
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err != nil || u.excluded[c.ID()] {
			continue
		}
		if _, ok := u.Repo.Commit(c.ID()); ok || !h.Has(c.ID()) {
			continue
		}
		st.Refused = append(st.Refused, RepoRejection{u.Path, Rejection{ID: c.ID(), Reason: HeldOutside}})
		u.excluded[c.ID()] = true
		u.exRemote = append(u.exRemote, stamp{c.ID(), c.Time()})
	}
}

// idsFrom returns the ids of the commits ss stamps from horizon h on (all
// of them for 0).
func idsFrom(ss []repo.Stamp, h int64) []commit.ID {
	out := make([]commit.ID, 0, len(ss))
	for _, s := range ss {
		if h <= 0 || s.Time >= h {
			out = append(out, s.ID)
		}
	}
	return out
}

// decodedTimes returns the times of the encodings that decode, by id.
func decodedTimes(encs [][]byte) map[commit.ID]int64 {
	out := map[commit.ID]int64{}
	for _, b := range encs {
		if c, err := commit.Decode(b); err == nil {
			out[c.ID()] = c.Time()
		}
	}
	return out
}
