package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/syncproto"
)

// Quota bounds what one principal may do. Each rate is a token bucket:
// it holds a period's worth (the burst) and refills evenly, so a client
// may spend a period's worth at once and then the sustained rate. A
// request that alone needs more than a whole period's worth is refused
// with 413; one that finds the bucket short, with 429 and Retry-After.
//
// In Quotas, a zero field takes the default and a negative one means no
// limit.
type Quota struct {
	// Requests is the sustained requests per second to /v1/ routes, and
	// RequestBurst how many may come at once.
	Requests     float64
	RequestBurst int
	// PushBytes and PushCommits bound the commit bytes (encoded, before
	// compression) and the commits pushed per Quotas.PushWindow.
	PushBytes   int64
	PushCommits int64
	// Repos bounds the repositories created per hour.
	Repos int
	// EventStreams bounds the event streams open at once.
	EventStreams int
}

// Quotas are the limits per session, per user and per client address.
//
// A request of a session certified for a user counts against the session
// and the user (all of the user's sessions together). A request that is
// not authenticated — refused with 401 — or of an anonymous session counts
// against its address (Options.ClientKey: behind a reverse proxy, set it
// to name the client), since anyone may make up anonymous sessions.
// Without Options.Auth, no session is verified, and the Session limits
// apply per address. Server nodes of the deployment (replication) and the
// root key are not limited.
type Quotas struct {
	Session Quota
	User    Quota
	Address Quota
	// Registrations bounds the anonymous sessions one address registers
	// per hour (each writes a certificate).
	Registrations int
	// PushWindow is the period of PushBytes and PushCommits.
	PushWindow time.Duration
}

// DefaultQuotas returns the limits a zero Quotas means. They are generous:
// an app's own sync, even catching up on a day offline, stays well within
// them, while one client cannot take a server's disk, repositories or
// event streams for itself.
func DefaultQuotas() Quotas {
	return Quotas{
		Session: Quota{Requests: 100, RequestBurst: 1000, PushBytes: 64 << 20, PushCommits: 250_000,
			Repos: 100, EventStreams: 16},
		User: Quota{Requests: 400, RequestBurst: 4000, PushBytes: 256 << 20, PushCommits: 1_000_000,
			Repos: 200, EventStreams: 64},
		Address: Quota{Requests: 200, RequestBurst: 2000, PushBytes: 64 << 20, PushCommits: 250_000,
			Repos: 100, EventStreams: 256},
		Registrations: 100,
		PushWindow:    10 * time.Minute,
	}
}

// withDefaults fills zero fields from DefaultQuotas and turns negative
// ones into 0 (no limit).
func (q Quotas) withDefaults() Quotas {
	d := DefaultQuotas()
	fill := func(v, dv *Quota) {
		v.Requests = pick(v.Requests, dv.Requests)
		v.PushBytes = pick(v.PushBytes, dv.PushBytes)
		v.PushCommits = pick(v.PushCommits, dv.PushCommits)
		v.Repos = pick(v.Repos, dv.Repos)
		v.EventStreams = pick(v.EventStreams, dv.EventStreams)
		switch {
		case v.Requests == 0:
			v.RequestBurst = 0
		case v.RequestBurst <= 0:
			v.RequestBurst = max(10, int(10*v.Requests))
		}
	}
	fill(&q.Session, &d.Session)
	fill(&q.User, &d.User)
	fill(&q.Address, &d.Address)
	q.Registrations = pick(q.Registrations, d.Registrations)
	if q.PushWindow <= 0 {
		q.PushWindow = d.PushWindow
	}
	return q
}

func pick[T int | int64 | float64](v, d T) T {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0
	}
	return v
}

// The limits, as named in goatdb_limit_hits_total and in refusals.
const (
	limitRate         = "rate"
	limitAddressRate  = "ip_rate"
	limitPushBytes    = "push_bytes"
	limitPushCommits  = "push_commits"
	limitRepos        = "repos_created"
	limitStreams      = "event_streams"
	limitRegistration = "registrations"
	limitMaxStreams   = "max_event_streams" // the server's, not a quota
)

// scope is the limits of one kind of principal, with a bucket set per
// limit keyed by the principal.
type scope struct {
	name                     string // "session", "user" or "address"
	requests, bytes, commits *limiter
	repos                    *limiter
	streams                  *streamCount
	maxStreams               int
}

