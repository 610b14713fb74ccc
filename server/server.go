package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/server/console"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
)

// Options configure a Server. The zero value is valid.
type Options struct {
	// Logger receives access logs (Info), failures (Warn, Error) and
	// details (Debug); nil discards.
	Logger *slog.Logger
	// Auth turns on authentication and authorization (see AuthOptions).
	// Without it the server authenticates nobody and Policy alone decides
	// (every client reads and writes everything by default): only for
	// tests and trusted networks. New logs a warning then.
	Auth *AuthOptions
	// Policy decides what each session may write and read when Auth is
	// nil; nil means syncproto.AllowAll. With Auth, the rules decide and
	// Policy must be nil.
	Policy syncproto.Policy
	// Peers are other servers' URLs to replicate with: every repository
	// here is kept in sync with them, and every repository they announce
	// is created here.
	Peers []string
	// PeerSync tunes the replication with Peers (backoff, intervals);
	// Follow is always set.
	PeerSync *goatdb.SyncOptions
	// Quotas bound what each session, user and client address may do
	// (see Quotas); nil means DefaultQuotas.
	Quotas *Quotas
	// RateLimit, if positive, is the sustained requests per second each
	// session (without Auth: each client, by ClientKey) may make to /v1/
	// routes, and RateBurst how many at once: they override
	// Quotas.Session.Requests and RequestBurst. A negative RateLimit turns
	// every request-rate limit off (session, user and address).
	RateLimit float64
	RateBurst int
	// ClientKey names the client of a request for the limits by address;
	// nil means its remote IP address. Behind a reverse proxy, return the
	// client's address as the proxy reports it (and only trust the
	// proxy's header).
	ClientKey func(*http.Request) string
	// RequestTimeout bounds reading, handling and writing one sync
	// request; 0 means 60 seconds.
	RequestTimeout time.Duration
	// KeepAlive is the interval of event-stream keep-alive comments; 0
	// means 15 seconds.
	KeepAlive time.Duration
	// MaxEventStreams bounds the open event streams; 0 means 10,000.
	MaxEventStreams int
	// EventCommitBytes bounds the commit bytes a change event carries (see
	// package transport: a receiver then needs no round trip); a change
	// with more goes as a bare notice. 0 means 64 KiB; negative, events
	// carry no commits. At most transport.MaxEventCommits.
	EventCommitBytes int
	// EventCommitRate bounds the commit bytes one event stream carries per
	// second (a budget refilled continuously, holding at most one
	// second's worth); past it, changes go as bare notices. 0 means
	// 256 KiB.
	EventCommitRate int
	// ShutdownTimeout bounds the wait for requests in flight when Serve
	// stops; 0 means 10 seconds.
	ShutdownTimeout time.Duration
	// MaxSendBytes bounds the commit bytes of one response; 0 means
	// syncproto's default.
	MaxSendBytes int
	// MemoryBudget bounds the memory sync requests in flight hold at once:
	// bodies, decompressed payloads and answers, each reserved before it
	// is allocated. A request that finds no room gets 503 with
	// Retry-After, and an answer is made smaller (the client continues in
	// its next round) when room is short. A request larger than the
	// budget can hold is never taken, so keep it well above the largest
	// request clients send (about 2 × syncproto.MaxMessageSize covers any).
	// One session, user or client address holds at most a quarter of it
	// at once, so that one client's heavy requests leave room for the
	// others'; a request whose body and payload alone need more than that
	// is refused with 413. Keep it at 8 × the largest request clients send
	// (goatdb's client sends at most 16 MiB of commits a request). 0 means
	// DefaultMemoryBudget; negative, no limit.
	MemoryBudget int64
	// MinBodyRate is the least average rate, in bytes per second, at
	// which a request body must arrive once BodyGrace has passed; a slower
	// one is cut with 408 and the connection closed. 0 means 8 KiB/s;
	// negative, no minimum. BodyGrace 0 means 5 seconds.
	MinBodyRate float64
	BodyGrace   time.Duration
	// GC is the history policy of the deployment: the horizon goatdb gc
	// (through the admin socket) collects to. Its certificate lifetime and
	// offline grace must not be shorter than the accounts' (AuthOptions).
	GC gc.Policy
	// Now is the clock of what the server decides by the time that is not
	// the accounts' (AuthOptions.Accounts.Now, which it also sets when
	// that is nil): when a purge's record falls below the horizon. nil
	// means time.Now.
	Now func() time.Time
	// AckReplicas, if positive, makes a sync request from a client (not
	// from a peer node) that brought commits wait for its answer until
	// that many of Peers have stored them (goatdb.Syncer.WaitStored), at
	// most AckTimeout (0 means 5 seconds); past it the answer is 503 with
	// Retry-After: the commits are stored here, and the client, which
	// keeps them, sends them again (to this node or another). It needs
	// Auth, so that requests from peer nodes, which must not wait, are
	// told apart, and at least AckReplicas Peers.
	AckReplicas int
	AckTimeout  time.Duration
	// Cluster, if set, makes the server a member of a cluster whose
	// membership package cluster keeps: it serves /v1/cluster/ to the
	// other members and hands its repositories over when the membership
	// changes (cluster.go). It needs Auth: members are nodes of one
	// deployment, named by their node certificates.
	Cluster *cluster.Node
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// call the JSON API from a browser; "*" allows any. Empty (the
	// default) sends no CORS headers: only the server's own pages (the
	// console) and non-browser clients call it.
	CORSOrigins []string
	// MaxConnections bounds the connections Serve keeps open; more wait
	// in the listen backlog until one closes. 0 means
	// DefaultMaxConnections; negative, no bound.
	MaxConnections int
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.RequestTimeout < 0 || o.KeepAlive < 0 || o.ShutdownTimeout < 0 || o.BodyGrace < 0:
		return errors.New("server: negative duration in Options")
	case o.RateBurst < 0 || o.MaxEventStreams < 0:
		return errors.New("server: negative RateBurst or MaxEventStreams")
	case o.EventCommitBytes > transport.MaxEventCommits || o.EventCommitRate < 0:
		return fmt.Errorf("server: EventCommitBytes over %d or negative EventCommitRate", transport.MaxEventCommits)
	case o.Auth != nil && o.Policy != nil:
		return errors.New("server: Options.Policy and Options.Auth both set; with Auth, rules (AuthOptions.Rules) decide")
	case o.Auth != nil && o.Auth.Identity == nil:
		return errors.New("server: AuthOptions.Identity is required (OpenIdentity or NewIdentity)")
	case o.AckReplicas < 0 || o.AckTimeout < 0:
		return errors.New("server: negative AckReplicas or AckTimeout")
	case o.AckReplicas > 0 && o.Auth == nil:
		return errors.New("server: AckReplicas needs Auth: peers are told apart from clients by their node certificates")
	case o.Cluster != nil && o.Auth == nil:
		return errors.New("server: Cluster needs Auth: members are nodes of one deployment")
	case o.Cluster != nil && len(o.Peers) > 0:
		return errors.New("server: Cluster and Peers both set; in a cluster, each repository replicates among its owners")
	case o.AckReplicas > len(o.Peers) && o.Cluster == nil:
		return fmt.Errorf("server: AckReplicas %d is more than the %d Peers", o.AckReplicas, len(o.Peers))
	}
	for _, p := range o.Peers {
		if _, err := goatdb.NormalizeServerURL(p); err != nil {
			return err
		}
	}
	return nil
}

