package goatdb_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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
	"github.com/goatdb/goatdb/server"
)

// authServer is a small stand-in for a server with authentication, in
// front of an unauthenticated package server: it verifies the Goat-Auth
// header of every /v1 request with an authz.Verifier, answers refusals
// with 401, Goat-Audience and (for a clock challenge) Goat-Nonce, serves
// /v1/auth/ itself (one-time codes, session certificates issued by a node
// whose certificate the root key signed) and passes /v1/sync and
// /v1/events on for sessions with a valid certificate. It records every
// request and what the Verifier said about it.
type authServer struct {
	URL      string
	audience string
	verifier *authz.Verifier
	skew     atomic.Int64 // the server's clock minus the real one, in ns
	inner    http.Handler
	hs       *httptest.Server

	mu        sync.Mutex // guards the fields below
	root      ed25519.PrivateKey
	nodeKey   ed25519.PrivateKey
	node      *authz.NodeCertificate
	codes     map[string]string // user → one-time code
	roles     map[string][]string
	certs     map[commit.SessionID]*authz.SessionCertificate
	log       []authReq
	lifetime  time.Duration // of the certificates issued; 30 days by default
	age       time.Duration // issue certificates that began this long ago
	anonymous bool          // register issues anonymous certificates
	failRenew bool          // renew answers 500
	// Misbehaviours of a server not to be trusted.
	answerRoot     ed25519.PublicKey // answer with this root key
	answerAudience string            // answer with this audience
	otherSession   bool              // certify another session than the caller's
	otherUser      string            // certify this user instead
}

// authReq is one request the server received.
type authReq struct {
	Method, Path, Host, URI, Header string
	Body                            []byte
	Session                         commit.SessionID
	Err                             error // the Verifier's, or errUnsigned
}