func newScope(name string, q Quota, window time.Duration) *scope {
	s := &scope{name: name, streams: &streamCount{open: map[string]int{}}, maxStreams: q.EventStreams}
	if q.Requests > 0 {
		s.requests = newLimiter(q.Requests, q.RequestBurst, fmt.Sprintf("%g requests per second", q.Requests))
	}
	if q.PushBytes > 0 {
		s.bytes = newLimiter(float64(q.PushBytes)/window.Seconds(), int(min(q.PushBytes, math.MaxInt)), fmt.Sprintf("%d commit bytes per %v", q.PushBytes, window))
	}
	if q.PushCommits > 0 {
		s.commits = newLimiter(float64(q.PushCommits)/window.Seconds(), int(min(q.PushCommits, math.MaxInt)), fmt.Sprintf("%d commits per %v", q.PushCommits, window))
	}
	if q.Repos > 0 {
		s.repos = newLimiter(float64(q.Repos)/3600, q.Repos, fmt.Sprintf("%d new repositories per hour", q.Repos))
	}
	return s
}

// quotas hold the server's buckets.
type quotas struct {
	q                      Quotas
	session, user, address *scope
	registrations          *limiter
}

func newQuotas(q Quotas) *quotas {
	q = q.withDefaults()
	qs := &quotas{q: q,
		session: newScope("session", q.Session, q.PushWindow),
		user:    newScope("user", q.User, q.PushWindow),
		address: newScope("address", q.Address, q.PushWindow)}
	if q.Registrations > 0 {
		qs.registrations = newLimiter(float64(q.Registrations)/3600, q.Registrations, fmt.Sprintf("%d anonymous sessions per hour", q.Registrations))
	}
	return qs
}

// account is one principal in one scope.
type account struct {
	scope *scope
	key   string
}

// accountsOf returns what a request counts against: none for nodes and
// the root; the session and its user; the session and its address for an
// anonymous session; the address without authentication.
func (s *Server) accountsOf(r *http.Request) []account {
	if s.accounts == nil {
		return []account{{s.quotas.session, s.clientKey(r)}}
	}
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return []account{{s.quotas.address, s.clientKey(r)}}
	}
	return s.principalAccounts(p, r)
}

func (s *Server) principalAccounts(p authz.Principal, r *http.Request) []account {
	switch {
	case p.Node || p.Root:
		return nil
	case p.User == "":
		return []account{{s.quotas.session, p.Session.String()}, {s.quotas.address, s.clientKey(r)}}
	}
	return []account{{s.quotas.session, p.Session.String()}, {s.quotas.user, p.User}}
}

// refusal is a limit a request ran into.
type refusal struct {
	limit  string
	status int           // 413 or 429
	wait   time.Duration // for 429
	msg    string
	// counted: the hit is in the metrics already
	counted bool
}

// charge takes n tokens from the limit that pick selects in each account,
// all or none. It returns nil if the request may proceed.
func charge(accts []account, n int, limit, what string, pick func(*scope) *limiter, now time.Time) *refusal {
	for i, a := range accts {
		l := pick(a.scope)
		if l == nil {
			continue
		}
		ok, wait := l.take(a.key, n, now)
		if ok {
			continue
		}
		for _, b := range accts[:i] { // all or none
			if pl := pick(b.scope); pl != nil {
				pl.give(b.key, n)
			}
		}
		if wait < 0 {
			return &refusal{limit: limit, status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("%d %s in one request is over the %s quota of %d; send fewer per request", n, what, a.scope.name, int64(l.burst))}
		}
		return &refusal{limit: limit, status: http.StatusTooManyRequests, wait: wait,
			msg: fmt.Sprintf("%d %s is over what remains of the %s quota (%s); retry in %v", n, what, a.scope.name, l.desc, wait.Round(time.Millisecond))}
	}
	return nil
}

// refuse answers a refusal and counts it.
func (s *Server) refuse(w http.ResponseWriter, r *refusal) {
	if !r.counted {
		s.limitHit(r.limit)
	}
	w.Header().Set("Connection", "close") // a refused client holds no connection
	if r.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(r.wait.Seconds())))))
	}
	httpError(w, r.status, "%s", r.msg)
}

// limitHit counts a request refused by a limit (and, refused by a
// request rate, in goatdb_http_rate_limited_total too).
func (s *Server) limitHit(limit string) {
	if limit == limitRate || limit == limitAddressRate {
		s.metrics.rateLimited.Add(1)
	}
	s.metrics.limitHit(limit)
}

