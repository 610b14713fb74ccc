package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// sseEvent is one Server-Sent Event, or a comment.
type sseEvent struct {
	Name, Data, Retry string
	Comment           string // a comment line (":" stripped), if the event was only that
	At                time.Time
}

// sseStream reads an event stream in the background.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{} // closed when the reader returns
	err    error         // why the reader returned; valid after done
}

// openStream opens GET /v1/events with query (e.g. "?repo=/a/b") and
// fails unless it is answered 200 with an event stream.
func openStream(t testing.TB, url, query string) *sseStream {
	t.Helper()
	s, code, body := tryStream(t, url, query)
	if s == nil {
		t.Fatalf("GET /v1/events%s: %d %q", query, code, body)
	}
	return s
}

// tryStream opens an event stream; on a status other than 200 it returns
// nil, the status and the body.
func tryStream(t testing.TB, url, query string) (*sseStream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("event stream with Content-Type %q", ct)
	}
	s := &sseStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 4096), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s, resp.StatusCode, ""
}

// read parses the stream: fields up to a blank line make an event.
func (s *sseStream) read() {
	defer close(s.done)
	defer close(s.events)
	br := bufio.NewReader(s.resp.Body)
	var ev sseEvent
	empty := true
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.err = err
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if !empty {
				ev.At = time.Now()
				s.events <- ev
			}
			ev, empty = sseEvent{}, true
			continue
		}
		empty = false
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comment = value
		case "event":
			ev.Name = value
		case "data":
			ev.Data = value
		case "retry":
			ev.Retry = value
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// next returns the next event that is not a comment, failing the test
// if none comes within d.
func (s *sseStream) next(t testing.TB, d time.Duration) sseEvent {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream ended: %v", s.err)
			}
			if ev.Comment != "" && ev.Name == "" && ev.Data == "" {
				continue
			}
			return ev
		case <-timeout:
			t.Fatalf("no event within %v", d)
		}
	}
}

// changedNotice returns the notice of a "changed" event.
func changedNotice(t testing.TB, ev sseEvent) syncproto.Notice {
	t.Helper()
	if ev.Name != "changed" {
		t.Fatalf("event %+v, want a changed event", ev)
	}
	n, err := syncproto.DecodeNotice([]byte(ev.Data))
	if err != nil {
		t.Fatalf("changed event data %q: %v", ev.Data, err)
	}
	return n
}

// positionOf returns a repository's notice as the server should send it.
func positionOf(t testing.TB, db *goatdb.DB, path string) syncproto.Notice {
	t.Helper()
	r, err := db.Repo(path)
	if err != nil {
		t.Fatal(err)
	}
	return syncproto.Notice{Repo: path, Epoch: r.Epoch(), Seq: r.Seq()}
}

// readOpening reads the stream's opening: retry, one changed event per
// repository of want in order, then ready. It returns the notices.
func readOpening(t testing.TB, s *sseStream, want []string) []syncproto.Notice {
	t.Helper()
	first := s.next(t, 5*time.Second)
	if n, err := strconv.Atoi(first.Retry); err != nil || n <= 0 || first.Name != "" {
		t.Fatalf("first event %+v, want a retry interval", first)
	}
	var out []syncproto.Notice
	for _, p := range want {
		n := changedNotice(t, s.next(t, 5*time.Second))
		if n.Repo != p {
			t.Fatalf("opening lists %s, want %s (all: %v)", n.Repo, p, want)
		}
		out = append(out, n)
	}
	if ev := s.next(t, 5*time.Second); ev.Name != "ready" {
		t.Fatalf("after %d changed events: %+v, want ready", len(want), ev)
	}
	return out
}

// TestEventsOpening: a stream starts with retry, the position of every
// repository sorted by path, then ready.
func TestEventsOpening(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/notes/x/n", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/data/b/i", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/data/a/j", goatdb.Fields{"v": 1.0})
	srv := serve(t, srvDB, nil, "")
	paths := []string{"/data/a", "/data/b", "/notes/x"}
	s := openStream(t, srv.url, "")
	for i, n := range readOpening(t, s, paths) {
		if want := positionOf(t, srvDB, paths[i]); n != want {
			t.Errorf("opening notice %+v, want %+v", n, want)
		}
	}
	if cc := s.resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}

	// An empty server sends retry and ready.
	empty := serve(t, dbtest.OpenDB(t, nil), nil, "")
	readOpening(t, openStream(t, empty.url, ""), nil)
}