var errUnsigned = errors.New("unsigned request")

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	db := dbtest.OpenDB(t, nil)
	srv, err := server.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &authServer{audience: "test-deployment", inner: srv.Handler(), codes: map[string]string{},
		roles: map[string][]string{}, certs: map[commit.SessionID]*authz.SessionCertificate{},
		lifetime: 30 * 24 * time.Hour}
	s.rotateRoot(t)
	s.verifier, err = authz.NewVerifier(s.audience, &authz.VerifierOptions{Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	t.Cleanup(func() {
		s.hs.Close()
		srv.Close()
	})
	return s
}

// rotateRoot gives the deployment a new root key and node certificate.
func (s *authServer) rotateRoot(t *testing.T) {
	t.Helper()
	_, root, _ := ed25519.GenerateKey(nil)
	nodePub, nodeKey, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	node, err := authz.IssueNode(root, authz.NodeFields{Node: "node-1", Key: nodePub,
		NotBefore: now.Add(-400 * 24 * time.Hour), Expires: now.Add(400 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.root, s.nodeKey, s.node = root, nodeKey, node
	s.mu.Unlock()
}

func (s *authServer) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }

func (s *authServer) set(fn func(s *authServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *authServer) addCode(user, code string, roles ...string) {
	s.set(func(s *authServer) { s.codes[user], s.roles[user] = code, roles })
}

// requests returns what the server received so far.
func (s *authServer) requests() []authReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := authReq{Method: r.Method, Path: r.URL.Path, Host: r.Host, URI: r.RequestURI,
		Header: r.Header.Get(authz.AuthHeaderName), Body: body, Err: errUnsigned}
	if rec.Header != "" {
		rec.Session, rec.Err = s.verifier.Verify(rec.Header, authz.Request{Method: r.Method, Host: r.Host,
			PathQuery: r.RequestURI, Body: authz.BodyDigest(body)})
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
	if rec.Err != nil {
		var ch *authz.ChallengeError
		if errors.As(rec.Err, &ch) {
			w.Header().Set(authz.NonceHeaderName, ch.Nonce)
		}
		s.unauthorized(w, rec.Err.Error())
		return
	}
	s.route(w, r, rec.Session, body)
}

func (s *authServer) unauthorized(w http.ResponseWriter, reason string) {
	w.Header().Set("Goat-Audience", s.audience)
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	http.Error(w, reason, http.StatusUnauthorized)
}

func (s *authServer) route(w http.ResponseWriter, r *http.Request, session commit.SessionID, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert := s.certs[session]
	valid := cert != nil && cert.Covers(s.now())
	switch r.URL.Path {
	case "/v1/auth/login":
		var in struct{ User, Code string }
		if err := json.Unmarshal(body, &in); err != nil || in.Code == "" || s.codes[in.User] != in.Code {
			s.unauthorized(w, "login refused: wrong, used or expired code")
			return
		}
		delete(s.codes, in.User)
		s.issue(w, session, in.User, s.roles[in.User], s.age)
	case "/v1/auth/register":
		if !s.anonymous {
			http.Error(w, "this server takes no anonymous sessions", http.StatusForbidden)
			return
		}
		s.issue(w, session, "", nil, 0)
	case "/v1/auth/renew":
		switch {
		case !valid:
			s.unauthorized(w, "no valid certificate to renew")
		case s.failRenew:
			http.Error(w, "renewal broken", http.StatusInternalServerError)
		default:
			s.issue(w, session, cert.User(), cert.Roles(), 0)
		}
	case "/v1/auth/logout":
		delete(s.certs, session)
		w.Write([]byte("{}\n"))
	case "/v1/auth/whoami":
		out := map[string]any{"user": "", "roles": []string{}, "session": session.String(), "expires": ""}
		if valid {
			out["user"], out["roles"], out["expires"] = cert.User(), cert.Roles(), cert.Expires().UTC().Format(time.RFC3339)
		}
		json.NewEncoder(w).Encode(out)
	default:
		if !valid {
			s.unauthorized(w, "session not logged in")
			return
		}
		s.mu.Unlock()
		s.inner.ServeHTTP(w, r)
		s.mu.Lock()
	}
}

// issue certifies session and answers as login, register and renew do.
func (s *authServer) issue(w http.ResponseWriter, session commit.SessionID, user string, roles []string, age time.Duration) {
	if s.otherSession {
		pub, _, _ := ed25519.GenerateKey(nil)
		copy(session[:], pub)
	}
	if s.otherUser != "" {
		user = s.otherUser
	}
	nb := s.now().Add(-age)
	cert, err := authz.Issue(s.nodeKey, s.node, authz.SessionFields{Session: session, User: user, Roles: roles,
		NotBefore: nb, Expires: nb.Add(s.lifetime), Audience: s.audience})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.certs[session] = cert
	root, aud := s.root.Public().(ed25519.PublicKey), s.audience
	if s.answerRoot != nil {
		root = s.answerRoot
	}
	if s.answerAudience != "" {
		aud = s.answerAudience
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"user": cert.User(), "roles": cert.Roles(), "session": session.String(),
		"certificate": base64.StdEncoding.EncodeToString(cert.Encode()),
		"expires":     cert.Expires().UTC().Format(time.RFC3339), "audience": aud,
		"root": base64.StdEncoding.EncodeToString(root),
	})
}

// login logs db in to s as alice.
func login(t *testing.T, db *goatdb.DB, s *authServer) goatdb.Login {
	t.Helper()
	code := base64.RawURLEncoding.EncodeToString(randomBytes(9))
	s.addCode("alice", code, "admin", "dev")
	l, err := db.LoginCode(context.Background(), s.URL, "alice", code)
	if err != nil {
		t.Fatalf("LoginCode: %v", err)
	}
	return l
}

func randomBytes(n int) []byte {
	_, k, _ := ed25519.GenerateKey(nil)
	return k[:n]
}

// checkSigned checks that every request the server received since from
// was signed and verified, except unsigned ones that learned the
// audience (at most one per peer that did not know it), and returns the
// paths that were verified.
func checkSigned(t *testing.T, reqs []authReq, unsigned int) map[string]int {
	t.Helper()
	paths := map[string]int{}
	for i, r := range reqs {
		switch {
		case r.Err == errUnsigned:
			unsigned--
			if unsigned < 0 {
				t.Errorf("request %d %s %s was sent unsigned", i, r.Method, r.URI)
			}
		case r.Err != nil:
			t.Errorf("request %d %s %s: the verifier refused it: %v", i, r.Method, r.URI, r.Err)
		default:
			paths[r.Path]++
		}
		if n := len(authz.AuthHeaderName) + 2 + len(r.Header) + 2; r.Header != "" && n > 300 {
			t.Errorf("request %d: the Goat-Auth header line takes %d bytes, want at most 300: %q", i, n, r.Header)
		}
	}
	return paths
}

func TestLoginSignsEveryRequest(t *testing.T) {
	ctx := context.Background()
	s := newAuthServer(t)
	db := dbtest.OpenDB(t, nil)

	l := login(t, db, s)
	if l.Server != s.URL || l.User != "alice" || !slices.Equal(l.Roles, []string{"admin", "dev"}) ||
		l.Session != db.Session() || time.Until(l.Expires) < 29*24*time.Hour {
		t.Errorf("LoginCode = %+v, want alice (admin, dev) at %s for %s, expiring in 30 days", l, s.URL, db.Session())
	}
	if got := db.Logins(); len(got) != 1 || got[0].Server != l.Server || !got[0].Expires.Equal(l.Expires) {
		t.Errorf("Logins = %+v, want [%+v]", got, l)
	}
	reqs := s.requests()
	if len(reqs) != 2 || reqs[0].Err != errUnsigned || reqs[1].Err != nil || reqs[1].Path != "/v1/auth/login" {
		t.Errorf("login sent %d requests; want one unsigned that learns the audience, then one signed", len(reqs))
	}
	who, err := db.WhoAmI(ctx, s.URL+"/")
	if err != nil || who.User != "alice" || who.Session != db.Session() || !who.Expires.Equal(l.Expires.Truncate(time.Second)) {
		t.Errorf("WhoAmI = %+v, %v; want alice, expiring %v", who, err, l.Expires)
	}

	syncItems(t, db, "/data/a", 0, 3)
	syncOK(t, db, s.URL)
	sy, err := db.StartSync([]string{s.URL}, &goatdb.SyncOptions{MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "event stream", func() bool { return sy.Status()[0].Listening })
	syncItems(t, db, "/data/a", 3, 4)
	waitFor(t, "background sync", func() bool { return sy.Status()[0].Syncs > 0 })
	if err := sy.Stop(); err != nil {
		t.Fatal(err)
	}

	anon := dbtest.OpenDB(t, nil)
	s.set(func(s *authServer) { s.anonymous = true })
	if l, err := anon.Register(ctx, s.URL); err != nil || l.User != "" || l.Session != anon.Session() {
		t.Errorf("Register = %+v, %v; want an anonymous login", l, err)
	}
	if err := db.Logout(ctx, s.URL); err != nil {
		t.Errorf("Logout: %v", err)
	}

	paths := checkSigned(t, s.requests(), 2)
	for _, p := range []string{"/v1/auth/login", "/v1/auth/whoami", "/v1/sync", "/v1/events",
		"/v1/auth/register", "/v1/auth/logout"} {
		if paths[p] == 0 {
			t.Errorf("no verified request to %s (verified: %v)", p, paths)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSignedRequestTampered replays and alters a request the client
// signed: the server refuses each.
func TestSignedRequestTampered(t *testing.T) {
	s := newAuthServer(t)
	db := dbtest.OpenDB(t, nil)
	login(t, db, s)
	syncItems(t, db, "/data/t", 0, 2)
	syncOK(t, db, s.URL)
	var sent authReq
	for _, r := range s.requests() {
		if r.Path == "/v1/sync" && r.Err == nil {
			sent = r
		}
	}
	if sent.Header == "" {
		t.Fatal("no verified sync request")
	}
	flipped := bytes.Clone(sent.Body)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		method string
		url    string
		host   string
		body   []byte
		skew   time.Duration
		want   error
	}{
		{"replayed", "POST", s.URL + sent.URI, "", sent.Body, 0, authz.ErrReplay},
		{"body changed", "POST", s.URL + sent.URI, "", flipped, 0, authz.ErrBodyMismatch},
		{"path changed", "POST", s.URL + "/v1/sync?x=1", "", sent.Body, 0, authz.ErrBadSignature},
		{"host changed", "POST", s.URL + sent.URI, "localhost", sent.Body, 0, authz.ErrBadSignature},
		{"method changed", "PUT", s.URL + sent.URI, "", sent.Body, 0, authz.ErrBadSignature},
		{"stale", "POST", s.URL + sent.URI, "", sent.Body, 2 * time.Minute, authz.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.skew.Store(int64(tt.skew))
			defer s.skew.Store(0)
			req, _ := http.NewRequest(tt.method, tt.url, bytes.NewReader(tt.body))
			req.Header.Set(authz.AuthHeaderName, sent.Header)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			reqs := s.requests()
			last := reqs[len(reqs)-1]
			if resp.StatusCode != http.StatusUnauthorized || !errors.Is(last.Err, tt.want) {
				t.Errorf("answer %d, verifier %v; want 401 and %v", resp.StatusCode, last.Err, tt.want)
			}
		})
	}
}

// TestClockSkew: a peer whose clock is 10 minutes off logs in and syncs,
// echoing the server's nonce, and later requests need no challenge.
func TestClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			s := newAuthServer(t)
			s.skew.Store(int64(skew))
			db := dbtest.OpenDB(t, nil)
			login(t, db, s)
			syncItems(t, db, "/data/s", 0, 2)
			syncOK(t, db, s.URL)
			reqs := s.requests()
			var stale, echoed int
			for _, r := range reqs {
				if h, err := authz.ParseAuthHeader(r.Header); err == nil && h.Echo != "" && r.Err == nil {
					echoed++
				}
				if errors.Is(r.Err, authz.ErrStale) {
					stale++
				}
			}
			if stale != 1 || echoed != 1 {
				t.Errorf("%d stale requests and %d accepted echoes, want 1 and 1 (the login's)", stale, echoed)
			}
			n := len(reqs)
			syncItems(t, db, "/data/s", 2, 4)
			syncOK(t, db, s.URL)
			checkSigned(t, s.requests()[n:], 0)
		})
	}
}

// TestChallengeBounded: a server that answers every request with a new
// challenge gets three attempts, not a loop.
func TestChallengeBounded(t *testing.T) {
	var n atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Goat-Audience", "aud-x")
		w.Header().Set(authz.NonceHeaderName, base64.RawURLEncoding.EncodeToString(randomBytes(24)))
		http.Error(w, "always stale", http.StatusUnauthorized)
	}))
	defer hs.Close()
	db := dbtest.OpenDB(t, nil)
	syncItems(t, db, "/data/b", 0, 1)
	_, err := db.Sync(context.Background(), hs.URL)
	var se *goatdb.ServerError
	if !errors.Is(err, goatdb.ErrUnauthenticated) || !errors.As(err, &se) || se.Status != 401 || se.Message != "always stale" {
		t.Errorf("Sync: %v; want ErrUnauthenticated and a *ServerError 401", err)
	}
	if !strings.Contains(err.Error(), "goatdb login "+hs.URL+" NAME --code CODE") {
		t.Errorf("error %q does not say to run goatdb login", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("%d attempts, want 3 (unsigned, signed, echoed)", got)
	}
}

