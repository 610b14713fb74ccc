package server_test

// A server that goes away in the middle of a sync: stopped gracefully
// between two rounds, its connection cut before it read a round, or its
// answer lost after it stored a round. The sync fails; once the server is
// back on the same directory and address the next one converges, and a
// background Syncer gets there by itself.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

var restartRepos = []string{"/data/ra", "/data/rb"}

// restartFixture is what every case of TestServerRestartMidSync starts
// from: a client and a server directory, each holding items of its own
// over restartRepos.
type restartFixture struct {
	clientItems, serverItems int
	sendBytes                int // the server's bound on an answer's commit bytes
	client, server           string
}

func newRestartFixture(t *testing.T) *restartFixture {
	t.Helper()
	// The server's answers are small enough that pulling its items takes
	// several rounds.
	f := &restartFixture{clientItems: 500, serverItems: 100, sendBytes: 6 << 10}
	if dbtest.Long() {
		f.clientItems, f.serverItems, f.sendBytes = 5000, 400, 24<<10
	}
	f.client, f.server = t.TempDir(), t.TempDir()
	fillRepos(t, f.client, "c", f.clientItems)
	fillRepos(t, f.server, "s", f.serverItems)
	return f
}

// fillRepos writes n items over restartRepos in dir, in batches.
func fillRepos(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const perBatch = 500
	for start := 0; start < n; start += perBatch {
		b := db.Batch()
		for i := start; i < min(n, start+perBatch); i++ {
			b.Put(fmt.Sprintf("%s/%s%05d", restartRepos[i%len(restartRepos)], prefix, i), goatdb.Fields{"n": float64(i), "by": prefix})
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func (f *restartFixture) total() int { return f.clientItems + f.serverItems }

func (f *restartFixture) options() *server.Options {
	return &server.Options{MaxSendBytes: f.sendBytes}
}

// open copies the fixture's directories and opens them: the client's
// database, the server's, and the server's directory.
func (f *restartFixture) open(t *testing.T) (client, srv *goatdb.DB, srvDir string) {
	t.Helper()
	cdir, sdir := filepath.Join(t.TempDir(), "client"), filepath.Join(t.TempDir(), "server")
	if err := os.CopyFS(cdir, os.DirFS(f.client)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(sdir, os.DirFS(f.server)); err != nil {
		t.Fatal(err)
	}
	return dbtest.OpenDBIn(t, cdir, nil), dbtest.OpenDBIn(t, sdir, nil), sdir
}

// countItems returns the number of live items over restartRepos.
func countItems(t testing.TB, db *goatdb.DB) int {
	t.Helper()
	n := 0
	for _, p := range restartRepos {
		c, err := db.Count(p)
		if err != nil && !errors.Is(err, goatdb.ErrNotFound) {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

// cutServer serves a database through a handler wrapper until stop.
type cutServer struct {
	url, addr string
	stop      func()
}

func serveCut(t *testing.T, db *goatdb.DB, opts *server.Options, wrap func(http.Handler) http.Handler) *cutServer {
	t.Helper()
	srv, err := server.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: wrap(srv.Handler())}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			hs.Close()
			<-done
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return &cutServer{url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

// pushed returns the ids of the commits a /v1/sync request carries, by
// repository, and leaves its body readable again.
func pushed(r *http.Request) map[string][]commit.ID {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req, err := syncproto.DecodeRequest(body)
	if err != nil {
		return nil
	}
	out := map[string][]commit.ID{}
	for _, q := range req.Repos {
		for _, b := range q.Commits {
			if c, err := commit.Decode(b); err == nil {
				out[q.Path] = append(out[q.Path], c.ID())
			}
		}
	}
	return out
}

// hijackAt closes the connection of the n-th sync request without reading
// it; the others pass.
func hijackAt(n int32, seen *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/sync" && seen.Add(1) == n {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(http.ErrAbortHandler)
				}
				conn.Close()
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// lostAnswer drops the answer to the first sync request that carries
// commits: the server handles it, then the connection closes. The others
// pass.
type lostAnswer struct {
	mu     sync.Mutex // guards the fields below
	cut    int        // answers dropped: 0 or 1
	status int        // the server's status for the dropped answer
	ids    map[string][]commit.ID
}

func (l *lostAnswer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sync" {
			next.ServeHTTP(w, r)
			return
		}
		ids := pushed(r)
		l.mu.Lock()
		drop := l.cut == 0 && len(ids) > 0
		if drop {
			l.cut, l.ids = 1, ids
		}
		l.mu.Unlock()
		if !drop {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		l.mu.Lock()
		l.status = rec.Code
		l.mu.Unlock()
		panic(http.ErrAbortHandler)
	})
}

func (l *lostAnswer) done() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut == 1 && l.status != 0
}

// stored fails unless db holds every commit of the dropped request and
// the server answered it with 200.
func (l *lostAnswer) stored(t *testing.T, db *goatdb.DB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut != 1 || l.status != http.StatusOK {
		t.Fatalf("no push was cut after a 200 answer: cut %d, status %d", l.cut, l.status)
	}
	n := 0
	for path, ids := range l.ids {
		r, err := db.Repo(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			n++
			if !r.Has(id) {
				t.Errorf("%s: commit %s of the request whose answer was lost is not stored", path, id.Short())
			}
		}
	}
	t.Logf("the lost answer was to a request of %d commits", n)
}

// closeListener reports its Close on closed.
type closeListener struct {
	net.Listener
	closed chan struct{}
	once   sync.Once
}

func (l *closeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// TestServerRestartMidSync interrupts a client's first sync with a server
// in three ways, restarts the server on the same directory and address,
// and checks that a second sync converges with everything on both sides;
// and that a background Syncer converges across such a cut by itself.
func TestServerRestartMidSync(t *testing.T) {
	fx := newRestartFixture(t)

	// firstSync runs the sync that is interrupted.
	firstSync := func(t *testing.T, client *goatdb.DB, url string) goatdb.SyncStats {
		t.Helper()
		st, err := client.Sync(t.Context(), url)
		if !errors.Is(err, goatdb.ErrUnreachable) {
			t.Fatalf("first sync: %v, want ErrUnreachable (stats %+v)", err, st)
		}
		return st
	}
	// restart serves the server's directory again on addr and checks that
	// a second sync converges.
	restart := func(t *testing.T, client *goatdb.DB, dir, addr string) goatdb.SyncStats {
		t.Helper()
		sdb := dbtest.OpenDBIn(t, dir, nil)
		srv := serve(t, sdb, fx.options(), addr)
		if srv.addr != addr {
			t.Fatalf("restarted on %s, want %s", srv.addr, addr)
		}
		st := mustSync(t, client, srv.url)
		if st.Converged != len(restartRepos) {
			t.Errorf("second sync: %d repositories converged, want %d (%+v)", st.Converged, len(restartRepos), st)
		}
		if n := countItems(t, client); n != fx.total() {
			t.Errorf("client holds %d items, want %d", n, fx.total())
		}
		sameValues(t, client, sdb)
		dbtest.CheckDB(t, sdb)
		return st
	}

	t.Run("graceful stop between rounds", func(t *testing.T) {
		client, sdb, sdir := fx.open(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl := &closeListener{Listener: ln, closed: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The second sync request starts the shutdown and waits until the
		// listener is closed: it is answered, and the third finds no
		// server.
		var seen atomic.Int32
		opts := fx.options()
		opts.ClientKey = func(r *http.Request) string {
			if r.URL.Path == "/v1/sync" && seen.Add(1) == 2 {
				cancel()
				select {
				case <-cl.closed:
				case <-time.After(10 * time.Second):
				}
			}
			return "client"
		}
		srv, err := server.New(sdb, opts)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, cl) }()

		st := firstSync(t, client, "http://"+ln.Addr().String())
		if st.Rounds != 3 {
			t.Errorf("first sync failed in round %d, want 3 (the first after the shutdown)", st.Rounds)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after a graceful stop: %v", err)
		}
		srv.Close()
		if err := sdb.Close(); err != nil {
			t.Fatal(err)
		}
		restart(t, client, sdir, ln.Addr().String())
	})

	t.Run("connection cut before a round is read", func(t *testing.T) {
		client, sdb, sdir := fx.open(t)
		var seen atomic.Int32
		cs := serveCut(t, sdb, fx.options(), hijackAt(2, &seen))
		if st := firstSync(t, client, cs.url); st.Rounds != 2 {
			t.Errorf("first sync failed in round %d, want 2", st.Rounds)
		}
		cs.stop()
		if err := sdb.Close(); err != nil {
			t.Fatal(err)
		}
		restart(t, client, sdir, cs.addr)
	})

	t.Run("answer lost after a push is stored", func(t *testing.T) {
		client, sdb, sdir := fx.open(t)
		lost := &lostAnswer{}
		cs := serveCut(t, sdb, fx.options(), lost.wrap)
		if st := firstSync(t, client, cs.url); st.Rounds < 2 {
			t.Errorf("first sync failed in round %d, want a later one", st.Rounds)
		}
		cs.stop()
		lost.stored(t, sdb)
		if err := sdb.Close(); err != nil {
			t.Fatal(err)
		}
		restart(t, client, sdir, cs.addr)
	})

	t.Run("background syncer", func(t *testing.T) {
		client, sdb, _ := fx.open(t)
		lost := &lostAnswer{}
		cs := serveCut(t, sdb, fx.options(), lost.wrap)
		s, err := client.StartSync([]string{cs.url}, &goatdb.SyncOptions{
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		eventually(t, 20*time.Second, "the syncer converges after the cut", func() bool {
			st := s.Status()[0]
			return lost.done() && st.Syncs > 0 && st.LastError == nil &&
				countItems(t, sdb) == fx.total() && countItems(t, client) == fx.total()
		})
		if st := s.Status()[0]; st.Failures == 0 {
			t.Errorf("the cut left no failure in the status: %+v", st)
		}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		lost.stored(t, sdb)
		sameValues(t, client, sdb)
		dbtest.CheckDB(t, sdb)
	})
}