// follow reads changed events until each repository of want is at its
// position there, and returns how many events it read. A notice carries
// the position when it is sent, which may already include a later change,
// so a position may repeat; it never goes back, nor past db's.
func follow(t testing.TB, s *sseStream, db *goatdb.DB, want ...syncproto.Notice) int {
	t.Helper()
	target := map[string]syncproto.Notice{}
	for _, w := range want {
		target[w.Repo] = w
	}
	seen := map[string]syncproto.Notice{}
	events := 0
	for reached := 0; reached < len(want); {
		n := changedNotice(t, s.next(t, 5*time.Second))
		events++
		now := positionOf(t, db, n.Repo)
		if prev, ok := seen[n.Repo]; n.Epoch != now.Epoch || n.Seq > now.Seq || ok && n.Seq < prev.Seq {
			t.Fatalf("notice %+v after %+v, with the server at %+v", n, seen[n.Repo], now)
		}
		seen[n.Repo] = n
		if w, ok := target[n.Repo]; ok && n == w {
			delete(target, n.Repo)
			reached++
		}
	}
	return events
}

// TestEventsOnChange: writes on the server and syncs from clients each
// produce a changed event up to the new position; a new repository is
// announced; a burst of writes ends with an event at the final position.
func TestEventsOnChange(t *testing.T) {
	srvDB := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 0.0})
	srv := serve(t, srvDB, nil, "")
	s := openStream(t, srv.url, "")
	first := readOpening(t, s, []string{"/data/a"})[0]

	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 1.0})
	afterWrite := positionOf(t, srvDB, "/data/a")
	if afterWrite.Seq <= first.Seq {
		t.Fatalf("test setup: position %+v after a write, from %+v", afterWrite, first)
	}
	follow(t, s, srvDB, afterWrite)

	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/a/c", goatdb.Fields{"v": "client"})
	mustSync(t, cli, srv.url, "/data/a")
	afterSync := positionOf(t, srvDB, "/data/a")
	if afterSync.Seq <= afterWrite.Seq {
		t.Fatalf("test setup: position %+v after a client's sync, from %+v", afterSync, afterWrite)
	}
	follow(t, s, srvDB, afterSync)

	// A new repository is announced.
	mustPut(t, cli, "/data/new/c", goatdb.Fields{"v": "client"})
	mustSync(t, cli, srv.url, "/data/new")
	follow(t, s, srvDB, positionOf(t, srvDB, "/data/new"))

	// A burst.
	const burst = 100
	for i := range burst {
		mustPut(t, srvDB, fmt.Sprintf("/data/a/b%d", i%10), goatdb.Fields{"n": float64(i)})
	}
	events := follow(t, s, srvDB, positionOf(t, srvDB, "/data/a"))
	t.Logf("%d writes, %d events", burst, events)
}

// valve blocks writes while shut.
type valve struct {
	mu      sync.Mutex    // guards shut and blocked
	shut    chan struct{} // nil while open; closed by open
	blocked chan struct{} // closed when a write first waits after shut
}

func (v *valve) close() {
	v.mu.Lock()
	v.shut, v.blocked = make(chan struct{}), make(chan struct{})
	v.mu.Unlock()
}

func (v *valve) open() {
	v.mu.Lock()
	close(v.shut)
	v.shut = nil
	v.mu.Unlock()
}

func (v *valve) wait() {
	v.mu.Lock()
	shut, blocked := v.shut, v.blocked
	if shut != nil {
		select {
		case <-blocked:
		default:
			close(blocked)
		}
	}
	v.mu.Unlock()
	if shut != nil {
		<-shut
	}
}

// valveWriter is a ResponseWriter whose writes pass through a valve.
type valveWriter struct {
	http.ResponseWriter
	v *valve
}

func (w *valveWriter) Write(b []byte) (int, error) {
	w.v.wait()
	return w.ResponseWriter.Write(b)
}

