package goatdb

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
)

// SyncOptions configure a background Syncer. The zero value is valid.
type SyncOptions struct {
	// Repos are repositories to keep in sync besides those in the data
	// directory; the ones that do not exist here are created, so that an
	// empty peer fetches them.
	Repos []string
	// Follow also syncs every repository a server announces, creating it
	// here: what a server replicating another server does.
	Follow bool
	// Client is the HTTP client; nil means one with bounded dialing and no
	// overall timeout (event streams last).
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait before retrying a server
	// that failed (each failure doubles it, with jitter); 0 means 100ms
	// and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Interval is how often every repository is synced even if no event
	// said so; 0 means 5 minutes. It repairs what a lost event stream or a
	// server that lost data would otherwise leave.
	Interval time.Duration
	// IdleTimeout is how long an event stream may stay silent (servers
	// send a keep-alive every 15 seconds) before it is reconnected, which
	// also notices a laptop that slept; 0 means 45 seconds.
	IdleTimeout time.Duration
	// Failover treats the servers as nodes of one deployment (which
	// replicate with each other): the Syncer syncs with one of them at a
	// time, starting with the first, and moves to the next when it
	// fails (unreachable, or a temporary error such as 503, which a node
	// answers when too few replicas stored a write: server.Options.AckReplicas);
	// its event stream follows. Without it, every server is synced.
	Failover bool
	// Filter, if set, limits which repositories are synced with which
	// server: repository path is synced with (and, with Follow, created
	// from the announcements of) the server at url only if it returns
	// true. It must be fast and safe for concurrent use. A server in a
	// cluster replicates each repository with its co-owners only.
	Filter func(url, path string) bool
	// Node, if set, authenticates these syncs as a server node of the
	// servers' deployment instead of as this database's session: what a
	// server replicating its peers does (package server sets it). Nodes
	// relay every commit and read everything; the servers check the node
	// certificate against their deployment's root key.
	Node *NodeAuth
}

// NodeAuth is a server node's credentials: its key, which signs its
// requests, and its certificate from the deployment's root key
// (authz.NodeCertificate.Encode).
type NodeAuth struct {
	Key         ed25519.PrivateKey
	Certificate []byte
	// History is how long the node keeps history its sessions may build
	// on (gc.Policy.Kept); peers with another refuse to replicate, since
	// each would refuse as below its horizon commits the other accepts.
	// 0 sends none.
	History time.Duration
	// Rules is the fingerprint of the rules the node enforces
	// (authz.Rules.Fingerprint); peers whose rules differ refuse to
	// replicate, since each would accept writes the other refuses. ""
	// sends none.
	Rules string
}

// Validate checks the options.
func (o *SyncOptions) Validate() error {
	for _, p := range o.Repos {
		if err := CheckRepoPath(p); err != nil {
			return err
		}
	}
	if o.MinBackoff < 0 || o.MaxBackoff < 0 || o.Interval < 0 || o.IdleTimeout < 0 {
		return errors.New("goatdb: negative duration in SyncOptions")
	}
	if o.Node != nil {
		if len(o.Node.Key) != ed25519.PrivateKeySize {
			return errors.New("goatdb: SyncOptions.Node has no Ed25519 key")
		}
		if _, err := authz.DecodeNodeCertificate(o.Node.Certificate); err != nil {
			return fmt.Errorf("goatdb: SyncOptions.Node: %w", err)
		}
	}
	return nil
}

func (o SyncOptions) withDefaults() SyncOptions {
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Interval == 0 {
		o.Interval = 5 * time.Minute
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 45 * time.Second
	}
	return o
}

// Syncer keeps a database's repositories in sync with servers in the
// background: it syncs a repository as soon as it changes here, or as soon
// as a server announces a change on its event stream, batching whatever
// accumulated while the previous sync ran. It backs off with jitter while
// a server is down and catches up by itself when the server returns, or
// when an event stream went silent (a laptop that slept). DB.StartSync
// starts one; Stop or DB.Close stops it.
//
// It holds a repository open only for the sync round that syncs it (at
// most half of Options.MaxOpenRepos at once), and follows the changes of
// those that are open: a repository closed for idleness changes only by
// being opened again, which the Syncer sees (DB.OnRepoOpen).
type Syncer struct {
	db      *DB
	opts    SyncOptions
	log     *slog.Logger
	servers []*serverLoop
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the Syncer starts

	unhook func() // removes the OnRepoOpen hook

	roundMu sync.Mutex    // guards rounds
	rounds  chan struct{} // closed, and replaced, when a sync round ends

	mu      sync.Mutex            // guards the fields below
	paths   map[string]bool       // the repositories kept in sync
	watched map[string]*repo.Repo // those open now, each followed by a watch goroutine
	seen    map[string]position   // where those closed since were when they closed
	stopped bool
}