// chargeRequest counts an authenticated request against its session and
// user (or address), answering 429 past their request rates.
func (s *Server) chargeRequest(next http.Handler) http.Handler {
	if s.accounts == nil {
		return next // rateLimit counted the request by address
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rf := charge(s.accountsOf(r), 1, limitRate, "request(s)", func(sc *scope) *limiter { return sc.requests }, time.Now()); rf != nil {
			s.refuse(w, rf)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// chargeFailure counts a request refused with 401 against its address.
func (s *Server) chargeFailure(r *http.Request) {
	if l := s.quotas.address.requests; l != nil {
		l.take(s.clientKey(r), 1, time.Now())
	}
}

// errStreamQuota is why an event stream was refused by a quota.
var errStreamQuota = errors.New("too many event streams")

// openStream counts an event stream against each account; release gives
// them back.
func openStream(accts []account) (release func(), err error) {
	for i, a := range accts {
		if a.scope.maxStreams > 0 && !a.scope.streams.add(a.key, a.scope.maxStreams) {
			for _, b := range accts[:i] {
				if b.scope.maxStreams > 0 {
					b.scope.streams.remove(b.key)
				}
			}
			return nil, fmt.Errorf("%w: this %s has %d open, its quota", errStreamQuota, a.scope.name, a.scope.maxStreams)
		}
	}
	return func() {
		for _, a := range accts {
			if a.scope.maxStreams > 0 {
				a.scope.streams.remove(a.key)
			}
		}
	}, nil
}

// streamCount counts open streams by key.
type streamCount struct {
	mu   sync.Mutex
	open map[string]int
}

func (c *streamCount) add(key string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= limit {
		return false
	}
	c.open[key]++
	return true
}

func (c *streamCount) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key]--; c.open[key] <= 0 {
		delete(c.open, key)
	}
}

// chargePush counts the commits a sync request pushes and their bytes
// against its accounts, both or neither. (The repositories it creates
// are counted one by one as they are created: chargeRepo.)
func (s *Server) chargePush(accts []account, req *syncproto.Request) *refusal {
	if len(accts) == 0 {
		return nil
	}
	charges := pushCharges(req)
	now := time.Now()
	for i, c := range charges {
		if c.n == 0 {
			continue
		}
		if rf := charge(accts, c.n, c.limit, c.what, c.pick, now); rf != nil {
			refund(accts, charges[:i])
			return rf
		}
	}
	return nil
}

// refundPush gives back what chargePush took for a request whose commits
// were not stored (storing failed, or it was cancelled): the client sends
// them again.
func (s *Server) refundPush(accts []account, req *syncproto.Request) {
	refund(accts, pushCharges(req))
}

// pushCharge is what a push counts against one limit.
type pushCharge struct {
	n           int
	limit, what string
	pick        func(*scope) *limiter
}

func pushCharges(req *syncproto.Request) []pushCharge {
	var commits, bytes int
	for i := range req.Repos {
		rr := &req.Repos[i]
		commits += len(rr.Commits)
		for _, c := range rr.Commits {
			bytes += len(c)
		}
	}
	return []pushCharge{
		{commits, limitPushCommits, "commits", func(sc *scope) *limiter { return sc.commits }},
		{bytes, limitPushBytes, "commit bytes", func(sc *scope) *limiter { return sc.bytes }},
	}
}

func refund(accts []account, charges []pushCharge) {
	for _, d := range charges {
		for _, a := range accts {
			if l := d.pick(a.scope); l != nil && d.n > 0 {
				l.give(a.key, d.n)
			}
		}
	}
}

// pushKey holds, in a sync request's context, what its new repositories
// count against.
type pushKey struct{}

// pushAccounts are a sync request's accounts and how many of its
// repositories the quota refused.
type pushAccounts struct {
	accts   []account
	mu      sync.Mutex
	refused int
	wait    time.Duration
}

// quotaRefusal is a repository refused by a quota: its text goes to the
// requester.
type quotaRefusal struct{ msg string }

func (e *quotaRefusal) Error() string { return e.msg }
func (e *quotaRefusal) Unwrap() error { return syncproto.ErrRefused }

// chargeRepo counts a repository a sync request creates against the
// request's accounts.
func (s *Server) chargeRepo(ctx context.Context) error {
	pa, _ := ctx.Value(pushKey{}).(*pushAccounts)
	if pa == nil {
		return nil
	}
	rf := charge(pa.accts, 1, limitRepos, "new repository", func(sc *scope) *limiter { return sc.repos }, time.Now())
	if rf == nil {
		return nil
	}
	s.limitHit(limitRepos)
	pa.mu.Lock()
	pa.refused++
	pa.wait = max(pa.wait, rf.wait)
	pa.mu.Unlock()
	return &quotaRefusal{rf.msg}
}