func TestSyncNotLoggedIn(t *testing.T) {
	s := newAuthServer(t)
	db := dbtest.OpenDB(t, nil)
	syncItems(t, db, "/data/n", 0, 1)
	_, err := db.Sync(context.Background(), s.URL)
	var se *goatdb.ServerError
	if !errors.Is(err, goatdb.ErrUnauthenticated) || !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("Sync: %v; want ErrUnauthenticated and a *ServerError 401", err)
	}
	if errors.Is(err, goatdb.ErrUnreachable) || !strings.Contains(err.Error(), "goatdb login "+s.URL) {
		t.Errorf("error %q: want it to say to run goatdb login", err)
	}
	checkSigned(t, s.requests(), 1)
}

// TestLoginRefusesUntrustedCertificate: the client verifies what a server
// answers and stores nothing it does not trust.
func TestLoginRefusesUntrustedCertificate(t *testing.T) {
	tests := []struct {
		name string
		bad  func(s *authServer)
		want error
	}{
		{"another session", func(s *authServer) { s.otherSession = true }, authz.ErrUntrusted},
		{"another user", func(s *authServer) { s.otherUser = "mallory" }, authz.ErrUntrusted},
		{"wrong root", func(s *authServer) { s.answerRoot = ed25519.PublicKey(randomBytes(32)) }, authz.ErrUntrusted},
		{"wrong audience", func(s *authServer) { s.answerAudience = "other-deployment" }, authz.ErrUntrusted},
		{"expired", func(s *authServer) { s.age = 31 * 24 * time.Hour }, authz.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAuthServer(t)
			s.set(tt.bad)
			s.addCode("alice", "c0de")
			db := dbtest.OpenDB(t, nil)
			_, err := db.LoginCode(context.Background(), s.URL, "alice", "c0de")
			if !errors.Is(err, tt.want) {
				t.Errorf("LoginCode: %v; want %v", err, tt.want)
			}
			if ls := db.Logins(); len(ls) != 0 {
				t.Errorf("Logins = %+v after a refused login", ls)
			}
			if _, err := os.Stat(filepath.Join(db.Dir(), "credentials.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("credentials.json written after a refused login: %v", err)
			}
		})
	}

	t.Run("root changed", func(t *testing.T) {
		s := newAuthServer(t)
		db := dbtest.OpenDB(t, nil)
		first := login(t, db, s)
		before, err := os.ReadFile(filepath.Join(db.Dir(), "credentials.json"))
		if err != nil {
			t.Fatal(err)
		}
		s.rotateRoot(t)
		s.addCode("alice", "again")
		_, err = db.LoginCode(context.Background(), s.URL, "alice", "again")
		if !errors.Is(err, authz.ErrUntrusted) || !strings.Contains(err.Error(), "pinned") || !strings.Contains(err.Error(), "goatdb logout") {
			t.Errorf("LoginCode after the root changed: %v; want ErrUntrusted saying the pinned root differs", err)
		}
		after, _ := os.ReadFile(filepath.Join(db.Dir(), "credentials.json"))
		if !bytes.Equal(before, after) {
			t.Error("credentials.json changed by a refused login")
		}
		if ls := db.Logins(); len(ls) != 1 || !ls[0].Expires.Equal(first.Expires) {
			t.Errorf("Logins = %+v, want the first login", ls)
		}
		// After a logout the pin is forgotten and the new root trusted.
		if err := db.Logout(context.Background(), s.URL); err != nil {
			t.Fatal(err)
		}
		login(t, db, s)
	})

	t.Run("wrong code", func(t *testing.T) {
		s := newAuthServer(t)
		s.addCode("alice", "right")
		db := dbtest.OpenDB(t, nil)
		_, err := db.LoginCode(context.Background(), s.URL, "alice", "wrong")
		var se *goatdb.ServerError
		if !errors.Is(err, goatdb.ErrUnauthenticated) || !errors.As(err, &se) || !strings.Contains(err.Error(), "wrong, used or expired code") {
			t.Errorf("LoginCode with a wrong code: %v; want ErrUnauthenticated with the server's reason", err)
		}
		if len(db.Logins()) != 0 {
			t.Error("a refused login was stored")
		}
	})
}