func (w *valveWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func (w *valveWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestEventsCoalesce: changes made while a stream is busy writing are sent
// as one event per repository, at its latest position.
func TestEventsCoalesce(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 0.0})
	mustPut(t, srvDB, "/data/b/i", goatdb.Fields{"v": 0.0})
	srv := serve(t, srvDB, nil, "")
	v := &valve{}
	real := srv.srv.Handler()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		real.ServeHTTP(&valveWriter{ResponseWriter: w, v: v}, r)
	}))
	t.Cleanup(slow.Close) // after the stream closes
	s := openStream(t, slow.URL, "")
	readOpening(t, s, []string{"/data/a", "/data/b"})

	// The first change's event blocks the stream; the others pile up.
	v.close()
	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 1.0})
	select {
	case <-v.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not write the first change")
	}
	const burst = 100
	for i := range burst {
		mustPut(t, srvDB, fmt.Sprintf("/data/%c/k%d", 'a'+i%2, i%10), goatdb.Fields{"n": float64(i)})
	}
	final := map[string]syncproto.Notice{"/data/a": positionOf(t, srvDB, "/data/a"), "/data/b": positionOf(t, srvDB, "/data/b")}
	v.open()

	// The blocked event, then one per repository (each may repeat once,
	// if its watcher published after the stream read its position).
	events := follow(t, s, srvDB, final["/data/a"], final["/data/b"])
	// Nothing else was queued: the next change comes right after.
	mustPut(t, srvDB, "/data/b/i", goatdb.Fields{"v": 2.0})
	events += follow(t, s, srvDB, positionOf(t, srvDB, "/data/b"))
	if events > 6 {
		t.Errorf("%d writes while the stream was blocked, then one more, gave %d events; want at most 6", burst+2, events)
	}
}

// TestEventsRepoFilter: ?repo= limits a stream to the repositories named;
// a bad one is refused.
func TestEventsRepoFilter(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/a/b/i", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/c/d/i", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/e/f/i", goatdb.Fields{"v": 1.0})
	srv := serve(t, srvDB, nil, "")

	s := openStream(t, srv.url, "?repo=/a/b")
	readOpening(t, s, []string{"/a/b"})
	mustPut(t, srvDB, "/c/d/i", goatdb.Fields{"v": 2.0}) // not followed: no event
	mustPut(t, srvDB, "/a/b/i", goatdb.Fields{"v": 2.0})
	if n := changedNotice(t, s.next(t, 5*time.Second)); n != positionOf(t, srvDB, "/a/b") {
		t.Errorf("filtered stream: %+v, want %+v", n, positionOf(t, srvDB, "/a/b"))
	}

	two := openStream(t, srv.url, "?repo=/e/f&repo=/a/b&repo=/x/unknown")
	readOpening(t, two, []string{"/a/b", "/e/f"})

	for _, q := range []string{"?repo=bad", "?repo=/a", "?repo=/a/b/c", "?repo=/a/b&repo=", "?repo=/a/..", "?repo=/a/b%00"} {
		s, code, body := tryStream(t, srv.url, q)
		if s != nil || code != http.StatusBadRequest {
			t.Errorf("GET /v1/events%s: %d %q, want 400", q, code, body)
			continue
		}
		if line, ok := strings.CutSuffix(body, "\n"); !ok || line == "" || strings.Contains(line, "\n") {
			t.Errorf("GET /v1/events%s: body %q is not one line", q, body)
		}
	}
}

// TestEventsKeepAlive: comments arrive every KeepAlive on a quiet stream.
func TestEventsKeepAlive(t *testing.T) {
	const every = 50 * time.Millisecond
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{KeepAlive: every}, "")
	s := openStream(t, srv.url, "")
	readOpening(t, s, nil)
	began := time.Now()
	var comments int
	timeout := time.After(10 * time.Second)
	for comments < 4 {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended: %v", s.err)
			}
			if ev.Name != "" || ev.Data != "" || ev.Comment == "" {
				t.Fatalf("on a quiet stream: %+v, want keep-alive comments only", ev)
			}
			comments++
		case <-timeout:
			t.Fatalf("%d keep-alive comments in 10s with KeepAlive %v", comments, every)
		}
	}
	// A ticker never fires early: four comments span at least three
	// intervals after the first.
	if d := time.Since(began); d < 3*every {
		t.Errorf("4 keep-alive comments within %v, faster than every %v", d, every)
	}
}

