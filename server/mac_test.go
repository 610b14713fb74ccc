package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// seen is one request a front end passed on: its route, Goat-Auth header
// and the status answered.
type seen struct {
	path, auth string
	status     int
}

// front is an address whose requests go to one of several servers: the
// one set last, or each in turn. It records what it passes on.
type front struct {
	url      string
	mu       sync.Mutex // guards log and next
	log      []seen
	next     int
	handlers atomic.Pointer[[]http.Handler]
}

func newFront(t *testing.T, hs ...http.Handler) *front {
	f := &front{}
	f.set(hs...)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs := *f.handlers.Load()
		f.mu.Lock()
		h := hs[f.next%len(hs)]
		f.next++
		f.mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		f.mu.Lock()
		f.log = append(f.log, seen{path: r.URL.Path, auth: r.Header.Get(authz.AuthHeaderName), status: rec.status})
		f.mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

// set makes the front pass requests to hs, in turn.
func (f *front) set(hs ...http.Handler) { f.handlers.Store(&hs) }

// since returns the requests to path passed on from the n-th on.
func (f *front) since(n int, path string) []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seen
	for _, s := range f.log[n:] {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

func (f *front) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.log)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// newNode returns another node of id's deployment: a new node key,
// certified by root.
func newNode(t *testing.T, id *server.Identity, root ed25519.PrivateKey, name string) *server.Identity {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-time.Minute), Expires: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return &server.Identity{Audience: id.Audience, Root: id.Root, NodeKey: key, Node: cert}
}

