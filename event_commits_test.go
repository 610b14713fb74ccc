package goatdb_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/transport"
)

// eventTap is an HTTP transport for one database's Syncer: it counts the
// sync requests the database sends and keeps a copy of every event block
// its event streams read, leaving out those drop picks.
type eventTap struct {
	syncs atomic.Int64

	mu     sync.Mutex // guards blocks and drop
	blocks []string
	drop   func(block string) bool
}

func (tp *eventTap) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/v1/sync" {
		tp.syncs.Add(1)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.URL.Path != "/v1/events" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	pr, pw := io.Pipe()
	body := resp.Body
	go func() {
		defer body.Close()
		br := bufio.NewReader(body)
		var block strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			block.WriteString(line)
			if line != "\n" {
				continue
			}
			b := block.String()
			block.Reset()
			if tp.record(b) {
				continue
			}
			if _, err := io.WriteString(pw, b); err != nil {
				return
			}
		}
	}()
	resp.Body = tapBody{pr, body}
	return resp, nil
}

type tapBody struct {
	*io.PipeReader
	orig io.Closer
}

func (b tapBody) Close() error { return errors.Join(b.PipeReader.Close(), b.orig.Close()) }

// record keeps a block and reports whether to drop it.
func (tp *eventTap) record(b string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.blocks = append(tp.blocks, b)
	return tp.drop != nil && tp.drop(b)
}

// events returns the changed events read so far, decoded.
func (tp *eventTap) events(t *testing.T) []transport.Event {
	t.Helper()
	tp.mu.Lock()
	text := strings.Join(tp.blocks, "")
	tp.mu.Unlock()
	er := transport.NewEventReader(strings.NewReader(text))
	var out []transport.Event
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read the events copied: %v", err)
		}
		if ev.Type == transport.EventChanged {
			out = append(out, ev)
		}
	}
}

// withCommits returns the events of evs that carry commits.
func withCommits(evs []transport.Event) []transport.Event {
	var out []transport.Event
	for _, ev := range evs {
		if len(ev.Commits) > 0 {
			out = append(out, ev)
		}
	}
	return out
}

// quiet waits until tp's database has sent no sync request for a while.
func (tp *eventTap) quiet(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	n := tp.syncs.Load()
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		m := tp.syncs.Load()
		if m == n {
			return n
		}
		n = m
	}
	t.Fatal("the database kept syncing")
	return 0
}

