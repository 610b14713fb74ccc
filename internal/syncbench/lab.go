package syncbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/server"
)

// lab holds the databases and servers of one measurement. Their data is
// in a temporary directory; close stops and closes everything in the
// reverse order it was made, then removes the directory.
type lab struct {
	dir     string
	log     *slog.Logger
	peers   int            // databases opened so far, for directory names
	users   int            // users made by login, for their names
	closers []func() error // run in reverse order by close
	srv     *server.Server // the last one served with authentication
}

func newLab(base string, log *slog.Logger) (*lab, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "goatdb-syncbench-")
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &lab{dir: dir, log: log}, nil
}

// open opens a new database in its own directory; nil opts means the
// defaults (signed commits, Sync durability).
func (l *lab) open(opts *goatdb.Options) (*goatdb.DB, error) {
	l.peers++
	db, err := goatdb.Open(filepath.Join(l.dir, fmt.Sprintf("peer%d", l.peers)), opts)
	if err != nil {
		return nil, err
	}
	l.atClose(db.Close)
	return db, nil
}

// serve serves db on a new port of 127.0.0.1, with base's options (nil:
// the defaults), without a rate limit and, unless base sets Quotas,
// without event-stream quotas, until the lab closes, and returns the
// server's URL. With auth, the server
// authenticates every request and lets logged-in users read and write
// every repository (authz.OpenRules); clients log in with login.
func (l *lab) serve(db *goatdb.DB, base *server.Options, auth bool) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	opts := &server.Options{}
	if base != nil {
		*opts = *base
	}
	opts.RateLimit = -1
	if opts.Quotas == nil {
		// Every client of the lab comes from 127.0.0.1, and without
		// authentication each counts against that address: lift the
		// event-stream quotas, which would refuse the 17th stream.
		q := server.Quotas{}
		q.Session.EventStreams, q.User.EventStreams, q.Address.EventStreams = -1, -1, -1
		opts.Quotas = &q
	}
	if auth {
		id, _, err := server.NewIdentity("syncbench")
		if err != nil {
			return "", errors.Join(err, ln.Close())
		}
		opts.Auth = &server.AuthOptions{Identity: id, Rules: authz.OpenRules()}
	}
	srv, err := server.New(db, opts)
	if err != nil {
		return "", errors.Join(err, ln.Close())
	}
	if auth {
		l.srv = srv
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	l.atClose(func() error {
		cancel()
		return errors.Join(<-done, srv.Close())
	})
	return "http://" + ln.Addr().String(), nil
}

// login logs db in to the lab's authenticating server as a new user; it
// does nothing if the server does not authenticate.
func (l *lab) login(ctx context.Context, db *goatdb.DB, url string) error {
	if l.srv == nil {
		return nil
	}
	l.users++
	user := fmt.Sprintf("user%d", l.users)
	code, _, err := l.srv.Accounts().AddUser(user, nil)
	if err != nil {
		return err
	}
	_, err = db.LoginCode(ctx, url, user, code)
	return err
}

// client returns an HTTP client with its own connections, closed when the
// lab closes.
func (l *lab) client() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	l.atClose(func() error { tr.CloseIdleConnections(); return nil })
	return &http.Client{Transport: tr}
}

func (l *lab) atClose(fn func() error) { l.closers = append(l.closers, fn) }

// close stops and closes everything, newest first, and removes the
// directory.
func (l *lab) close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	l.closers = nil
	errs = append(errs, os.RemoveAll(l.dir))
	return errors.Join(errs...)
}
