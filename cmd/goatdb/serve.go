package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

var serveCommand = &command{
	name:    "serve",
	args:    "",
	summary: "run the sync server on the data directory",
	about: `Serve runs the HTTP sync server on --addr (default 127.0.0.1:8080; port 0
picks a free one) until SIGINT or SIGTERM, then shuts down gracefully: event
streams end, requests in flight finish, every repository is flushed. It
prints the URL it listens on. Peers sync with 'goatdb sync URL' or the Go
API (DB.Sync, DB.StartSync).

Routes: POST /v1/sync (the sync protocol), GET /v1/events (change notices,
Server-Sent Events), GET /healthz, GET /metrics (Prometheus).

--peer URL (repeatable) replicates with another server: every repository
here is kept in sync with it, and every one it announces is created here.
--rate N limits each client (by IP address) to N requests per second on
/v1/ routes (0: no limit). Access logs go to standard error at --log-level
(debug, info, warn, error), as text or, with --log-json, JSON lines.`,
	setup: func(fs *flag.FlagSet) runFunc {
		addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT`")
		var peers listFlag
		fs.Var(&peers, "peer", "replicate with the server at `URL` (repeatable)")
		rate := fs.Float64("rate", 100, "requests per second per client on /v1/ routes (0: no limit)")
		level := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
		logJSON := fs.Bool("log-json", false, "log JSON lines")
		return func(e *env, args []string) error {
			return serve(e, args, *addr, peers, *rate, *level, *logJSON)
		}
	},
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func serve(e *env, args []string, addr string, peers []string, rate float64, level string, logJSON bool) error {
	if len(args) > 0 {
		return usagef("serve", "serve takes no arguments")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return usagef("serve", "--log-level %q: want debug, info, warn or error", level)
	}
	if rate < 0 {
		return usagef("serve", "--rate %g: want 0 (no limit) or more", rate)
	}
	if rate == 0 {
		rate = -1
	}
	for _, p := range peers {
		if _, err := goatdb.NormalizeServerURL(p); err != nil {
			return usagef("serve", "--peer: %v", err)
		}
	}
	hopts := &slog.HandlerOptions{Level: lv}
	var handler slog.Handler = slog.NewTextHandler(e.stderr, hopts)
	if logJSON {
		handler = slog.NewJSONHandler(e.stderr, hopts)
	}
	logger := slog.New(handler)
	reg, err := e.reg()
	if err != nil {
		return err
	}
	db, err := goatdb.Open(e.dir, &goatdb.Options{Schemas: reg, Logger: logger})
	switch {
	case errors.Is(err, goatdb.ErrLocked):
		return final(fmt.Errorf("data directory %s is in use by another goatdb process; stop it, or give another --dir", e.dir))
	case err != nil:
		return &exitError{code: exitUsage, err: err, hinted: true}
	}
	srv, err := server.New(db, &server.Options{Logger: logger, Peers: peers, RateLimit: rate})
	if err != nil {
		return errors.Join(err, db.Close())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Join(final(fmt.Errorf("listen on %s: %v; is another server running there? give another --addr", addr, err)), srv.Close(), db.Close())
	}
	fmt.Fprintf(e.stdout, "goatdb: serving %s on http://%s\n", e.dir, ln.Addr())
	err = srv.Serve(e.ctx, ln)
	err = errors.Join(err, srv.Close(), db.Close())
	if err == nil {
		fmt.Fprintln(e.stdout, "goatdb: stopped")
	}
	return err
}