// position is where a repository's log is.
type position struct{ epoch, seq uint64 }

func positionOf(r *repo.Repo) position { return position{r.Epoch(), r.Seq()} }

// StartSync starts a background Syncer for the given server URLs. It
// keeps in sync every repository in the data directory, every one opened
// later, and opts.Repos. On a read-only database it fails with
// ErrReadOnly.
func (db *DB) StartSync(servers []string, opts *SyncOptions) (*Syncer, error) {
	var o SyncOptions
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, errors.New("goatdb: StartSync needs at least one server URL")
	}
	if db.opts.ReadOnly {
		return nil, fmt.Errorf("goatdb: a read-only database cannot sync: %w", ErrReadOnly)
	}
	o = o.withDefaults()
	s := &Syncer{db: db, opts: o, log: db.opts.Logger.With("component", "syncer"), rounds: make(chan struct{}),
		paths: map[string]bool{}, watched: map[string]*repo.Repo{}, seen: map[string]position{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	seen := map[string]bool{}
	var group []*remote
	for _, u := range servers {
		rm, err := db.remoteAs(u, o.Client, o.Node)
		if err != nil {
			return nil, err
		}
		if !seen[rm.url] {
			seen[rm.url] = true
			group = append(group, rm)
		}
	}
	if o.Failover {
		s.servers = append(s.servers, newServerLoop(s, group...))
	} else {
		for _, rm := range group {
			s.servers = append(s.servers, newServerLoop(s, rm))
		}
	}

	// Register first, then list: every repository open now or opened
	// from now on reaches s.opened.
	db.remotesMu.Lock()
	if db.syncers == nil {
		db.syncers = map[*Syncer]bool{}
	}
	db.syncers[s] = true
	db.remotesMu.Unlock()
	s.unhook = db.OnRepoOpen(s.opened)

	all, err := db.Repos()
	if err == nil {
		err = s.follow(all, o.Repos)
	}
	if err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	for _, sl := range s.servers {
		sl.start()
	}
	return s, nil
}

// follow keeps in sync the repositories listed in the data directory,
// without opening them, and the named ones, creating those that do not
// exist.
func (s *Syncer) follow(listed, named []string) error {
	for _, p := range named {
		if _, err := s.db.fs.Stat(s.db.logPath(p)); errors.Is(err, fs.ErrNotExist) {
			_, release, err := s.db.Acquire(p) // s.opened follows it
			if err != nil {
				return err
			}
			release()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range append(listed, named...) {
		if !s.paths[p] {
			s.paths[p] = true
			s.markLocked(p)
		}
	}
	return nil
}

// markLocked marks path dirty on every server; s.mu is held.
func (s *Syncer) markLocked(path string) {
	for _, sl := range s.servers {
		sl.mark(path, false)
	}
}

// opened starts watching a repository that was just opened, and marks it
// dirty unless it is where it was when it closed. It is called with db.mu
// held and must not call back into the DB.
func (s *Syncer) opened(path string, r *repo.Repo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.watched[path] == r {
		return
	}
	s.paths[path] = true
	s.watched[path] = r
	ch := r.Changed() // now, so that no change after the open is missed
	at := positionOf(r)
	s.wg.Go(func() { s.watch(path, r, ch, at) })
	if was, ok := s.seen[path]; !ok || was != at {
		s.markLocked(path)
	}
	delete(s.seen, path)
}

// watch marks the repository dirty on every server each time it changes,
// until it closes; at is its position when it was last marked.
func (s *Syncer) watch(path string, r *repo.Repo, ch <-chan struct{}, at position) {
	for {
		select {
		case <-ch:
		case <-s.ctx.Done():
			return
		}
		if r.Closed() {
			s.closed(path, r, at)
			return
		}
		ch = r.Changed()
		at = positionOf(r)
		s.mu.Lock()
		s.markLocked(path)
		s.mu.Unlock()
	}
}

// closed forgets a repository that closed, remembering where it was (a
// closed repository does not change), and marks it dirty if it changed
// since it was last marked.
func (s *Syncer) closed(path string, r *repo.Repo, at position) {
	now := positionOf(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watched[path] == r { // not reopened meanwhile
		delete(s.watched, path)
		s.seen[path] = now
	}
	if now != at {
		s.markLocked(path)
	}
}

// position returns where the repository at path is without opening it, if
// that is known, and whether it is kept in sync at all.
func (s *Syncer) position(path string) (at position, known, followed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.paths[path] {
		return position{}, false, false
	}
	if r := s.watched[path]; r != nil {
		return positionOf(r), true, true
	}
	at, known = s.seen[path]
	return at, known, true
}

// follows reports whether the repository at path is kept in sync.
func (s *Syncer) follows(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

// pathList returns the paths of the repositories kept in sync, sorted.
func (s *Syncer) pathList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.paths))
}

// Stop stops the Syncer and waits for its goroutines; a sync under way is
// cancelled (what it stored stays stored). It saves the resume points.
func (s *Syncer) Stop() error {
	s.mu.Lock()
	already := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.unhook()
	s.cancel()
	s.wg.Wait()
	s.db.remotesMu.Lock()
	delete(s.db.syncers, s)
	s.db.remotesMu.Unlock()
	return s.db.resumes.save()
}

// ErrNotReplicated is the error of WaitStored when too few servers
// confirmed in time.
var ErrNotReplicated = errors.New("goatdb: not stored by enough servers")

// WaitStored waits until n of the Syncer's servers have stored every
// commit that repository path held at position (epoch, seq) of its log
// (repo.Repo's Epoch and Seq): until a sync with each of them that began
// there or later has succeeded. It asks every server that has not for a
// sync at once. When ctx ends first it returns an error wrapping
// ErrNotReplicated and ctx's error, saying how many confirmed. A
// compaction of the local log meanwhile (a new epoch) makes the older
// position unknown to the servers' resume points: it then waits until
// ctx ends.
func (s *Syncer) WaitStored(ctx context.Context, path string, epoch, seq uint64, n int) error {
	if n > len(s.servers) {
		return fmt.Errorf("%w: %d servers asked for, the Syncer has %d", ErrNotReplicated, n, len(s.servers))
	}
	asked := make([]bool, len(s.servers))
	for {
		s.roundMu.Lock()
		next := s.rounds
		s.roundMu.Unlock()
		stored := 0
		for i, sl := range s.servers {
			if res, ok := sl.remoteFor(path).resumes.LoadResume(path); ok && res.LocalEpoch == epoch && res.LocalSeq >= seq {
				stored++
			} else if !asked[i] {
				asked[i] = true
				sl.mark(path, true)
			}
		}
		if stored >= n {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s stored by %d of the %d servers asked for: %w", ErrNotReplicated, path, stored, n, ctx.Err())
		case <-s.ctx.Done():
			return fmt.Errorf("%w: the Syncer stopped", ErrNotReplicated)
		}
	}
}

// roundEnded wakes WaitStored's waiters.
func (s *Syncer) roundEnded() {
	s.roundMu.Lock()
	close(s.rounds)
	s.rounds = make(chan struct{})
	s.roundMu.Unlock()
}

// stopSyncers stops every background Syncer (DB.Close).
func (db *DB) stopSyncers() error {
	db.remotesMu.Lock()
	ss := make([]*Syncer, 0, len(db.syncers))
	for s := range db.syncers {
		ss = append(ss, s)
	}
	db.remotesMu.Unlock()
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

// ServerStatus is what a Syncer knows of one server.
type ServerStatus struct {
	URL       string
	Listening bool      // the event stream is connected
	Syncs     int       // syncs that succeeded
	Failures  int       // syncs or event-stream connections that failed
	LastSync  time.Time // end of the last successful sync
	LastError error     // the last failure, nil after a success
	Sent      int       // commits sent
	Received  int       // commits received
	// Rejected are the server's latest refusals of local commits (at most
	// 100), retryable ones included.
	Rejected []syncproto.RepoRejection
	// Quarantined counts the local writes quarantined after the server
	// refused them (DB.Rejected lists those still quarantined), and
	// Forgotten the commits forgotten because the server no longer lets
	// this session read them (see DB.Sync).
	Quarantined, Forgotten int
}

// Status reports on every server, in the order given to StartSync.
func (s *Syncer) Status() []ServerStatus {
	out := make([]ServerStatus, len(s.servers))
	for i, sl := range s.servers {
		sl.mu.Lock()
		out[i] = sl.status
		out[i].Rejected = slices.Clone(sl.status.Rejected)
		sl.mu.Unlock()
	}
	return out
}

// serverLoop syncs with one server: a worker goroutine runs syncs of the
// dirty repositories, and a listener goroutine follows the server's event
// stream.
type serverLoop struct {
	s    *Syncer
	rms  []*remote     // the servers: one, or a failover group
	kick chan struct{} // capacity 1: the worker has something to do

	// applyMu is held while commits from an event are stored and the
	// resume point moved past them, and by take while it checks resume
	// points: so take never sees the commits without the resume point
	// that covers them, and syncs for nothing.
	applyMu sync.Mutex

	mu         sync.Mutex // guards the fields below
	cur        int        // the server of rms synced now
	dropStream func()     // ends the current event stream (failover)
	dropped    bool       // the stream was ended by a failover: reconnect at once
	// route holds the owner each repository is synced with, when the
	// server synced first answered it as moved (a sharded cluster), and
	// routed the owners whose event streams are followed for them.
	route     map[string]*remote
	routed    map[*remote]bool
	avoid     map[*remote]time.Time // owners that failed lately
	dirty     map[string]bool
	force     map[string]bool // sync even if the resume point says nothing changed
	announced map[string]syncproto.Point
	status    ServerStatus
}

func newServerLoop(s *Syncer, rms ...*remote) *serverLoop {
	return &serverLoop{s: s, rms: rms, kick: make(chan struct{}, 1), dirty: map[string]bool{},
		force: map[string]bool{}, announced: map[string]syncproto.Point{}, status: ServerStatus{URL: rms[0].url},
		route: map[string]*remote{}, routed: map[*remote]bool{}, avoid: map[*remote]time.Time{}}
}

// rm returns the server synced now.
func (sl *serverLoop) rm() *remote {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.rms[sl.cur]
}

// remoteFor returns the server repository path is synced with: the owner
// it was routed to, else the server synced now.
func (sl *serverLoop) remoteFor(path string) *remote {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if rm := sl.route[path]; rm != nil {
		return rm
	}
	return sl.rms[sl.cur]
}

// routeMoved routes each repository err says moved (a member of a sharded
// cluster answered it so) to its first owner in this group that did not
// fail lately, marks it to sync with it, and follows that owner's event
// stream; it returns the rest of err. Owners outside the group are never
// used: this peer's commits go only to servers it was given.
func (sl *serverLoop) routeMoved(from *remote, err error) error {
	moved, rest := syncproto.SplitMoved(err)
	for path, owners := range moved {
		if to := sl.ownerIn(owners, from); to != nil {
			sl.routeTo(path, to)
			continue
		}
		rest = append(rest, fmt.Errorf("%w: sync %s: it lives on %s, none of them a server of this group", syncproto.ErrRemote, path, strings.Join(owners, " ")))
	}
	return errors.Join(rest...)
}

// ownerIn returns the first of owners (URLs) that is a server of the
// group, other than not, and did not fail in the last 30 seconds.
func (sl *serverLoop) ownerIn(owners []string, not *remote) *remote {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for _, o := range owners {
		u, err := NormalizeServerURL(o)
		if err != nil {
			continue
		}
		for _, rm := range sl.rms {
			if rm.url == u && rm != not && time.Since(sl.avoid[rm]) > 30*time.Second {
				return rm
			}
		}
	}
	return nil
}

// routeTo syncs path with to from now on, and follows to's event stream.
func (sl *serverLoop) routeTo(path string, to *remote) {
	sl.mu.Lock()
	sl.route[path] = to
	start := !sl.routed[to]
	sl.routed[to] = true
	sl.mu.Unlock()
	if start {
		sl.s.wg.Go(func() { sl.follow(to) })
	}
	sl.mark(path, true)
}

// unroute forgets the routes to rm, which failed: those repositories go
// back to the server synced now, which answers where they moved.
func (sl *serverLoop) unroute(rm *remote) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.avoid[rm] = time.Now()
	for p, to := range sl.route {
		if to == rm {
			delete(sl.route, p)
			sl.dirty[p], sl.force[p] = true, true
		}
	}
}

// follow follows the event stream of rm, an owner repositories were
// routed to, until the Syncer stops.
func (sl *serverLoop) follow(rm *remote) {
	ctx := sl.s.ctx
	var fails int
	for {
		began := time.Now()
		err := sl.stream(ctx, rm, false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			fails = 0
		}
		fails++
		_, after := retryable(err)
		if !sleep(ctx, max(after, sl.backoff(fails))) {
			return
		}
	}
}

// failover moves a failover group to its next server after rm failed
// with err: every repository is synced with it (from its own resume
// points: a first contact costs the difference), and the event stream
// reconnects to it. It reports whether the loop has another server.
func (sl *serverLoop) failover(rm *remote, err error) bool {
	if len(sl.rms) < 2 {
		return false
	}
	sl.mu.Lock()
	if sl.rms[sl.cur] != rm {
		sl.mu.Unlock()
		return true // moved already
	}
	sl.cur = (sl.cur + 1) % len(sl.rms)
	next := sl.rms[sl.cur]
	sl.status.URL = next.url
	drop := sl.dropStream
	sl.dropped = drop != nil
	sl.announced = map[string]syncproto.Point{}
	sl.mu.Unlock()
	sl.s.log.Warn("server failed: failing over", "from", rm.url, "to", next.url, "err", err)
	if drop != nil {
		drop()
	}
	for _, p := range sl.s.pathList() {
		sl.mark(p, true)
	}
	return true
}

func (sl *serverLoop) start() {
	sl.s.wg.Go(sl.work)
	sl.s.wg.Go(sl.listen)
}

// mark asks the worker to sync path; force skips the resume check.
func (sl *serverLoop) mark(path string, force bool) {
	sl.mu.Lock()
	sl.dirty[path] = true
	if force {
		sl.force[path] = true
	}
	sl.mu.Unlock()
	select {
	case sl.kick <- struct{}{}:
	default:
	}
}

// take returns the dirty repositories that need a sync, sorted, holding
// them open (held), and forgets them. It takes at most a sync batch of the
// database (DB.syncBatch); the rest stays dirty for the next round. A
// repository closed since it was last synced is checked against its
// resume point without opening it.
func (sl *serverLoop) take(held *leases) []syncproto.Local {
	sl.applyMu.Lock()
	defer sl.applyMu.Unlock()
	sl.mu.Lock()
	dirty, force := sl.dirty, sl.force
	sl.dirty, sl.force = map[string]bool{}, map[string]bool{}
	announced := make(map[string]syncproto.Point, len(dirty))
	for p := range dirty {
		if pt, ok := sl.announced[p]; ok {
			announced[p] = pt
		}
	}
	sl.mu.Unlock()
	paths := slices.Sorted(maps.Keys(dirty))
	limit := sl.s.db.syncBatch(len(paths))
	var out []syncproto.Local
	for i, p := range paths {
		if len(out) == limit {
			for _, q := range paths[i:] {
				sl.mark(q, force[q])
			}
			break
		}
		if f := sl.s.opts.Filter; f != nil && !f(sl.remoteFor(p).url, p) {
			continue
		}
		pt, ok := announced[p]
		at, known, followed := sl.s.position(p)
		if !followed || known && !force[p] && !sl.needsSync(p, at, pt, ok) {
			continue
		}
		r, release, err := sl.s.db.hold(p, false)
		if err != nil || r == nil {
			if err != nil && !errors.Is(err, ErrClosed) {
				sl.s.log.Warn("open repository to sync", "repo", p, "err", err)
			}
			continue
		}
		if force[p] || sl.needsSync(p, positionOf(r), pt, ok) {
			out = append(out, syncproto.Local{Path: p, Repo: r})
			held.add(release)
		} else {
			release()
		}
	}
	return out
}

// needsSync reports whether the repository, at position at, changed here
// since its resume point, or the server announced a position past it.
func (sl *serverLoop) needsSync(path string, at position, announced syncproto.Point, ok bool) bool {
	res, had := sl.remoteFor(path).resumes.LoadResume(path)
	if !had || at.epoch != res.LocalEpoch || at.seq != res.LocalSeq {
		return true
	}
	return ok && (announced.Epoch != res.ServerEpoch || announced.Seq > res.ServerSeq)
}

// work runs syncs while there is something to sync, backing off after
// failures.
func (sl *serverLoop) work() {
	ctx := sl.s.ctx
	tick := time.NewTicker(sl.s.opts.Interval)
	defer tick.Stop()
	var fails int
	var save <-chan time.Time // pending save of the resume points
	for {
		select {
		case <-sl.kick:
		case <-tick.C:
			for _, p := range sl.s.pathList() {
				sl.mark(p, true)
			}
			continue
		case <-save:
			save = nil
			if err := sl.s.db.resumes.save(); err != nil {
				sl.s.log.Warn("save sync resume points", "err", err)
			}
			continue
		case <-ctx.Done():
			return
		}
		ran, err := sl.round(ctx)
		if !ran {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if save == nil {
			// Resume points are saved at most once a second (and by
			// Stop): a stale one costs a Bloom round, never a commit.
			save = time.After(time.Second)
		}
		if err == nil {
			fails = 0
			continue
		}
		fails++
		if errors.Is(err, errFailedOver) && fails < len(sl.rms) {
			continue // the next server at once, until each failed in turn
		}
		_, after := retryable(err)
		if !sleep(ctx, max(after, sl.backoff(fails))) {
			return
		}
	}
}

// errFailedOver is what a round reports once its failure moved a
// failover group to its next server.
var errFailedOver = errors.New("goatdb: failed over to the next server")

// round syncs the dirty repositories that need it, holding them open
// meanwhile, and marks again those a failed sync left behind. It reports
// whether it synced anything, and the sync's error.
func (sl *serverLoop) round(ctx context.Context) (bool, error) {
	var held leases
	defer held.release()
	locals := sl.take(&held)
	if len(locals) == 0 {
		return false, nil
	}
	defer sl.s.roundEnded()
	// Each repository goes to the server it is routed to (most to the
	// one synced now).
	groups := map[*remote][]syncproto.Local{}
	var order []*remote
	for _, l := range locals {
		rm := sl.remoteFor(l.Path)
		if groups[rm] == nil {
			order = append(order, rm)
		}
		groups[rm] = append(groups[rm], l)
	}
	current := sl.rm()
	var errs []error
	failedOver := false
	for _, rm := range order {
		ls := groups[rm]
		st, err := rm.syncer.Sync(ctx, ls...)
		done, qerr := rm.settle(ls, st)
		if ctx.Err() != nil {
			return true, err
		}
		err = sl.routeMoved(rm, err)
		sl.record(rm, st, done, errors.Join(err, qerr))
		if err == nil {
			continue
		}
		if ok, _ := retryable(err); ok {
			if rm != current {
				sl.unroute(rm)
			} else if sl.failover(rm, err) {
				failedOver = true
			}
		}
		// Retry what is still behind, after a pause. A repository that
		// is empty here and unknown there has nothing to sync until one
		// side writes to it.
		for _, l := range ls {
			if l.Repo.(*repo.Repo).Stats().Commits > 0 || !errors.Is(err, syncproto.ErrUnknownRepo) {
				sl.mark(l.Path, false)
			}
		}
		errs = append(errs, err)
	}
	if failedOver {
		return true, errFailedOver
	}
	return true, errors.Join(errs...)
}

// record keeps a sync's outcome in the status and logs rejections,
// quarantines and failures.
func (sl *serverLoop) record(rm *remote, st SyncStats, done settled, err error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.status.Sent += st.CommitsSent
	sl.status.Received += st.CommitsReceived
	sl.status.Rejected = append(sl.status.Rejected, st.Rejected...)
	if n := len(sl.status.Rejected); n > 100 {
		sl.status.Rejected = slices.Delete(sl.status.Rejected, 0, n-100)
	}
	sl.status.Quarantined += len(done.quarantined)
	sl.status.Forgotten += done.forgotten
	quarantined := map[commit.ID]bool{}
	for _, w := range done.quarantined {
		quarantined[w.Commit] = true
	}
	for _, rj := range st.Rejected {
		sl.s.log.Warn("server rejected a commit", "server", rm.url, "repo", rj.Path, "commit", rj.ID,
			"reason", rj.Reason, "quarantined", quarantined[rj.ID])
	}
	for _, h := range st.Hidden {
		sl.s.log.Info("forgot commits the server no longer lets this session read", "server", rm.url,
			"repo", h.Path, "commits", len(h.IDs))
	}
	if done.restored > 0 {
		sl.s.log.Info("restored forgotten commits the server lets this session read again", "server", rm.url,
			"commits", done.restored)
	}
	if err != nil {
		sl.status.Failures++
		sl.status.LastError = err
		sl.s.log.Warn("sync failed", "server", rm.url, "err", err)
		return
	}
	sl.status.Syncs++
	sl.status.LastSync = rm.db.opts.Now()
	sl.status.LastError = nil
}

// backoff is the pause after the n-th failure in a row: doubling from
// MinBackoff up to MaxBackoff, with the upper half jittered so that many
// clients of a restarted server do not return at once.
func (sl *serverLoop) backoff(n int) time.Duration {
	d := sl.s.opts.MinBackoff << min(n-1, 30)
	if d <= 0 || d > sl.s.opts.MaxBackoff {
		d = sl.s.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// listen follows the server's event stream, reconnecting with backoff.
func (sl *serverLoop) listen() {
	ctx := sl.s.ctx
	var fails int
	for {
		began := time.Now()
		err := sl.stream(ctx, sl.rm(), true)
		sl.mu.Lock()
		sl.status.Listening = false
		dropped := sl.dropped
		sl.dropped = false
		if err != nil && ctx.Err() == nil && !dropped {
			sl.status.Failures++
			sl.status.LastError = err
		}
		sl.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if dropped {
			fails = 0
			continue // failed over: follow the next server at once
		}
		sl.s.log.Debug("event stream ended", "server", sl.rm().url, "err", err)
		if time.Since(began) > time.Minute {
			fails = 0 // it was up a while: a fresh outage
		}
		fails++
		_, after := retryable(err)
		if !sleep(ctx, max(after, sl.backoff(fails))) {
			return
		}
	}
}

// stream reads one connection of the event stream until it fails, goes
// silent for IdleTimeout, or ctx ends.
func (sl *serverLoop) stream(ctx context.Context, rm *remote, current bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if current {
		sl.mu.Lock()
		sl.dropStream = cancel
		sl.mu.Unlock()
		defer func() {
			sl.mu.Lock()
			sl.dropStream = nil
			sl.mu.Unlock()
		}()
	}
	idle := time.AfterFunc(sl.s.opts.IdleTimeout, cancel)
	defer idle.Stop()
	er, err := rm.c.Events(ctx)
	if err != nil {
		if ctx.Err() != nil && sl.s.ctx.Err() == nil {
			return fmt.Errorf("%w: event stream: no answer within %v", ErrUnreachable, sl.s.opts.IdleTimeout)
		}
		return err
	}
	defer er.Close()
	sl.mu.Lock()
	sl.status.Listening = true
	sl.mu.Unlock()

	// Until "ready", the server lists every repository it has; afterwards
	// a repository it did not list and that has a resume point is synced
	// too (the server may have lost it).
	listed := map[string]bool{}
	ready := false
	for {
		ev, err := er.Next()
		switch {
		case errors.Is(err, syncproto.ErrMalformed):
			return fmt.Errorf("event stream from %s: %w", rm.url, err)
		case err != nil && ctx.Err() != nil && sl.s.ctx.Err() == nil:
			return fmt.Errorf("%w: event stream silent for %v", ErrUnreachable, sl.s.opts.IdleTimeout)
		case err != nil:
			return fmt.Errorf("%w: event stream: %v", ErrUnreachable, err)
		}
		idle.Reset(sl.s.opts.IdleTimeout)
		switch ev.Type {
		case transport.EventChanged:
			if !ready {
				listed[ev.Notice.Repo] = true
			}
			if len(ev.Commits) > 0 && ready && sl.apply(rm, ev) {
				sl.setAnnounced(rm, ev.Notice) // nothing to sync
				continue
			}
			sl.announce(rm, ev.Notice)
		case transport.EventReady:
			ready = true
			for _, p := range sl.s.pathList() {
				if !listed[p] {
					_, had := rm.resumes.LoadResume(p)
					sl.mark(p, had)
				}
			}
		}
	}
}

// announce records a server's position and syncs the repository if that
// moves it past what this peer has; with Follow, it opens a repository it
// did not have.
func (sl *serverLoop) announce(rm *remote, n syncproto.Notice) {
	if f := sl.s.opts.Filter; f != nil && !f(rm.url, n.Repo) {
		return
	}
	sl.setAnnounced(rm, n)
	if sl.s.follows(n.Repo) {
		sl.mark(n.Repo, false)
		return
	}
	if sl.s.opts.Follow && CheckRepoPath(n.Repo) == nil {
		if _, err := sl.s.db.Repo(n.Repo); err != nil && !errors.Is(err, ErrClosed) {
			sl.s.log.Warn("open announced repository", "repo", n.Repo, "err", err)
		}
	}
}

// setAnnounced records a server's position, if rm is still the server
// the repository is synced with (a failover group may have moved on; a
// routed repository's is its owner).
func (sl *serverLoop) setAnnounced(rm *remote, n syncproto.Notice) {
	sl.mu.Lock()
	to := sl.route[n.Repo]
	if to == rm || to == nil && sl.rms[sl.cur] == rm {
		sl.announced[n.Repo] = syncproto.Point{Epoch: n.Epoch, Seq: n.Seq}
	}
	sl.mu.Unlock()
}

// apply stores the commits a change event carries (see package
// transport), in a repository this peer keeps in sync, as a sync stores
// what it receives: each commit's signature and fit with its parents are
// checked (repo.Repo.ReceiveComplete, which refuses a commit whose parents
// are not here rather than keeping it pending). If every commit is then
// held, they continue exactly from the resume point with the server (the
// event's From is its server position) and nothing else changed here
// since, the resume point moves to the event's position: announce then
// finds nothing to sync. Anything else (a gap, a refusal, a write here)
// leaves the resume point, and announce syncs as for a bare notice, which
// also settles what was refused. It reports whether it moved the resume
// point.
func (sl *serverLoop) apply(rm *remote, ev transport.Event) bool {
	n := ev.Notice
	if !sl.s.follows(n.Repo) {
		return false
	}
	if f := sl.s.opts.Filter; f != nil && !f(rm.url, n.Repo) {
		return false
	}
	sl.applyMu.Lock()
	defer sl.applyMu.Unlock()
	r, release, err := sl.s.db.hold(n.Repo, false)
	if err != nil || r == nil {
		return false
	}
	defer release()
	res, had := rm.resumes.LoadResume(n.Repo)
	before := positionOf(r)
	stored, refused, err := r.ReceiveComplete(ev.Commits)
	if len(stored) > 0 {
		sl.mu.Lock()
		sl.status.Received += len(stored)
		sl.mu.Unlock()
	}
	if err != nil || len(refused) > 0 {
		sl.s.log.Debug("event commits not stored: syncing", "server", rm.url, "repo", n.Repo,
			"refused", len(refused), "err", err)
		return false
	}
	if !had || res.ServerEpoch != ev.From.Epoch || res.ServerSeq != ev.From.Seq ||
		before != (position{res.LocalEpoch, res.LocalSeq}) {
		return false
	}
	// Only the event's commits were written here since before: nothing
	// local the server lacks comes before the new resume point.
	written, cur := r.CommitsSince(before.seq)
	if r.Epoch() != before.epoch || !sameIDs(written, stored) ||
		len(stored) < len(ev.Commits) && !allHeld(r, ev.Commits) {
		return false
	}
	res.ServerEpoch, res.ServerSeq = n.Epoch, n.Seq
	res.LocalSeq = cur
	res.ServerCount += uint64(len(ev.Commits))
	rm.resumes.StoreResume(n.Repo, res)
	return true
}

// sameIDs reports whether cs are exactly the commits of ids.
func sameIDs(cs []*commit.Commit, ids []commit.ID) bool {
	if len(cs) != len(ids) {
		return false
	}
	want := make(map[commit.ID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, c := range cs {
		if !want[c.ID()] {
			return false
		}
	}
	return true
}

// allHeld reports whether r holds every commit of encs among the commits
// it syncs (not excluded, not refused before).
func allHeld(r *repo.Repo, encs [][]byte) bool {
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err != nil {
			return false
		}
		if _, ok := r.Commit(c.ID()); !ok {
			return false
		}
	}
	return true
}
