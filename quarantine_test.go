package goatdb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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
	"github.com/goatdb/goatdb/syncproto"
)

// rulesServer is a server with authentication and rules on a loopback
// httptest server.
type rulesServer struct {
	db  *goatdb.DB
	srv *server.Server
	url string
}

func newRulesServer(t *testing.T, rules *authz.Rules) *rulesServer {
	t.Helper()
	id, _, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.OpenDB(t, nil)
	srv, err := server.New(db, &server.Options{RateLimit: -1, Auth: &server.AuthOptions{Identity: id, Rules: rules}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &rulesServer{db: db, srv: srv, url: hs.URL}
}

// login makes user (again, with a new code) and logs db in as it.
func (s *rulesServer) login(t *testing.T, db *goatdb.DB, user string) {
	t.Helper()
	code, _, err := s.srv.Accounts().AddUser(user, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LoginCode(context.Background(), s.url, user, code); err != nil {
		t.Fatal(err)
	}
}

// field returns an item's field as a string ("" if the item cannot be
// read).
func field(t *testing.T, db *goatdb.DB, path, name string) string {
	t.Helper()
	it, err := db.Get(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(it.Get(name))
}

// refusedTask sets up alice's task t1 on a server with taskRules, and bob,
// logged in, holding it and two offline writes to it the rules refuse.
func refusedTask(t *testing.T) (s *rulesServer, bob *goatdb.DB, bobDir string, writes []commit.ID) {
	t.Helper()
	s = newRulesServer(t, dbtest.OwnerRules(t))
	alice := dbtest.OpenDB(t, nil)
	s.login(t, alice, "alice")
	if _, err := alice.Put("/data/tasks/t1", goatdb.Fields{"owner": "alice", "title": "a"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, alice, s.url)
	bobDir = t.TempDir()
	bob = dbtest.OpenDBIn(t, bobDir, nil)
	s.login(t, bob, "bob")
	syncOK(t, bob, s.url, "/data/tasks")
	for _, f := range []goatdb.Fields{{"title": "mine"}, {"done": true}} {
		id, err := bob.Put("/data/tasks/t1", f)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, id)
	}
	return s, bob, bobDir, writes
}

// TestRejectedOfflineWriteQuarantinedNotDropped: writes made offline that
// the server's rule refuses are kept, listed with the rule's reason and
// the server, out of the item's value; the sync still reports
// ErrRejected, and the next one converges without sending them again,
// also after the database is reopened.
func TestRejectedOfflineWriteQuarantinedNotDropped(t *testing.T) {
	s, bob, bobDir, writes := refusedTask(t)
	st, err := bob.Sync(context.Background(), s.url, "/data/tasks")
	if !errors.Is(err, goatdb.ErrRejected) || !strings.Contains(err.Error(), "only alice may change this task") {
		t.Fatalf("sync: %v, want ErrRejected with the rule's reason", err)
	}
	if len(st.Rejected) == 0 || st.Rejected[0].ID != writes[0] {
		t.Fatalf("stats list %v, want %s first", st.Rejected, writes[0].Short())
	}
	check := func(when string) {
		t.Helper()
		rej, err := bob.Rejected("/data/tasks")
		if err != nil {
			t.Fatal(err)
		}
		if len(rej) != 2 {
			t.Fatalf("%s: rejected %+v, want both writes", when, rej)
		}
		for i, w := range rej {
			if w.Path != "/data/tasks/t1" || w.Commit != writes[i] || w.Cause != writes[0] || w.Server != s.url ||
				!strings.Contains(w.Reason, "only alice may change this task") || w.At.IsZero() {
				t.Fatalf("%s: rejected write %d: %+v", when, i, w)
			}
		}
		if all, err := bob.Rejected(""); err != nil || len(all) != 2 {
			t.Fatalf("%s: Rejected(\"\"): %v, %v", when, all, err)
		}
		if got := field(t, bob, "/data/tasks/t1", "title"); got != "a" {
			t.Fatalf("%s: bob's t1 title %q, want alice's %q", when, got, "a")
		}
		if got := field(t, bob, "/data/tasks/t1", "done"); got != "<nil>" {
			t.Fatalf("%s: bob's t1 done %q, want unset", when, got)
		}
		st := syncOK(t, bob, s.url, "/data/tasks")
		if st.CommitsSent != 0 || len(st.Rejected) != 0 || st.Converged != 1 {
			t.Fatalf("%s: sync %+v, want agreement without sending anything", when, st)
		}
	}
	check("after the sync")
	if got := field(t, s.db, "/data/tasks/t1", "title"); got != "a" {
		t.Fatalf("server's t1 title %q", got)
	}
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	bob = dbtest.OpenDBIn(t, bobDir, nil)
	check("after reopening")
}

// TestDiscardRejected: Discard drops quarantined writes for good (they
// are not listed, not in the value, not sent, after a reopen too); ids
// that are not rejected writes of the path are refused and change nothing.
func TestDiscardRejected(t *testing.T) {
	s, bob, bobDir, writes := refusedTask(t)
	if _, err := bob.Sync(context.Background(), s.url, "/data/tasks"); !errors.Is(err, goatdb.ErrRejected) {
		t.Fatalf("sync: %v", err)
	}
	alien := commit.ID{1}
	if err := bob.Discard("/data/tasks/t1", alien); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("discard an unknown id: %v, want ErrNotFound", err)
	}
	if err := bob.Discard("/data/tasks/t2", writes[0]); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("discard under another item: %v, want ErrNotFound", err)
	}
	if rej, _ := bob.Rejected("/data/tasks"); len(rej) != 2 {
		t.Fatalf("a refused discard changed the list: %+v", rej)
	}
	if err := bob.Discard("/data/tasks/t1", writes[1]); err != nil { // takes its cause along
		t.Fatal(err)
	}
	if rej, _ := bob.Rejected("/data/tasks"); len(rej) != 0 {
		t.Fatalf("rejected after discard: %+v", rej)
	}
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	bob = dbtest.OpenDBIn(t, bobDir, nil)
	if rej, _ := bob.Rejected(""); len(rej) != 0 {
		t.Fatalf("rejected after discard and reopen: %+v", rej)
	}
	if got := field(t, bob, "/data/tasks/t1", "title"); got != "a" {
		t.Fatalf("t1 title %q after discard", got)
	}
	st := syncOK(t, bob, s.url, "/data/tasks")
	if st.CommitsSent != 0 {
		t.Fatalf("sync after discard sent %d commits", st.CommitsSent)
	}
}

// TestStartSyncQuarantines: the background Syncer quarantines a write the
// server refuses, reports it in its status and log, and does not send it
// again.
func TestStartSyncQuarantines(t *testing.T) {
	s := newRulesServer(t, dbtest.OwnerRules(t))
	alice := dbtest.OpenDB(t, nil)
	s.login(t, alice, "alice")
	if _, err := alice.Put("/data/tasks/t1", goatdb.Fields{"owner": "alice", "title": "a"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, alice, s.url)
	var logs logBuffer
	bob := dbtest.OpenDB(t, &goatdb.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.login(t, bob, "bob")
	syncOK(t, bob, s.url, "/data/tasks")
	sy, err := bob.StartSync([]string{s.url}, &goatdb.SyncOptions{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sy.Stop()
	id, err := bob.Put("/data/tasks/t1", goatdb.Fields{"title": "mine"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "quarantined write", func() bool {
		rej, _ := bob.Rejected("")
		return len(rej) == 1 && rej[0].Commit == id && sy.Status()[0].Quarantined == 1
	})
	if got := field(t, bob, "/data/tasks/t1", "title"); got != "a" {
		t.Fatalf("title %q while the write is quarantined", got)
	}
	st := sy.Status()[0]
	if len(st.Rejected) != 1 || st.Rejected[0].ID != id || !strings.Contains(logs.String(), "quarantined=true") {
		t.Fatalf("status %+v, log %s", st, logs.String())
	}
	sent := st.Sent
	time.Sleep(200 * time.Millisecond) // several interval syncs
	if st := sy.Status()[0]; st.Sent != sent || len(st.Rejected) != 1 || st.Quarantined != 1 {
		t.Fatalf("later syncs: %+v, want nothing sent again", st)
	}
}

// TestReauthorAfterLogin: a write made offline by a session that is then
// revoked is refused once the session has logged in again ("session
// revoked": the certificate that covered it is void); Reauthor writes the
// change again under the new certificate and the server takes it.
func TestReauthorAfterLogin(t *testing.T) {
	s := newRulesServer(t, authz.OpenRules())
	db := dbtest.OpenDB(t, nil)
	s.login(t, db, "alice")
	if _, err := db.Put("/data/x/a", goatdb.Fields{"v": 1, "w": "kept"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, db, s.url)
	offline, err := db.Put("/data/x/a", goatdb.Fields{"v": 2})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the revocation comes after the write
	if err := s.srv.Accounts().RevokeSession(db.Session()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Sync(context.Background(), s.url); !errors.Is(err, goatdb.ErrUnauthenticated) {
		t.Fatalf("sync of a revoked session: %v, want ErrUnauthenticated", err)
	}
	if rej, _ := db.Rejected(""); len(rej) != 0 || field(t, db, "/data/x/a", "v") != "2" {
		t.Fatalf("a refused request quarantined writes: %+v", rej)
	}

	// A certificate issued after the revocation is valid, from the
	// revocation on: it does not cover the offline write.
	s.login(t, db, "alice")
	_, err = db.Sync(context.Background(), s.url)
	if !errors.Is(err, goatdb.ErrRejected) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("sync after logging in again: %v, want the offline write refused as revoked", err)
	}
	rej, _ := db.Rejected("/data/x")
	if len(rej) != 1 || rej[0].Commit != offline || !strings.Contains(rej[0].Reason, "revoked") {
		t.Fatalf("rejected %+v, want the offline write", rej)
	}
	if got := field(t, db, "/data/x/a", "v"); got != "1" {
		t.Fatalf("v = %s while the write is quarantined, want 1", got)
	}

	ids, err := db.Reauthor("/data/x/a")
	if err != nil || len(ids) != 1 {
		t.Fatalf("reauthor: %v, %v", ids, err)
	}
	if rej, _ := db.Rejected(""); len(rej) != 0 {
		t.Fatalf("rejected after reauthor: %+v", rej)
	}
	if got := field(t, db, "/data/x/a", "v"); got != "2" {
		t.Fatalf("v = %s after reauthor, want 2", got)
	}
	st := syncOK(t, db, s.url)
	if st.CommitsSent != 1 {
		t.Fatalf("sync after reauthor: %+v, want the new commit sent", st)
	}
	if v, w := field(t, s.db, "/data/x/a", "v"), field(t, s.db, "/data/x/a", "w"); v != "2" || w != "kept" {
		t.Fatalf("the server's item: v=%s w=%s, want 2, kept", v, w)
	}
}

// TestRestoreRejected: Restore brings a quarantined write back into the
// value and to be sent; a server that still refuses it quarantines it
// again.
func TestRestoreRejected(t *testing.T) {
	s, bob, _, writes := refusedTask(t)
	if _, err := bob.Sync(context.Background(), s.url, "/data/tasks"); !errors.Is(err, goatdb.ErrRejected) {
		t.Fatalf("sync: %v", err)
	}
	if err := bob.Restore("/data/tasks", writes[0]); err != nil {
		t.Fatal(err)
	}
	if rej, _ := bob.Rejected(""); len(rej) != 0 || field(t, bob, "/data/tasks/t1", "title") != "mine" {
		t.Fatalf("after restore: rejected %+v, title %s", rej, field(t, bob, "/data/tasks/t1", "title"))
	}
	st, err := bob.Sync(context.Background(), s.url, "/data/tasks")
	if !errors.Is(err, goatdb.ErrRejected) || st.CommitsSent < 2 {
		t.Fatalf("sync after restore: %v, %+v; want both sent and refused again", err, st)
	}
	if rej, _ := bob.Rejected(""); len(rej) != 2 {
		t.Fatalf("after the second refusal: %+v", rej)
	}
}

// TestMissingParentsNotQuarantined: a refusal worth retrying (the server
// lacked the commit's parent) quarantines nothing and is no failure: the
// same sync sends the parent and the write again, and the server takes
// them.
func TestMissingParentsNotQuarantined(t *testing.T) {
	sdb := dbtest.OpenDB(t, nil)
	srv, err := server.New(sdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A proxy that drops the first commit of the first request pushing
	// several, as if it had been lost on the way.
	var dropped atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sync" && !dropped.Load() {
			body, _ := io.ReadAll(r.Body)
			if req, err := syncproto.DecodeRequest(body); err == nil && len(req.Repos) == 1 && len(req.Repos[0].Commits) > 1 {
				req.Repos[0].Commits = req.Repos[0].Commits[1:]
				body, _ = syncproto.EncodeRequest(req)
				dropped.Store(true)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})

	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put("/data/x/a", goatdb.Fields{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put("/data/x/a", goatdb.Fields{"v": 2}); err != nil {
		t.Fatal(err)
	}
	st := syncOK(t, db, hs.URL)
	if !dropped.Load() || len(st.Rejected) != 0 || st.CommitsSent < 3 {
		t.Fatalf("sync: %+v; want the write refused for its missing parent, then both sent again", st)
	}
	if rej, _ := db.Rejected(""); len(rej) != 0 {
		t.Fatalf("a retryable refusal was quarantined: %+v", rej)
	}
	if got, srv := field(t, db, "/data/x/a", "v"), field(t, sdb, "/data/x/a", "v"); got != "2" || srv != "2" {
		t.Fatalf("v = %s here, %s on the server; want the write kept and taken", got, srv)
	}
	if st = syncOK(t, db, hs.URL); st.CommitsSent != 0 || st.Rounds != 1 {
		t.Fatalf("the next sync: %+v, want nothing to send", st)
	}
}

// readerRules: an item of /notes/{repo} is readable by the user its
// "reader" field names, and writable by any logged-in user.
func readerRules(t *testing.T) *authz.Rules {
	var b authz.Builder
	b.Handle("/notes/{repo}/{id}", authz.Rule{
		Scope: authz.ByItem,
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, it item.Item) bool {
			v, ok := it.Get("reader")
			return ok && v.Type() == item.TypeString && p.User != "" && v.Str() == p.User
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, _, _ item.Item) error {
			if p.User == "" {
				return errors.New("log in to write notes")
			}
			return nil
		},
	})
	r, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventLog collects a query's events.
type eventLog struct {
	mu  sync.Mutex
	evs []goatdb.QueryEvent
}

func (l *eventLog) add(ev goatdb.QueryEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

// removed returns the paths of the QueryRemoved events marked
// AccessRemoved, and of the others.
func (l *eventLog) removed() (access, other []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		switch {
		case ev.Kind != goatdb.QueryRemoved:
		case ev.AccessRemoved:
			access = append(access, ev.Item.Path())
		default:
			other = append(other, ev.Item.Path())
		}
	}
	return access, other
}

// TestLostReadPurgesOnlyOwnItems: when the server stops letting alice
// read items (their reader changes), her next sync forgets exactly those
// (an item she wrote to as well), keeps the others (her own among them),
// and converges; a live query drops them with AccessRemoved, Watch
// reports ErrAccessRemoved, and the purge survives a reopen.
func TestLostReadPurgesOnlyOwnItems(t *testing.T) {
	const rp = "/notes/n"
	s := newRulesServer(t, readerRules(t))
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.db.Put(rp+"/"+k, goatdb.Fields{"reader": "alice", "text": k}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.db.Put(rp+"/z", goatdb.Fields{"reader": "bob", "text": "z"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	alice := dbtest.OpenDBIn(t, dir, nil)
	s.login(t, alice, "alice")
	if _, err := alice.Put(rp+"/mine", goatdb.Fields{"reader": "alice", "text": "mine"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, alice, s.url, rp)
	if _, err := alice.Put(rp+"/c", goatdb.Fields{"text": "c by alice"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, alice, s.url, rp)
	keys := func() []string {
		k, err := alice.Keys(rp, false)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if got := keys(); !slices.Equal(got, []string{"a", "b", "c", "mine"}) {
		t.Fatalf("alice holds %v before", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := alice.Query(ctx, goatdb.QuerySpec{Repo: rp})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var log eventLog
	defer q.Subscribe(log.add)()
	watched := make(chan error, 4)
	go func() {
		for _, err := range alice.Watch(ctx, rp+"/b") {
			if err != nil {
				watched <- err
			}
		}
	}()

	for _, k := range []string{"b", "c"} { // alice may no longer read them
		if _, err := s.db.Put(rp+"/"+k, goatdb.Fields{"reader": "bob"}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := alice.Sync(context.Background(), s.url, rp)
	if err != nil {
		t.Fatalf("sync after losing read: %v (%+v)", err, st)
	}
	if len(st.Hidden) != 1 {
		t.Fatalf("hidden %+v", st.Hidden)
	}
	check := func(when string) {
		t.Helper()
		if got := keys(); !slices.Equal(got, []string{"a", "mine"}) {
			t.Fatalf("%s: alice holds %v, want a and mine", when, got)
		}
		if _, err := alice.Get(rp + "/b"); !errors.Is(err, goatdb.ErrNotFound) {
			t.Fatalf("%s: get b: %v", when, err)
		}
		if rej, _ := alice.Rejected(""); len(rej) != 0 {
			t.Fatalf("%s: forgotten commits listed as rejected writes: %+v", when, rej)
		}
		st := syncOK(t, alice, s.url, rp)
		if len(st.Hidden) != 0 || st.CommitsSent != 0 || st.Converged != 1 {
			t.Fatalf("%s: sync %+v, want agreement with nothing hidden or sent", when, st)
		}
	}
	check("after the sync")
	if err := q.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	access, other := log.removed()
	slices.Sort(access)
	if !slices.Equal(access, []string{rp + "/b", rp + "/c"}) || len(other) != 0 {
		t.Fatalf("query removals: access removed %v, other %v", access, other)
	}
	if q.Count() != 2 {
		t.Fatalf("query holds %d items, want 2", q.Count())
	}
	select {
	case err := <-watched:
		if !errors.Is(err, goatdb.ErrAccessRemoved) || !strings.Contains(err.Error(), s.url) {
			t.Fatalf("watch: %v, want ErrAccessRemoved naming the server", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch said nothing when b was forgotten")
	}
	cancel()
	q.Close()
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	alice = dbtest.OpenDBIn(t, dir, nil)
	check("after reopening")

	// Read access regained: the server sends b again, and it is back.
	if _, err := s.db.Put(rp+"/b", goatdb.Fields{"reader": "alice", "text": "b again"}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, alice, s.url, rp)
	if got := keys(); !slices.Equal(got, []string{"a", "b", "mine"}) {
		t.Fatalf("alice holds %v after regaining b, want a, b and mine", got)
	}
	if got := field(t, alice, rp+"/b", "text"); got != "b again" {
		t.Fatalf("b's text %q after regaining it", got)
	}
	st = syncOK(t, alice, s.url, rp)
	if st.CommitsSent != 0 || len(st.Hidden) != 0 || st.Converged != 1 {
		t.Fatalf("sync after regaining b: %+v", st)
	}
}