// TestEventsMaxStreams: past MaxEventStreams a stream gets 503 with
// Retry-After; once one closes, the gauge falls and a new one is accepted.
func TestEventsMaxStreams(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MaxEventStreams: 1, RateLimit: -1}, "")
	first := openStream(t, srv.url, "")
	readOpening(t, first, nil)
	if g := scrape(t, srv.url).get("goatdb_event_streams"); g != 1 {
		t.Errorf("goatdb_event_streams = %v with one stream open", g)
	}
	s, code, body := tryStream(t, srv.url, "")
	if s != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("second stream: %d %q, want 503", code, body)
	}
	resp, err := http.Get(srv.url + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusServiceUnavailable || err != nil || ra < 1 {
		t.Errorf("second stream: %d with Retry-After %q, want 503 with seconds ≥ 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if line, ok := strings.CutSuffix(body, "\n"); !ok || line == "" {
		t.Errorf("503 body %q", body)
	}

	first.close()
	eventually(t, 5*time.Second, "goatdb_event_streams back to 0", func() bool {
		return scrape(t, srv.url).get("goatdb_event_streams") == 0
	})
	var again *sseStream
	eventually(t, 5*time.Second, "a new stream accepted", func() bool {
		again, _, _ = tryStream(t, srv.url, "")
		return again != nil
	})
	readOpening(t, again, nil)
	if g := scrape(t, srv.url).get("goatdb_event_streams"); g != 1 {
		t.Errorf("goatdb_event_streams = %v with one stream open again", g)
	}
}

// TestEventsEndOnShutdown: stopping the server ends open streams instead
// of waiting for them.
func TestEventsEndOnShutdown(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/a/i", goatdb.Fields{"v": 1.0})
	srv := serve(t, srvDB, nil, "")
	var streams []*sseStream
	for range 3 {
		s := openStream(t, srv.url, "")
		readOpening(t, s, []string{"/data/a"})
		streams = append(streams, s)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(8 * time.Second): // ShutdownTimeout is 10s
		t.Fatal("Serve did not return with event streams open")
	}
	for i, s := range streams {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %d still open after Serve returned", i)
		}
	}
}

// TestEventsReconnectAfterSilence: a client whose event stream goes silent
// (as after a laptop slept) reconnects after IdleTimeout and then hears of
// changes made by others.
func TestEventsReconnectAfterSilence(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/live/seed", goatdb.Fields{"v": "seed"})
	srv := serve(t, srvDB, nil, "")

	var silenced, streams atomic.Int32
	real := srv.srv.Handler()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			streams.Add(1)
			if silenced.CompareAndSwap(0, 1) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				<-r.Context().Done()
				return
			}
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close) // after the client stops

	c := dbtest.OpenDB(t, nil)
	sc, err := c.StartSync([]string{proxy.URL}, &goatdb.SyncOptions{
		IdleTimeout: 300 * time.Millisecond, Interval: time.Hour, Repos: []string{"/data/live"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Stop()
	eventually(t, 5*time.Second, "the first sync", func() bool {
		_, err := c.Get("/data/live/seed")
		return err == nil && sc.Status()[0].Syncs >= 1
	})

	other := dbtest.OpenDB(t, nil)
	mustPut(t, other, "/data/live/x", goatdb.Fields{"v": "from another client"})
	mustSync(t, other, srv.url, "/data/live")
	eventually(t, 10*time.Second, "the other client's write reaches the client", func() bool {
		it, err := c.Get("/data/live/x")
		return err == nil && it.Get("v") == "from another client"
	})
	st := sc.Status()[0]
	if st.Failures < 1 {
		t.Errorf("status %+v: want the silent stream counted as a failure", st)
	}
	if silenced.Load() != 1 || streams.Load() < 2 {
		t.Errorf("%d event streams opened (first silenced: %v), want a reconnect", streams.Load(), silenced.Load() == 1)
	}
	eventually(t, 5*time.Second, "listening again", func() bool { return sc.Status()[0].Listening })
}
