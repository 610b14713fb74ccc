package main

import (
	"flag"
	"math"
	"net"
	"net/http"
	"strings"

	"github.com/goatdb/goatdb/server"
)

// limitFlags are serve's flags for quotas and connection limits. Their
// defaults are server.DefaultQuotas and the server's defaults; 0 turns a
// limit off. A user's limits (over all its sessions) are set in
// proportion to a session's: 4 × its request rate, pushes and event
// streams, 2 × its new repositories.
type limitFlags struct {
	userRate       float64
	ipRate         float64
	pushMiB        int64
	pushCommits    int64
	reposPerHour   int
	streams        int
	maxStreams     int
	maxConnections int
	minBodyKiB     float64
	clientIPHeader string
}

func (l *limitFlags) register(fs *flag.FlagSet) {
	d := server.DefaultQuotas()
	fs.Float64Var(&l.userRate, "user-rate", d.User.Requests, "requests per second per user, over all its sessions (0: no limit)")
	fs.Float64Var(&l.ipRate, "ip-rate", d.Address.Requests, "requests per second per client address that are not authenticated or of anonymous sessions (0: no limit)")
	fs.Int64Var(&l.pushMiB, "push-mib", d.Session.PushBytes>>20, "commit `MIB` a session may push per 10 minutes (0: no limit)")
	fs.Int64Var(&l.pushCommits, "push-commits", d.Session.PushCommits, "commits a session may push per 10 minutes (0: no limit)")
	fs.IntVar(&l.reposPerHour, "repos-per-hour", d.Session.Repos, "repositories a session may create per hour (0: no limit)")
	fs.IntVar(&l.streams, "streams", d.Session.EventStreams, "event streams a session may hold open (0: no limit)")
	fs.IntVar(&l.maxStreams, "max-streams", 10_000, "event streams the server holds open in all (0: no limit)")
	fs.IntVar(&l.maxConnections, "max-connections", server.DefaultMaxConnections, "connections the server holds open; more wait (0: no limit)")
	fs.Float64Var(&l.minBodyKiB, "min-body-rate", 8, "least `KIB` per second a request body must arrive at after 5 s; slower ones are cut with 408 (0: no minimum)")
	fs.StringVar(&l.clientIPHeader, "client-ip-header", "", "take a client's address from the last entry of `HEADER` (such as X-Forwarded-For), set by the reverse proxy in front; only behind one")
}

// apply checks the flags and sets them in opts; sessionRate is --rate.
func (l *limitFlags) apply(opts *server.Options, sessionRate float64) error {
	for name, v := range map[string]float64{"user-rate": l.userRate, "ip-rate": l.ipRate, "min-body-rate": l.minBodyKiB} {
		if v < 0 {
			return usagef("serve", "--%s %g: want 0 (no limit) or more", name, v)
		}
	}
	for name, v := range map[string]int64{"push-mib": l.pushMiB, "push-commits": l.pushCommits, "repos-per-hour": int64(l.reposPerHour),
		"streams": int64(l.streams), "max-streams": int64(l.maxStreams), "max-connections": int64(l.maxConnections)} {
		if v < 0 {
			return usagef("serve", "--%s %d: want 0 (no limit) or more", name, v)
		}
	}
	for name, v := range map[string]int64{"push-mib": l.pushMiB, "push-commits": l.pushCommits, "repos-per-hour": int64(l.reposPerHour),
		"streams": int64(l.streams), "max-streams": int64(l.maxStreams), "max-connections": int64(l.maxConnections)} {
		if v > 1<<30 {
			return usagef("serve", "--%s %d: want at most %d", name, v, 1<<30)
		}
	}
	if h := l.clientIPHeader; h != "" && strings.ContainsAny(h, " :\t\r\n") {
		return usagef("serve", "--client-ip-header %q: want a header name such as X-Forwarded-For", h)
	}
	off := func(v float64) float64 { // serve's 0 is the server's "no limit"
		if v == 0 {
			return -1
		}
		return v
	}
	q := &server.Quotas{
		Session: server.Quota{Requests: off(sessionRate), PushBytes: int64(off(float64(l.pushMiB << 20))),
			PushCommits: int64(off(float64(l.pushCommits))), Repos: int(off(float64(l.reposPerHour))), EventStreams: int(off(float64(l.streams)))},
		Address: server.Quota{Requests: off(l.ipRate), PushBytes: int64(off(float64(l.pushMiB << 20))),
			PushCommits: int64(off(float64(l.pushCommits))), Repos: int(off(float64(l.reposPerHour)))},
	}
	q.User = server.Quota{Requests: off(l.userRate), PushBytes: 4 * q.Session.PushBytes, PushCommits: 4 * q.Session.PushCommits,
		Repos: 2 * q.Session.Repos, EventStreams: 4 * q.Session.EventStreams}
	opts.Quotas = q
	opts.MaxEventStreams = l.maxStreams
	if l.maxStreams == 0 {
		opts.MaxEventStreams = math.MaxInt32
	}
	opts.MaxConnections = int(off(float64(l.maxConnections)))
	opts.MinBodyRate = off(l.minBodyKiB * 1024)
	if h := l.clientIPHeader; h != "" {
		opts.ClientKey = func(r *http.Request) string { return headerAddress(r, h) }
	}
	return nil
}

// headerAddress is the client's address as the proxy in front reports it:
// the last entry of the header (the one that proxy added), or the
// connection's address if there is none.
func headerAddress(r *http.Request, header string) string {
	vs := r.Header.Values(header)
	if len(vs) > 0 {
		parts := strings.Split(vs[len(vs)-1], ",")
		if a := strings.TrimSpace(parts[len(parts)-1]); a != "" {
			return server.AddressKey(a)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return server.AddressKey(host)
}
