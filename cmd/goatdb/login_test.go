package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

// loginServer is the least of a goatdb server with authentication that
// login, logout and a refused sync need: it verifies every request's
// Goat-Auth header, answers refusals with 401 and the audience, takes
// one-time codes at /v1/auth/login and issues certificates chained to its
// root key, revokes at /v1/auth/logout, and refuses everything else from
// a session it has not certified.
type loginServer struct {
	url      string
	hs       *httptest.Server
	verifier *authz.Verifier
	root     ed25519.PrivateKey
	nodeKey  ed25519.PrivateKey
	node     *authz.NodeCertificate

	mu       sync.Mutex // guards the fields below
	codes    map[string]string
	certs    map[commit.SessionID]*authz.SessionCertificate
	verified []string // paths of the requests that verified
	refused  []error  // why the others did not (unsigned ones aside)
}

const testAudience = "cli-test"

func newLoginServer(t *testing.T) *loginServer {
	t.Helper()
	s := &loginServer{codes: map[string]string{}, certs: map[commit.SessionID]*authz.SessionCertificate{}}
	_, s.root, _ = ed25519.GenerateKey(nil)
	nodePub, nodeKey, _ := ed25519.GenerateKey(nil)
	s.nodeKey = nodeKey
	now := time.Now()
	var err error
	s.node, err = authz.IssueNode(s.root, authz.NodeFields{Node: "n1", Key: nodePub, NotBefore: now.Add(-time.Hour), Expires: now.Add(365 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s.verifier, err = authz.NewVerifier(testAudience, nil); err != nil {
		t.Fatal(err)
	}
	s.hs = httptest.NewServer(s)
	s.url = s.hs.URL
	t.Cleanup(s.hs.Close)
	return s
}

func (s *loginServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := r.Header.Get(authz.AuthHeaderName)
	if h == "" {
		s.unauthorized(w, "request not signed")
		return
	}
	session, err := s.verifier.Verify(h, authz.Request{Method: r.Method, Host: r.Host, PathQuery: r.RequestURI, Body: authz.BodyDigest(body)})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.refused = append(s.refused, err)
		s.unauthorized(w, err.Error())
		return
	}
	s.verified = append(s.verified, r.URL.Path)
	switch r.URL.Path {
	case "/v1/auth/login":
		var in struct{ User, Code string }
		if json.Unmarshal(body, &in) != nil || in.Code == "" || s.codes[in.User] != in.Code {
			s.unauthorized(w, "the login code for "+in.User+" is wrong, used or expired")
			return
		}
		delete(s.codes, in.User)
		now := time.Now()
		cert, err := authz.Issue(s.nodeKey, s.node, authz.SessionFields{Session: session, User: in.User, Roles: []string{"dev"},
			NotBefore: now, Expires: now.Add(30 * 24 * time.Hour), Audience: testAudience})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		s.certs[session] = cert
		json.NewEncoder(w).Encode(map[string]any{"user": in.User, "roles": cert.Roles(), "session": session.String(),
			"certificate": base64.StdEncoding.EncodeToString(cert.Encode()), "expires": cert.Expires().UTC().Format(time.RFC3339),
			"audience": testAudience, "root": base64.StdEncoding.EncodeToString(s.root.Public().(ed25519.PublicKey))})
	case "/v1/auth/logout":
		delete(s.certs, session)
		io.WriteString(w, "{}\n")
	default:
		if s.certs[session] == nil {
			s.unauthorized(w, "session "+session.String()+" is not logged in")
			return
		}
		http.Error(w, "not served here", http.StatusNotImplemented)
	}
}

func (s *loginServer) unauthorized(w http.ResponseWriter, reason string) {
	w.Header().Set("Goat-Audience", testAudience)
	http.Error(w, reason, http.StatusUnauthorized)
}

func (s *loginServer) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.refused {
		if !errors.Is(err, authz.ErrReplay) {
			t.Errorf("the server refused a signed request: %v", err)
		}
	}
}

func TestLoginWhoamiLogout(t *testing.T) {
	t.Parallel()
	s := newLoginServer(t)
	dir := newDir(t)
	s.codes["alice"] = "c0de"

	if got := ok(t, dir, "whoami"); got != "not logged in\n" {
		t.Errorf("whoami before login: %q", got)
	}
	out := ok(t, dir, "login", s.url+"/", "alice", "--code", "c0de")
	lines := strings.Split(out, "\n")
	if len(lines) != 5 || lines[0] != "user:    alice" || lines[1] != "roles:   dev" || lines[2] != "server:  "+s.url ||
		!strings.HasPrefix(lines[3], "expires: ") {
		t.Fatalf("login printed %q", out)
	}
	exp, err := time.Parse(time.RFC3339, strings.TrimPrefix(lines[3], "expires: "))
	if err != nil || time.Until(exp) < 29*24*time.Hour {
		t.Errorf("login expiry %q: %v, want in 30 days", lines[3], err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("credentials.json: %v; want mode 0600", err)
	}
	if got := ok(t, dir, "whoami"); got != out {
		t.Errorf("whoami printed %q, want what login printed, %q", got, out)
	}
	var j loginJSON
	if err := json.Unmarshal([]byte(ok(t, dir, "whoami", "--json")), &j); err != nil || j.Server != s.url || j.User != "alice" ||
		len(j.Roles) != 1 || j.Expires != lines[3][len("expires: "):] || len(j.Session) != 52 {
		t.Errorf("whoami --json: %+v, %v", j, err)
	}

	if got := ok(t, dir, "logout"); got != "logged out of "+s.url+"\n" {
		t.Errorf("logout printed %q", got)
	}
	if got := ok(t, dir, "whoami"); got != "not logged in\n" {
		t.Errorf("whoami after logout: %q", got)
	}
	if got := ok(t, dir, "logout"); got != "not logged in\n" {
		t.Errorf("logout when logged out: %q", got)
	}
	s.mu.Lock()
	verified := strings.Join(s.verified, " ")
	s.mu.Unlock()
	if verified != "/v1/auth/login /v1/auth/logout" {
		t.Errorf("verified requests: %s; want the login and the logout", verified)
	}
	s.check(t)
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	s := newLoginServer(t)
	dir := newDir(t)
	s.codes["bob"] = "right"

	r := cli(t, dir, "", "login", s.url, "bob", "--code", "wrong")
	failure(t, r, 2, "the login code for bob is wrong, used or expired")
	if got := ok(t, dir, "whoami"); got != "not logged in\n" {
		t.Errorf("whoami after a refused login: %q", got)
	}
	ok(t, dir, "login", s.url, "bob", "--code", "right")
	failure(t, cli(t, newDir(t), "", "login", s.url, "bob", "--code", "right"), 2, "wrong, used or expired")

	failure(t, cli(t, dir, "", "login", s.url, "bob"), 2, "login needs --code CODE")
	failure(t, cli(t, dir, "", "login", s.url), 2, "login needs the server URL and the user NAME")
	failure(t, cli(t, dir, "", "login", "ftp://x", "bob", "--code", "c"), 2, "want http:// or https://")
	failure(t, cli(t, dir, "", "logout", "a", "b"), 2, "logout takes at most one URL")
	failure(t, cli(t, dir, "", "whoami", "x"), 2, "whoami takes no arguments")

	missing := filepath.Join(t.TempDir(), "missing")
	failure(t, cli(t, missing, "", "whoami"), 1, "does not exist")
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("whoami created the directory: %v", err)
	}

	// The server goes away: logout forgets the login and says so.
	s.hs.Close()
	failure(t, cli(t, dir, "", "logout", s.url), 2, "the login is forgotten here, but the server was not told")
	if got := ok(t, dir, "whoami"); got != "not logged in\n" {
		t.Errorf("whoami after logout from a server that is down: %q", got)
	}
	s.check(t)
}

// TestSyncNotLoggedIn: a sync to a server that refuses the session exits
// with one line that says to log in.
func TestSyncNotLoggedIn(t *testing.T) {
	t.Parallel()
	s := newLoginServer(t)
	dir := newDir(t)
	mustPut(t, dir, "/data/tasks/t1", `{"title": "x"}`)
	r := cli(t, dir, "", "sync", s.url)
	failure(t, r, 2, "goatdb login "+s.url+" NAME --code CODE")
	if !strings.Contains(r.stderr, "is not logged in") || strings.Contains(r.stderr, "unreachable") {
		t.Errorf("stderr %q: want the server's reason", r.stderr)
	}
	s.mu.Lock()
	n := len(s.verified)
	s.mu.Unlock()
	if n == 0 {
		t.Error("no sync request verified")
	}
	s.check(t)
}

// TestWhoamiBesideWriter: whoami only reads.
func TestWhoamiBesideWriter(t *testing.T) {
	t.Parallel()
	s := newLoginServer(t)
	dir := newDir(t)
	s.codes["carol"] = "k"
	ok(t, dir, "login", s.url, "carol", "--code", "k")
	before := sizes(t, dir)
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--dir", dir, "whoami"}, strings.NewReader(""), &out, &errb); code != 0 ||
		!strings.HasPrefix(out.String(), "user:    carol\n") {
		t.Errorf("whoami: exit %d, %q, %q", code, out.String(), errb.String())
	}
	if after := sizes(t, dir); !equalSizes(before, after) {
		t.Errorf("whoami changed the directory:\nbefore %v\nafter  %v", before, after)
	}
}