// quotas returns Quotas with RateLimit and RateBurst applied.
func (o *Options) quotas() Quotas {
	var q Quotas
	if o.Quotas != nil {
		q = *o.Quotas
	}
	switch {
	case o.RateLimit < 0:
		q.Session.Requests, q.User.Requests, q.Address.Requests = -1, -1, -1
	case o.RateLimit > 0:
		q.Session.Requests, q.Session.RequestBurst = o.RateLimit, o.RateBurst
	}
	return q
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Auth != nil && o.Auth.Accounts.Now == nil {
		a := *o.Auth
		a.Accounts.Now = o.Now
		o.Auth = &a
	}
	if o.Policy == nil {
		o.Policy = syncproto.AllowAll{}
	}
	if o.ClientKey == nil {
		o.ClientKey = remoteIP
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 60 * time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.MaxEventStreams == 0 {
		o.MaxEventStreams = 10_000
	}
	if o.EventCommitBytes == 0 {
		o.EventCommitBytes = 64 << 10
	}
	if o.EventCommitRate == 0 {
		o.EventCommitRate = 256 << 10
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MinBodyRate == 0 {
		o.MinBodyRate = 8 << 10
	}
	if o.BodyGrace == 0 {
		o.BodyGrace = 5 * time.Second
	}
	return o
}

// Server serves a goatdb database to sync clients. Create one with New,
// run it with Serve (or mount Handler), and Close it when done; the
// database stays open and is the caller's to close.
type Server struct {
	db        *goatdb.DB
	opts      Options
	log       *slog.Logger
	responder *syncproto.Responder
	metrics   *metrics
	quotas    *quotas
	hub       *hub
	handler   http.Handler
	mem       memBudget
	auth      *AuthOptions    // nil without authentication
	accounts  *Accounts       // nil without authentication
	verifier  *authz.Verifier // nil without authentication
	policy    *authPolicy     // nil without authentication
	shuns     *shunIndex      // the purges (purge.go)
	// readPolicy is the Policy the Responder uses (with purges): the JSON
	// API reads and writes through it too.
	readPolicy syncproto.Policy
	web        webSessions                   // the JSON API's tokens (websession.go)
	peers      atomic.Pointer[goatdb.Syncer] // the replication with Options.Peers, while Serve runs

	unavailable sync.Map // repositories that failed to open, logged once (lease.go)

	nodesMu sync.Mutex                        // guards nodes
	nodes   map[string]*authz.NodeCertificate // verified node certificates by header

	mu       sync.Mutex // guards serving
	serving  bool
	draining chan struct{} // closed when Serve begins to shut down

	failures storageFailures // storage failures answered, for /healthz
}

// New returns a server for db. It opens no repository: each is opened when
// a request needs it, and event streams follow the repositories open
// (DB.OnRepoOpen) until Close. Give db a bound on open repositories
// (goatdb.Options.MaxOpenRepos, MaxOpenRepoBytes) to serve more
// repositories than it can keep open; the server holds each one open only
// while a request works on it, and the /sys repositories (accounts) for
// good.
func New(db *goatdb.DB, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Server{db: db, opts: o, log: o.Logger, metrics: newMetrics(), draining: make(chan struct{})}
	s.quotas = newQuotas(o.quotas())
	s.mem.max = max(0, o.MemoryBudget)
	s.mem.share = s.mem.max / 4
	s.metrics.memInUse = s.mem.used.Load
	var err error
	policy := o.Policy
	if o.Auth != nil {
		if err := s.setupAuth(o.Auth); err != nil {
			return nil, err
		}
		s.policy = newAuthPolicy(o.Auth.Rules, s.accounts, o.Auth.Anonymous)
		policy = s.policy
	} else {
		o.Logger.Warn("serving without authentication: every client may read and write everything (set server.Options.Auth)")
	}
	// Purges apply to every principal, under any policy (purge.go).
	s.shuns = newShunIndex(db, o.Logger)
	s.shuns.horizon = func() time.Time { return s.GCPolicy().Horizon(o.Now()) }
	if err := s.shuns.refresh(true); err != nil {
		return nil, err
	}
	policy = &shunPolicy{inner: policy, shuns: s.shuns}
	s.readPolicy = policy
	s.responder, err = syncproto.NewResponder(syncproto.ReposFunc(s.repo), &syncproto.ResponderOptions{
		Policy: policy, MaxSendBytes: o.MaxSendBytes, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	s.hub = newHub(s.metrics)
	// A repository whose shuns changed is announced as changed: the views
	// of it did, and followers sync to forget what they must.
	s.shuns.changed = func(repos []string) {
		for _, rp := range repos {
			s.hub.publish(rp)
		}
	}
	// Accounts and shun records follow /sys however it changes (an
	// admin, a peer), so that a revocation ends streams, and a purge
	// hides its item, within moments.
	s.hub.onChange = func(path string) {
		if path == ShunRepo {
			if err := s.shuns.refresh(true); err != nil {
				s.log.Error("reload shun records", "err", err)
			}
		}
		if s.accounts != nil && strings.HasPrefix(path, "/sys/") {
			if err := s.accounts.refresh(); err != nil {
				s.log.Error("reload accounts", "err", err)
			}
		}
	}
	s.hub.unhook = db.OnRepoOpen(s.hub.watch)
	s.handler = s.holdRepos(s.routes())
	return s, nil
}

// repo is the Responder's Repos: it opens existing repositories, and
// creates one only for a request that brings commits, and holds each for
// the request (holdRepo).
//
// A repository the session may not read answers, to a request that brings
// nothing, exactly as one that does not exist.
func (s *Server) repo(ctx context.Context, _ commit.SessionID, path string, create bool) (syncproto.Repo, error) {
	if err := goatdb.CheckRepoPath(path); err != nil {
		return nil, fmt.Errorf("%w: %v", syncproto.ErrUnknownRepo, err)
	}
	if create {
		if ok, err := s.db.HasRepo(path); err == nil && !ok {
			if err := s.chargeRepo(ctx); err != nil {
				return nil, err
			}
		}
		return s.holdRepo(ctx, path, true)
	}
	if s.policy != nil && !s.policy.readable(ctx, path) {
		return nil, unknownRepo(path)
	}
	r, err := s.holdRepo(ctx, path, false)
	if errors.Is(err, goatdb.ErrNotFound) {
		return nil, unknownRepo(path)
	}
	return r, err
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestID, s.accessLog, s.countRequests, s.recoverPanic)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Method(m, "/", console.Handler())
		r.Method(m, "/console/*", console.Handler())
	}
	r.Get("/healthz", s.handleHealth)
	r.Get("/livez", s.handleLive)
	r.Get("/readyz", s.handleReady)
	if s.accounts == nil {
		r.Get("/metrics", s.handleMetrics)
	}
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.cors, jsonErrors, s.rateLimit)
		r.With(s.limitBody(syncproto.MaxMessageSize), s.reserveBody, s.authenticate, s.chargeRequest).Post("/sync", s.handleSync)
		r.With(s.limitBody(0), s.authenticate, s.chargeRequest).Get("/events", s.handleEvents)
		if s.accounts != nil {
			s.authRoutes(r.With(s.limitBody(maxAuthBody), s.authenticate, s.chargeRequest))
		}
		if s.opts.Cluster != nil {
			r.With(s.limitBody(maxAuthBody), s.authenticate, s.chargeRequest).Group(s.clusterRoutes)
		}
		r.Get("/openapi.json", s.handleOpenAPI)
		r.With(s.limitBody(maxAPIBody)).Group(s.apiRoutes)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusNotFound, "no such route: %s %s; the routes are POST /v1/sync, GET /v1/events, the JSON API under /v1 (GET /v1/openapi.json describes it), GET /healthz, GET /livez, GET /readyz and GET /metrics", r.Method, r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		httpError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s; use %s", req.Method, req.URL.Path, strings.Join(allow, " or "))
	})
	return r
}