// eventServer serves a new database with opts (RateLimit off).
func eventServer(t *testing.T, opts server.Options) (*server.Server, string) {
	t.Helper()
	db := dbtest.OpenDB(t, nil)
	opts.RateLimit = -1
	srv, err := server.New(db, &opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return srv, hs.URL
}

// follower starts a Syncer on db for repos through a new tap.
func follower(t *testing.T, db *goatdb.DB, url string, repos ...string) *eventTap {
	t.Helper()
	tp := &eventTap{}
	s, err := db.StartSync([]string{url}, &goatdb.SyncOptions{Repos: repos, Client: &http.Client{Transport: tp},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return tp
}

// arrives waits until db reads want in field v of item path.
func arrives(t *testing.T, db *goatdb.DB, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for field(t, db, path, "v") != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never read v=%q (it reads %q)", path, want, field(t, db, path, "v"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func put(t *testing.T, db *goatdb.DB, path string, f goatdb.Fields) commit.ID {
	t.Helper()
	id, err := db.Put(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestEventCommitsArriveWithoutSync: a write reaches a receiver through
// the event alone, with no sync request, and the receiver's next write
// still syncs from its resume point.
func TestEventCommitsArriveWithoutSync(t *testing.T) {
	_, url := eventServer(t, server.Options{})
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	put(t, a, "/data/x/k", goatdb.Fields{"v": "0"})
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	arrives(t, b, "/data/x/k", "0")
	for i := range 5 {
		before := tb.quiet(t)
		want := string(rune('1' + i))
		put(t, a, "/data/x/k", goatdb.Fields{"v": want})
		arrives(t, b, "/data/x/k", want)
		if after := tb.quiet(t); after != before {
			t.Fatalf("write %d: the receiver sent %d sync requests", i, after-before)
		}
	}
	if n := len(withCommits(tb.events(t))); n < 5 {
		t.Errorf("%d events with commits, want 5", n)
	}
	// b's own write goes out, and comes back to a.
	put(t, b, "/data/x/k", goatdb.Fields{"v": "b"})
	arrives(t, a, "/data/x/k", "b")
}

// TestEventCommitsGap: a receiver that missed an event with commits
// syncs at the next one (its resume point is not where that one starts),
// and gets both writes.
func TestEventCommitsGap(t *testing.T) {
	_, url := eventServer(t, server.Options{})
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	put(t, a, "/data/x/k", goatdb.Fields{"v": "0"})
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	arrives(t, b, "/data/x/k", "0")
	before := tb.quiet(t)
	var dropped atomic.Bool
	tb.mu.Lock()
	tb.drop = func(block string) bool {
		return strings.Contains(block, "\nfrom: ") && dropped.CompareAndSwap(false, true)
	}
	tb.mu.Unlock()
	put(t, a, "/data/x/j", goatdb.Fields{"v": "lost"})
	deadline := time.Now().Add(10 * time.Second)
	for !dropped.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !dropped.Load() {
		t.Fatal("no event with commits to drop")
	}
	if field(t, b, "/data/x/j", "v") != "" {
		t.Fatal("the dropped write arrived")
	}
	put(t, a, "/data/x/k", goatdb.Fields{"v": "1"})
	arrives(t, b, "/data/x/k", "1")
	arrives(t, b, "/data/x/j", "lost")
	if after := tb.quiet(t); after == before {
		t.Error("the receiver never synced after the gap")
	}
}

// TestEventCommitsOversized: a change whose commits exceed the event bound
// goes as a bare notice, and the receiver syncs for it.
func TestEventCommitsOversized(t *testing.T) {
	_, url := eventServer(t, server.Options{EventCommitBytes: 1024})
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	put(t, a, "/data/x/k", goatdb.Fields{"v": "0"})
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	arrives(t, b, "/data/x/k", "0")
	before := tb.quiet(t)
	big := strings.Repeat("z", 4096)
	put(t, a, "/data/x/k", goatdb.Fields{"v": big})
	arrives(t, b, "/data/x/k", big)
	if after := tb.quiet(t); after == before {
		t.Error("the receiver got an oversized write without syncing")
	}
	for _, ev := range withCommits(tb.events(t)) {
		for _, c := range ev.Commits {
			if len(c) > 1024 {
				t.Errorf("an event carried a commit of %d bytes", len(c))
			}
		}
	}
	// A small write still travels in its event.
	before = tb.quiet(t)
	put(t, a, "/data/x/k", goatdb.Fields{"v": "small"})
	arrives(t, b, "/data/x/k", "small")
	if after := tb.quiet(t); after != before {
		t.Errorf("the receiver synced %d times for a small write", after-before)
	}
}

// TestEventCommitsOff: with EventCommitBytes negative, events are bare
// notices and receivers sync, as before commits in events.
func TestEventCommitsOff(t *testing.T) {
	_, url := eventServer(t, server.Options{EventCommitBytes: -1})
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	put(t, a, "/data/x/k", goatdb.Fields{"v": "1"})
	arrives(t, b, "/data/x/k", "1")
	if evs := withCommits(tb.events(t)); len(evs) > 0 {
		t.Errorf("%d events with commits", len(evs))
	}
}

// TestEventCommitsBudget: the commit bytes one stream carries stay within
// EventCommitRate per second (plus one second's worth held), and the
// receiver still gets every write, by syncing.
func TestEventCommitsBudget(t *testing.T) {
	const rate = 2000
	_, url := eventServer(t, server.Options{EventCommitRate: rate})
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	began := time.Now()
	const writes = 60
	for i := range writes {
		put(t, a, "/data/x/k", goatdb.Fields{"v": strings.Repeat("w", 200) + string(rune('a'+i%26))})
		time.Sleep(5 * time.Millisecond)
	}
	last := strings.Repeat("w", 200) + "last"
	put(t, a, "/data/x/k", goatdb.Fields{"v": last})
	arrives(t, b, "/data/x/k", last)
	elapsed := time.Since(began).Seconds()
	total := 0
	evs := withCommits(tb.events(t))
	for _, ev := range evs {
		for _, c := range ev.Commits {
			total += len(c)
		}
	}
	if limit := rate * (elapsed + 1); float64(total) > limit {
		t.Errorf("%d commit bytes in events over %.1fs, over the budget's %.0f", total, elapsed, limit)
	}
	if len(evs) == 0 {
		t.Error("no event carried commits")
	}
	t.Logf("%d events with %d commit bytes over %.2fs", len(evs), total, elapsed)
}

// noteRules let a user read the notes it owns and the public ones, and
// write its own.
func noteRules(t *testing.T) *authz.Rules {
	t.Helper()
	str := func(it item.Item, f string) string {
		if v, ok := it.Get(f); ok && v.Type() == item.TypeString {
			return v.Str()
		}
		return ""
	}
	var rb authz.Builder
	rb.Handle("/data/notes/{id}", authz.Rule{
		Scope: authz.ByItem,
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, it item.Item) bool {
			return str(it, "owner") == p.User || str(it, "public") == "yes"
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, _, after item.Item) error {
			if str(after, "owner") != p.User {
				return errors.New("a note's owner is its writer")
			}
			return nil
		},
	})
	r, err := rb.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// keysIn returns the item keys of the commits events carry.
func keysIn(t *testing.T, evs []transport.Event) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ev := range evs {
		for _, b := range ev.Commits {
			c, err := commit.Decode(b)
			if err != nil {
				t.Fatalf("an event carried a commit that does not decode: %v", err)
			}
			out[c.Key()]++
		}
	}
	return out
}

// TestEventCommitsAuthorized: a session gets in events the commits of
// the items it may read, and never those of an item it may not.
func TestEventCommitsAuthorized(t *testing.T) {
	id, _, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	srv, url := eventServer(t, server.Options{Auth: &server.AuthOptions{Identity: id, Rules: noteRules(t)}})
	s := &rulesServer{srv: srv, url: url}
	alice, bob := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	s.login(t, alice, "alice")
	put(t, alice, "/data/notes/pub", goatdb.Fields{"owner": "alice", "public": "yes", "v": "0"})
	put(t, alice, "/data/notes/secret", goatdb.Fields{"owner": "alice", "v": "0"})
	follower(t, alice, url, "/data/notes")
	// The Syncer first, so that bob's requests to the server go through
	// the tap (a database keeps one client per server).
	tb := follower(t, bob, url, "/data/notes")
	s.login(t, bob, "bob")
	arrives(t, bob, "/data/notes/pub", "0")
	for i := range 3 {
		before := tb.quiet(t)
		want := string(rune('1' + i))
		put(t, alice, "/data/notes/secret", goatdb.Fields{"v": want})
		put(t, alice, "/data/notes/pub", goatdb.Fields{"v": want})
		arrives(t, bob, "/data/notes/pub", want)
		if after := tb.quiet(t); after != before {
			t.Errorf("write %d: bob sent %d sync requests", i, after-before)
		}
	}
	keys := keysIn(t, withCommits(tb.events(t)))
	if keys["secret"] > 0 || keys["pub"] == 0 {
		t.Errorf("bob's events carried commits of %v; want pub's only", keys)
	}
	if v := field(t, bob, "/data/notes/secret", "v"); v != "" {
		t.Errorf("bob reads the secret note: %q", v)
	}
}

// TestEventCommitsPurged: once an item is purged, its commits never
// travel in events, nor commits built on them by a peer that still holds
// them; the item's new history, written after the purge, does.
func TestEventCommitsPurged(t *testing.T) {
	srv, url := eventServer(t, server.Options{})
	a, b, c := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	put(t, a, "/data/x/gone", goatdb.Fields{"v": "0"})
	put(t, a, "/data/x/gone", goatdb.Fields{"v": "1"})
	put(t, a, "/data/x/k", goatdb.Fields{"v": "0"})
	syncOK(t, a, url)
	syncOK(t, c, url, "/data/x")
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	arrives(t, b, "/data/x/gone", "1")
	r, err := a.LookupRepo("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	purged := map[commit.ID]bool{}
	all, _ := r.CommitsSince(0)
	for _, cm := range all {
		if cm.Key() == "gone" {
			purged[cm.ID()] = true
		}
	}
	if _, err := srv.Purge("/data/x/gone", "erasure request"); err != nil {
		t.Fatal(err)
	}
	tb.quiet(t)
	tb.mu.Lock()
	tb.blocks = nil // from here on
	tb.mu.Unlock()
	// c still holds the purged history and builds on it: refused.
	evil := put(t, c, "/data/x/gone", goatdb.Fields{"v": "evil"})
	if _, err := c.Sync(context.Background(), url, "/data/x"); err == nil {
		t.Error("the server took a write on purged history")
	}
	for i := range 3 {
		want := string(rune('2' + i))
		put(t, a, "/data/x/gone", goatdb.Fields{"v": want})
		put(t, a, "/data/x/k", goatdb.Fields{"v": want})
		arrives(t, b, "/data/x/k", want)
	}
	tb.quiet(t)
	evs := withCommits(tb.events(t))
	var gone int
	for _, ev := range evs {
		for _, enc := range ev.Commits {
			cm, err := commit.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if cm.Key() == "gone" {
				gone++
			}
			if purged[cm.ID()] || cm.ID() == evil || hasParentIn(cm, purged) {
				t.Errorf("an event carried %s, purged or built on purged history", cm.ID().Short())
			}
		}
	}
	if keys := keysIn(t, evs); keys["k"] == 0 {
		t.Error("no event carried k's commits")
	}
	t.Logf("%d commits of the item's new history travelled in events", gone)
}

// hasParentIn reports whether a parent of c is in ids.
func hasParentIn(c *commit.Commit, ids map[commit.ID]bool) bool {
	for _, p := range c.Parents() {
		if ids[p] {
			return true
		}
	}
	return false
}

// TestEventCommitsRefusedFallBack: commits in an event the receiver
// refuses (here: its clock is far behind, so they are from its future)
// are not stored from the event; the receiver syncs, as for a bare
// notice, and settles them as a sync does.
func TestEventCommitsRefusedFallBack(t *testing.T) {
	_, url := eventServer(t, server.Options{})
	a := dbtest.OpenDB(t, nil)
	b := dbtest.OpenDB(t, &goatdb.Options{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	follower(t, a, url, "/data/x")
	tb := follower(t, b, url, "/data/x")
	before := tb.quiet(t)
	put(t, a, "/data/x/k", goatdb.Fields{"v": "1"})
	deadline := time.Now().Add(10 * time.Second)
	for len(withCommits(tb.events(t))) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := tb.quiet(t); after == before {
		t.Error("the receiver did not sync after refusing an event's commits")
	}
	if v := field(t, b, "/data/x/k", "v"); v != "" {
		t.Errorf("a commit from the future was stored: %q", v)
	}
}