// loggedInWrite serves a node of id behind a front, logs a new client in
// as alice through it, and writes one note on the client.
func loggedInWrite(t *testing.T, id *server.Identity) (srv *server.Server, sdb *goatdb.DB, f *front, cdb *goatdb.DB) {
	t.Helper()
	sdb = dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	srv = newNodeServer(t, sdb, id)
	f = newFront(t, srv.Handler())
	code, _, err := srv.Accounts().AddUser("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	cdb = dbtest.OpenDB(t, nil)
	if _, err := cdb.LoginCode(context.Background(), f.url, "alice", code); err != nil {
		t.Fatal(err)
	}
	if _, err := cdb.Put("/data/notes/a", goatdb.Fields{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	return srv, sdb, f, cdb
}

func newNodeServer(t *testing.T, db *goatdb.DB, id *server.Identity) *server.Server {
	t.Helper()
	srv, err := server.New(db, &server.Options{RateLimit: -1,
		Auth: &server.AuthOptions{Identity: id, Rules: authz.DefaultRules()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// keyID returns the k field a v2 header MACed for node carries.
func keyID(node *server.Identity) string {
	return authz.FormatNodeKey(node.Node.Key())[:12]
}

func fieldOf(header, name string) string {
	_, rest, ok := strings.Cut(header, "; "+name+"=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, ";")
	return v
}

// TestClientMACsRequests: a client that logged in MACs its requests (v2)
// and syncs; when the server's node key changes under it, the first v2
// header is refused with a 401 naming the new key, and the client MACs
// the request again for it, so the sync succeeds.
func TestClientMACsRequests(t *testing.T) {
	ctx := context.Background()
	id, root, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	_, sdb, f, cdb := loggedInWrite(t, id)
	if _, err := cdb.Sync(ctx, f.url, "/data/notes"); err != nil {
		t.Fatal(err)
	}
	syncs := f.since(0, "/v1/sync")
	if len(syncs) == 0 {
		t.Fatal("no sync request")
	}
	for _, s := range syncs {
		if !strings.HasPrefix(s.auth, "v2; ") || fieldOf(s.auth, "k") != keyID(id) || s.status != http.StatusOK {
			t.Fatalf("sync request %q answered %d; want v2 for the node's key, 200", s.auth, s.status)
		}
		if len(s.auth) > authz.MaxHeaderLen {
			t.Fatalf("header of %d bytes > %d", len(s.auth), authz.MaxHeaderLen)
		}
	}
	if it, err := sdb.Get("/data/notes/a"); err != nil || it.Get("text") != "a" {
		t.Fatalf("the server holds %v, %v", it, err)
	}

	// The node's key changes (same deployment and root): the client's
	// first request is MACed for the old key, refused, and sent again.
	id2 := newNode(t, id, root, "node-2")
	f.set(newNodeServer(t, sdb, id2).Handler())
	n := f.len()
	if _, err := cdb.Put("/data/notes/b", goatdb.Fields{"text": "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cdb.Sync(ctx, f.url, "/data/notes"); err != nil {
		t.Fatalf("sync after the node key changed: %v", err)
	}
	syncs = f.since(n, "/v1/sync")
	if len(syncs) < 2 || fieldOf(syncs[0].auth, "k") != keyID(id) || syncs[0].status != http.StatusUnauthorized ||
		fieldOf(syncs[1].auth, "k") != keyID(id2) || syncs[1].status != http.StatusOK {
		t.Fatalf("sync requests %+v; want the old key refused, then the new one accepted", syncs)
	}
	for _, s := range syncs[1:] {
		if !strings.HasPrefix(s.auth, "v2; ") || s.status != http.StatusOK {
			t.Fatalf("sync request %q answered %d after the new key was learned", s.auth, s.status)
		}
	}
	if it, err := sdb.Get("/data/notes/b"); err != nil || it.Get("text") != "b" {
		t.Fatalf("the server holds %v, %v", it, err)
	}
}

// TestClientSignsV1AcrossUnsharedNodeKeys: behind one address, two nodes
// with keys of their own take requests in turn, so a MACed request goes
// to the node it was not MACed for. The client falls back to v1
// signatures, which every node verifies, and no sync fails.
func TestClientSignsV1AcrossUnsharedNodeKeys(t *testing.T) {
	ctx := context.Background()
	id, root, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	sdb := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	a := newNodeServer(t, sdb, id)
	b := newNodeServer(t, sdb, newNode(t, id, root, "node-2"))
	f := newFront(t, a.Handler(), b.Handler())
	code, _, err := a.Accounts().AddUser("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	cdb := dbtest.OpenDB(t, nil)
	if _, err := cdb.LoginCode(ctx, f.url, "alice", code); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := cdb.Put("/data/notes/n", goatdb.Fields{"i": i}); err != nil {
			t.Fatal(err)
		}
		if _, err := cdb.Sync(ctx, f.url, "/data/notes"); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	// The login was MACed for one node, refused by the other, MACed
	// again for it, refused by the first, and signed.
	logins := f.since(0, "/v1/auth/login")
	if len(logins) != 4 || !strings.HasPrefix(logins[1].auth, "v2; ") || !strings.HasPrefix(logins[2].auth, "v2; ") ||
		fieldOf(logins[1].auth, "k") == fieldOf(logins[2].auth, "k") || !strings.HasPrefix(logins[3].auth, "v1; ") || logins[3].status != http.StatusOK {
		t.Fatalf("login requests %+v; want unsigned, v2 for each node, v1 accepted", logins)
	}
	for _, s := range f.since(0, "/v1/sync") {
		if !strings.HasPrefix(s.auth, "v1; ") || s.status != http.StatusOK {
			t.Fatalf("sync request %q answered %d; want v1 and 200", s.auth, s.status)
		}
	}
}

// TestV1AnswerNamesNodeKey: the answer to a v1 request names the node's
// key, so that a client that did not log in since it started learns it;
// the answer to a v2 request does not repeat it.
func TestV1AnswerNamesNodeKey(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	_, _, h := c.do(http.MethodGet, "/v1/auth/whoami", nil)
	named, err := authz.ParseNodeKey(h.Get(authz.NodeHeaderName))
	if err != nil || !named.Equal(rig.id.Node.Key()) {
		t.Fatalf("Goat-Node %q (%v); want the node's key", h.Get(authz.NodeHeaderName), err)
	}
	k, err := authz.NewRequestKey(c.key, named, rig.id.Audience)
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimPrefix(rig.run.url, "http://")
	mac, err := authz.MACRequest(k, authz.Request{Method: http.MethodGet, Host: u, PathQuery: "/v1/auth/whoami",
		Body: authz.BodyDigest(nil)}, c.now(), authz.NewNonce(), "")
	if err != nil {
		t.Fatal(err)
	}
	st, body, h := c.send(http.MethodGet, "/v1/auth/whoami", nil, mac)
	if st != http.StatusOK || h.Get(authz.NodeHeaderName) != "" {
		t.Fatalf("v2 whoami: %d %s, Goat-Node %q; want 200 without it", st, body, h.Get(authz.NodeHeaderName))
	}
	// A v2 header for another node key: 401 naming this node's key.
	_, other, _ := ed25519.GenerateKey(nil)
	k2, err := authz.NewRequestKey(c.key, other.Public().(ed25519.PublicKey), rig.id.Audience)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := authz.MACRequest(k2, authz.Request{Method: http.MethodGet, Host: u, PathQuery: "/v1/auth/whoami",
		Body: authz.BodyDigest(nil)}, c.now(), authz.NewNonce(), "")
	if err != nil {
		t.Fatal(err)
	}
	st, body, h = c.send(http.MethodGet, "/v1/auth/whoami", nil, wrong)
	if st != http.StatusUnauthorized || h.Get(authz.NodeHeaderName) != authz.FormatNodeKey(rig.id.Node.Key()) ||
		!strings.Contains(body, "another node key") {
		t.Fatalf("v2 for another node: %d %s, Goat-Node %q; want 401 naming this node's key", st, body, h.Get(authz.NodeHeaderName))
	}
}

// v1Only is a server that no longer takes v2 headers (an older version):
// it refuses them naming no node key, and names none in its answers.
type v1Only struct {
	inner    http.Handler
	audience string
}

func (s v1Only) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.Header.Get(authz.AuthHeaderName), "v2; ") {
		w.Header().Set(server.AudienceHeader, s.audience)
		http.Error(w, "malformed Goat-Auth header", http.StatusUnauthorized)
		return
	}
	s.inner.ServeHTTP(noNodeHeader{w}, r)
}

type noNodeHeader struct{ http.ResponseWriter }

func (w noNodeHeader) WriteHeader(code int) {
	w.Header().Del(authz.NodeHeaderName)
	w.ResponseWriter.WriteHeader(code)
}

func (w noNodeHeader) Write(b []byte) (int, error) {
	w.Header().Del(authz.NodeHeaderName)
	return w.ResponseWriter.Write(b)
}

// TestClientForgetsNodeKey: when a server that named its node key stops
// taking v2 headers, the v2 request it refuses fails, and the client
// signs the next ones with v1.
func TestClientForgetsNodeKey(t *testing.T) {
	ctx := context.Background()
	id, _, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	srv, _, f, cdb := loggedInWrite(t, id)
	f.set(v1Only{srv.Handler(), id.Audience})
	n := f.len()
	if _, err := cdb.Sync(ctx, f.url, "/data/notes"); !errors.Is(err, goatdb.ErrUnauthenticated) {
		t.Fatalf("v2 sync to a server that takes none: %v, want ErrUnauthenticated", err)
	}
	if _, err := cdb.Sync(ctx, f.url, "/data/notes"); err != nil {
		t.Fatalf("the next sync: %v", err)
	}
	for i, s := range f.since(n, "/v1/sync") {
		if v := s.auth[:2]; (i == 0) != (v == "v2") {
			t.Fatalf("sync request %d is %s", i, v)
		}
	}
}
