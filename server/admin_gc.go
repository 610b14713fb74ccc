package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/transport"
)

// GCRequest asks a running server to collect history (goatdb gc).
type GCRequest struct {
	Repos  []string `json:"repos,omitempty"` // none: every repository
	DryRun bool     `json:"dry_run,omitempty"`
	Force  bool     `json:"force,omitempty"`
}

// gcResult is a gc.Result on the admin socket.
type gcResult struct {
	Repo          string `json:"repo"`
	Horizon       string `json:"horizon"`
	Compacted     bool   `json:"compacted"`
	Skipped       string `json:"skipped,omitempty"`
	CommitsBefore int    `json:"commits_before"`
	CommitsAfter  int    `json:"commits_after"`
	BytesBefore   int64  `json:"bytes_before"`
	BytesAfter    int64  `json:"bytes_after"`
	Shallow       int    `json:"shallow"`
	PauseMicros   int64  `json:"pause_us"`
	TookMillis    int64  `json:"took_ms"`
}

type gcAnswer struct {
	Results []gcResult `json:"results"`
	Error   string     `json:"error,omitempty"` // failures of some repositories
}

// adminHandler is the admin socket's API: the accounts' (AdminHandler),
// POST /gc {"repos","dry_run","force"}, which collects history with the
// server's policy (Options.GC), dropping what purges shunned (ShunDrop),
// and answers what it did, and POST /purge (purgeRoutes).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", AdminHandler(s.accounts))
	s.purgeRoutes(mux)
	s.clusterAdminRoutes(mux)
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		var in GCRequest
		if err := readJSON(r, &in); err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		results, err := gc.CollectAll(r.Context(), s.db, in.Repos, &gc.Options{Policy: s.GCPolicy(), DryRun: in.DryRun, Force: in.Force,
			Drop: s.ShunDrop()})
		var out gcAnswer
		for _, res := range results {
			st := res.Stats
			out.Results = append(out.Results, gcResult{Repo: res.Path, Horizon: res.Horizon.Format(time.RFC3339), Compacted: res.Compacted,
				Skipped: res.Skipped, CommitsBefore: st.CommitsBefore, CommitsAfter: st.CommitsAfter, BytesBefore: st.BytesBefore,
				BytesAfter: st.BytesAfter, Shallow: st.Shallow, PauseMicros: st.Pause.Microseconds(), TookMillis: st.Took.Milliseconds()})
		}
		if err != nil {
			out.Error = err.Error() // the operator's own socket: paths are theirs to see
		}
		writeJSON(w, out)
	})
	return mux
}

// Collect runs goatdb gc on the server: see GCRequest. An error on some
// repositories comes back beside the results of the others.
func (c *AdminClient) Collect(ctx context.Context, req GCRequest) ([]gc.Result, error) {
	var out gcAnswer
	if err := c.call(http.MethodPost, "/gc", req, &out); err != nil {
		return nil, err
	}
	results := make([]gc.Result, len(out.Results))
	for i, r := range out.Results {
		h, _ := time.Parse(time.RFC3339, r.Horizon)
		results[i] = gc.Result{Path: r.Repo, Horizon: h, Compacted: r.Compacted, Skipped: r.Skipped, Stats: repo.CompactStats{
			CommitsBefore: r.CommitsBefore, CommitsAfter: r.CommitsAfter, BytesBefore: r.BytesBefore, BytesAfter: r.BytesAfter,
			Shallow: r.Shallow, Pause: time.Duration(r.PauseMicros) * time.Microsecond, Took: time.Duration(r.TookMillis) * time.Millisecond}}
	}
	if out.Error != "" {
		return results, fmt.Errorf("server: %s", out.Error)
	}
	return results, nil
}

// GCPolicy returns the history policy: Options.GC, with its certificate
// lifetime and offline grace raised to the accounts' (the horizon must not
// pass commits the server still accepts).
func (s *Server) GCPolicy() gc.Policy {
	p := gc.DefaultPolicy()
	o := s.opts.GC
	if o.CertLifetime > 0 {
		p.CertLifetime = o.CertLifetime
	}
	if o.OfflineGrace > 0 {
		p.OfflineGrace = o.OfflineGrace
	}
	if o.Skew > 0 {
		p.Skew = o.Skew
	}
	p.MinFraction, p.MinBytes = o.MinFraction, o.MinBytes
	if s.accounts != nil {
		a := s.accounts.opts
		p.CertLifetime = max(p.CertLifetime, a.CertLifetime, a.AnonymousLifetime)
		p.OfflineGrace = max(p.OfflineGrace, a.Grace)
	}
	return p
}

// sameHistory checks a peer node's history length (transport.NodeHistoryHeader,
// seconds; "" from a node that sends none) against this server's: nodes
// that keep different lengths of history would each refuse, as below its
// horizon, commits the other accepts.
func (s *Server) sameHistory(header string) error {
	if header == "" {
		return nil
	}
	secs, err := strconv.ParseInt(header, 10, 64)
	if err != nil || secs <= 0 || secs > 1<<40 {
		return fmt.Errorf("%s %q: want whole seconds", transport.NodeHistoryHeader, header)
	}
	theirs, ours := time.Duration(secs)*time.Second, s.GCPolicy().Kept().Truncate(time.Second)
	if theirs != ours {
		return fmt.Errorf("%w: this node keeps %v of history and the peer %v (certificate lifetime + offline grace + skew); configure the nodes alike",
			gc.ErrPolicyMismatch, ours, theirs)
	}
	return nil
}