// Handler returns the server's HTTP handler, for use with any
// http.Server or httptest.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler returns the /metrics handler (Prometheus text format).
// With authentication on, Handler does not serve /metrics: metrics name
// repositories and counts that clients may not see, so serve this on a
// separate address that only operators reach (goatdb serve
// --metrics-addr, loopback only).
func (s *Server) MetricsHandler() http.Handler { return http.HandlerFunc(s.handleMetrics) }

// Serve serves HTTP on ln until ctx ends, then shuts down gracefully: it
// ends event streams, waits (up to ShutdownTimeout) for sync requests in
// flight, stops replicating with peers, and flushes every repository. It
// replicates with Options.Peers while it runs. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.opts.MaxConnections > 0 {
		ll := newLimitListener(ln, s.opts.MaxConnections, &s.metrics.connections, s.metrics.connectionsFull)
		ln, hs.ConnState = ll, ll.connState
	}
	var peers *goatdb.Syncer
	if len(s.opts.Peers) > 0 {
		var po goatdb.SyncOptions
		if s.opts.PeerSync != nil {
			po = *s.opts.PeerSync
		}
		po.Follow = true
		if s.auth != nil {
			// Replicate as this node of the deployment: peers of the
			// same deployment trust what it relays.
			po.Node = &goatdb.NodeAuth{Key: s.auth.Identity.NodeKey, Certificate: s.auth.Identity.Node.Encode(),
				History: s.GCPolicy().Kept(), Rules: s.auth.Rules.Fingerprint()}
		}
		var err error
		if peers, err = s.db.StartSync(s.opts.Peers, &po); err != nil {
			return fmt.Errorf("server: replicate with peers: %w", err)
		}
		s.metrics.replicating(peers)
		s.peers.Store(peers)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	evictDone := make(chan struct{})
	evictStop := make(chan struct{})
	go func() {
		defer close(evictDone)
		s.evictLoop(evictStop)
	}()
	defer func() { close(evictStop); <-evictDone }()
	if s.opts.Cluster != nil {
		handoffStop, handoffDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(handoffDone)
			s.handoffLoop(handoffStop)
		}()
		defer func() { close(handoffStop); <-handoffDone }()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	close(s.draining)
	s.hub.drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	errs := []error{hs.Shutdown(sctx)}
	if serveErr == nil {
		serveErr = <-errc
	}
	if !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	if peers != nil {
		errs = append(errs, peers.Stop())
	}
	errs = append(errs, s.db.Flush())
	return errors.Join(errs...)
}

// evictLoop deletes revocation records that can no longer refuse
// anything, at start and every hour, until stop is closed.
func (s *Server) evictLoop(stop <-chan struct{}) {
	if s.accounts == nil {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.accounts.EvictRevocations(); err != nil {
			s.log.Warn("evict revocation records", "err", err)
		} else if n > 0 {
			s.log.Info("evicted revocation records", "count", n)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Close stops watching repositories and ends every event stream. It does
// not close the database.
func (s *Server) Close() error {
	s.hub.close()
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.repositories.Store(int64(s.hub.count()))
	s.metrics.storage(s.db)
	s.metrics.write(w)
}

// httpError writes a plain-text error: one line saying what is wrong.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return AddressKey(host)
}

// AddressKey is the key of a client address (host, without port) for the
// limits by address, as the default Options.ClientKey makes it:
// the address itself for IPv4, its /64 for IPv6 (one host commonly holds
// a whole /64, so single addresses would hand it endless keys).
func AddressKey(host string) string {
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Is4() || ip.Is4In6() {
		if err == nil {
			return ip.Unmap().String()
		}
		return host
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}