func TestLoginRenewal(t *testing.T) {
	const day = 24 * time.Hour
	t.Run("renewed", func(t *testing.T) {
		s := newAuthServer(t)
		s.set(func(s *authServer) { s.age = 20 * day })
		db := dbtest.OpenDB(t, nil)
		old := login(t, db, s)
		if left := time.Until(old.Expires); left > 11*day || left < 9*day {
			t.Fatalf("the first certificate has %v left, want 10 days", left)
		}
		syncItems(t, db, "/data/r", 0, 1)
		n := len(s.requests())
		syncOK(t, db, s.URL)
		var paths []string
		for _, r := range s.requests()[n:] {
			paths = append(paths, r.Path)
		}
		if len(paths) < 2 || paths[0] != "/v1/auth/renew" || paths[1] != "/v1/sync" {
			t.Errorf("requests of the sync: %v; want a renewal first", paths)
		}
		ls := db.Logins()
		if len(ls) != 1 || time.Until(ls[0].Expires) < 29*day || ls[0].User != "alice" {
			t.Errorf("Logins after renewal = %+v, want alice for 30 more days", ls)
		}
		n = len(s.requests())
		syncOK(t, db, s.URL)
		for _, r := range s.requests()[n:] {
			if r.Path == "/v1/auth/renew" {
				t.Error("renewed again a certificate with more than half its lifetime left")
			}
		}
		checkSigned(t, s.requests(), 1)
	})

	t.Run("renewal fails", func(t *testing.T) {
		s := newAuthServer(t)
		s.set(func(s *authServer) { s.age, s.failRenew = 20*day, true })
		var logs logBuffer
		db := dbtest.OpenDB(t, &goatdb.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		old := login(t, db, s)
		syncItems(t, db, "/data/r", 0, 1)
		syncOK(t, db, s.URL)
		syncOK(t, db, s.URL)
		renewals := 0
		for _, r := range s.requests() {
			if r.Path == "/v1/auth/renew" {
				renewals++
			}
		}
		if renewals != 1 {
			t.Errorf("%d renewals tried, want 1 (a failed one waits before the next)", renewals)
		}
		if !strings.Contains(logs.String(), "renewing the login failed") {
			t.Errorf("the failed renewal was not logged: %s", logs.String())
		}
		if ls := db.Logins(); len(ls) != 1 || !ls[0].Expires.Equal(old.Expires) {
			t.Errorf("Logins = %+v, want the old certificate kept", ls)
		}
	})
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	t.Run("server told", func(t *testing.T) {
		s := newAuthServer(t)
		db := dbtest.OpenDB(t, nil)
		login(t, db, s)
		if err := db.Logout(ctx, s.URL); err != nil {
			t.Fatal(err)
		}
		if ls := db.Logins(); len(ls) != 0 {
			t.Errorf("Logins after Logout = %+v", ls)
		}
		b, err := os.ReadFile(filepath.Join(db.Dir(), "credentials.json"))
		if err != nil || strings.Contains(string(b), s.URL) {
			t.Errorf("credentials.json after Logout: %v\n%s", err, b)
		}
		s.mu.Lock()
		_, still := s.certs[db.Session()]
		s.mu.Unlock()
		if still {
			t.Error("the server was not told")
		}
		syncItems(t, db, "/data/l", 0, 1)
		if _, err := db.Sync(ctx, s.URL); !errors.Is(err, goatdb.ErrUnauthenticated) {
			t.Errorf("Sync after Logout: %v, want ErrUnauthenticated", err)
		}
		checkSigned(t, s.requests(), 1)
	})
	t.Run("server unreachable", func(t *testing.T) {
		s := newAuthServer(t)
		db := dbtest.OpenDB(t, nil)
		login(t, db, s)
		s.hs.Close()
		err := db.Logout(ctx, s.URL)
		if !errors.Is(err, goatdb.ErrUnreachable) || !strings.Contains(err.Error(), "forgotten") {
			t.Errorf("Logout from a server that is down: %v; want ErrUnreachable, saying the login is forgotten", err)
		}
		if ls := db.Logins(); len(ls) != 0 {
			t.Errorf("Logins = %+v, want none", ls)
		}
	})
}

func TestCredentialsFile(t *testing.T) {
	s := newAuthServer(t)
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := login(t, db, s)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "credentials.json")
	if fi, err := os.Stat(name); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Errorf("credentials.json: %v, mode %v; want 0600", err, fi.Mode())
	}

	t.Run("reopen", func(t *testing.T) {
		db := dbtest.OpenDBIn(t, dir, nil)
		ls := db.Logins()
		if len(ls) != 1 || ls[0].Server != l.Server || ls[0].User != "alice" || !ls[0].Expires.Equal(l.Expires) ||
			!slices.Equal(ls[0].Roles, l.Roles) || ls[0].Session != l.Session {
			t.Fatalf("Logins after reopen = %+v, want [%+v]", ls, l)
		}
		// The audience is known from the file: no unsigned request.
		n := len(s.requests())
		syncItems(t, db, "/data/c", 0, 1)
		syncOK(t, db, s.URL)
		checkSigned(t, s.requests()[n:], 0)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})

	good, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string][]byte{
		"garbage":   []byte("{not json"),
		"empty":     nil,
		"version":   bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 9`), 1),
		"truncated": good[:len(good)/2],
	}
	for what, b := range damaged {
		t.Run(what, func(t *testing.T) {
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			db := dbtest.OpenDBIn(t, dir, &goatdb.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if ls := db.Logins(); len(ls) != 0 {
				t.Errorf("Logins from a damaged file = %+v", ls)
			}
			if !strings.Contains(logs.String(), "stored logins") {
				t.Errorf("no warning about the damaged file: %q", logs.String())
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("another peer's file", func(t *testing.T) {
		other := t.TempDir()
		if err := os.WriteFile(filepath.Join(other, "credentials.json"), good, 0o600); err != nil {
			t.Fatal(err)
		}
		db := dbtest.OpenDBIn(t, other, nil)
		if ls := db.Logins(); len(ls) != 0 {
			t.Errorf("Logins from a file for another session = %+v", ls)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		if err := os.WriteFile(name, good, 0o600); err != nil {
			t.Fatal(err)
		}
		db := dbtest.OpenDBIn(t, dir, &goatdb.Options{ReadOnly: true})
		if ls := db.Logins(); len(ls) != 1 {
			t.Errorf("Logins on a read-only open = %+v, want 1", ls)
		}
		if _, err := db.LoginCode(context.Background(), s.URL, "alice", "x"); !errors.Is(err, goatdb.ErrReadOnly) {
			t.Errorf("LoginCode on a read-only database: %v, want ErrReadOnly", err)
		}
		if err := db.Logout(context.Background(), s.URL); !errors.Is(err, goatdb.ErrReadOnly) {
			t.Errorf("Logout on a read-only database: %v, want ErrReadOnly", err)
		}
	})
}

// TestLoginCredentialsJSON: Login sends the app's credentials as they
// marshal.
func TestLoginCredentialsJSON(t *testing.T) {
	s := newAuthServer(t)
	s.addCode("bob", "xyz")
	db := dbtest.OpenDB(t, nil)
	l, err := db.Login(context.Background(), s.URL, map[string]string{"user": "bob", "code": "xyz"})
	if err != nil || l.User != "bob" {
		t.Fatalf("Login = %+v, %v", l, err)
	}
	if _, err := db.Login(context.Background(), s.URL, func() {}); err == nil {
		t.Error("Login with credentials that do not marshal succeeded")
	}
}

// BenchmarkSignRequest measures what signing adds to a sync request.
func BenchmarkSignRequest(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(nil)
	body := make([]byte, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		h, err := authz.SignRequest(key, "test-deployment", authz.Request{Method: "POST", Host: "127.0.0.1:8080",
			PathQuery: "/v1/sync", Body: authz.BodyDigest(body)}, time.Now(), authz.NewNonce(), "")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(h)), "header-bytes")
	}
}
