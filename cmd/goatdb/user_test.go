package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// codeLineRE is the line of 'goatdb user add' before the code.
var codeLineRE = regexp.MustCompile(`^one-time login code for (\S+)( \(roles [^)]*\))?, expires (\S+):$`)

// addUser runs 'goatdb user add' on the server's directory, checks what
// it prints, and returns the login code, its last line.
func addUser(t *testing.T, srvDir, name string, roles ...string) string {
	t.Helper()
	args := []string{"user", "add", name}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	lines := splitLines(ok(t, srvDir, args...))
	if len(lines) != 2 || loginCodeRE.FindString(lines[1]) != lines[1] {
		t.Fatalf("user add %s printed %q, want a line about the code, then the code", name, lines)
	}
	m := codeLineRE.FindStringSubmatch(lines[0])
	if m == nil || m[1] != name {
		t.Fatalf("user add %s: first line %q does not say for whom the code is and when it expires", name, lines[0])
	}
	if sorted := slices.Compact(slices.Sorted(slices.Values(roles))); len(roles) > 0 && m[2] != " (roles "+strings.Join(sorted, ", ")+")" {
		t.Errorf("user add %s: first line %q does not name the roles %v", name, lines[0], roles)
	}
	exp, err := time.Parse(time.RFC3339, m[3])
	if err != nil {
		t.Fatalf("user add %s: expiry %q: %v", name, m[3], err)
	}
	if d := time.Until(exp); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("user add %s: the code expires in %v, want about 24h", name, d)
	}
	return lines[1]
}

// login runs 'goatdb login' in a client directory, which must succeed.
func login(t *testing.T, dir, url, name, code string) {
	t.Helper()
	if r := cli(t, dir, "", "login", url, name, "--code", code); r.code != 0 || r.stderr != "" {
		t.Fatalf("login %s %s: exit %d, stdout %q, stderr %q", url, name, r.code, r.stdout, r.stderr)
	}
}

// loggedIn returns a new client directory logged in to the server at url
// as user name, added on the server's directory srvDir for it.
func loggedIn(t *testing.T, srvDir, url, name string, roles ...string) string {
	t.Helper()
	dir := newDir(t)
	login(t, dir, url, name, addUser(t, srvDir, name, roles...))
	return dir
}

// sessionOf returns a client directory's session id.
func sessionOf(t *testing.T, dir string) string {
	t.Helper()
	var out struct{ Session string }
	if err := json.Unmarshal([]byte(ok(t, dir, "init", "--json")), &out); err != nil || out.Session == "" {
		t.Fatalf("init --json: %v %+v", err, out)
	}
	return out.Session
}

// mustNotSync checks that a sync of /data/tasks fails as one that must
// log in (again): a non-zero exit and one "goatdb:" line that says to run
// 'goatdb login'.
func mustNotSync(t *testing.T, dir, url string) {
	t.Helper()
	r := cli(t, dir, "", "sync", url, "/data/tasks")
	if r.code == 0 || !strings.HasPrefix(r.stderr, "goatdb: ") || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, "goatdb login") {
		t.Errorf("sync that must log in: exit %d, stdout %q, stderr %q; want a non-zero exit and one goatdb: line saying 'goatdb login'",
			r.code, r.stdout, r.stderr)
	}
}

// TestUserAddServerRunning adds a user beside a running server, through
// its admin socket: the code logs one client in, once.
func TestUserAddServerRunning(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	srv := startServe(t, srvDir)
	code := addUser(t, srvDir, "alice")

	a := newDir(t)
	mustPut(t, a, "/data/tasks/t1", `{"title": "from alice"}`)
	mustNotSync(t, a, srv.url)
	login(t, a, srv.url, "alice", code)
	if sent, _, _, _ := syncOK(t, a, srv.url); sent != "1" {
		t.Errorf("sync after login sent %s commits, want 1", sent)
	}

	// The code was used up: another device cannot log in with it.
	b := newDir(t)
	failure(t, cli(t, b, "", "login", srv.url, "alice", "--code", code), 2, "code")
	mustNotSync(t, b, srv.url)
	// A wrong code does not work either; a new one does.
	failure(t, cli(t, b, "", "login", srv.url, "alice", "--code", "AAAAAAAA-AAAAAAAA-AAAAAAAA"), 2, "code")
	login(t, b, srv.url, "alice", addUser(t, srvDir, "alice"))
	syncOK(t, b, srv.url, "/data/tasks")
	if got := ok(t, b, "get", "/data/tasks/t1"); got != `{"title":"from alice"}`+"\n" {
		t.Errorf("get on the second device: %q", got)
	}
	if code := srv.stop(); code != 0 {
		t.Errorf("serve exit %d, stderr %q", code, srv.stderr)
	}
}

// TestUserAddServerStopped adds users while no server runs, on the data
// directory itself, before the first start and between two.
func TestUserAddServerStopped(t *testing.T) {
	t.Parallel()
	srvDir := filepath.Join(t.TempDir(), "srv")
	ok(t, srvDir, "init") // never served yet
	code := addUser(t, srvDir, "alice", "admin")
	if _, err := os.Stat(filepath.Join(srvDir, "auth")); err != nil {
		t.Fatalf("user add on a new directory made no identity: %v", err)
	}

	srv := startServe(t, srvDir)
	a := newDir(t)
	login(t, a, srv.url, "alice", code)
	mustPut(t, a, "/data/tasks/t1", `{"title": "x"}`)
	syncOK(t, a, srv.url)
	failure(t, cli(t, newDir(t), "", "login", srv.url, "alice", "--code", code), 2, "code")
	addr := strings.TrimPrefix(srv.url, "http://")
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exit %d, stderr %q", code, srv.stderr)
	}
	if _, err := os.Stat(filepath.Join(srvDir, "admin.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket left after serve stopped: %v", err)
	}

	// Stopped again: a code made now works after the next start (on the
	// same address, where the first client's login still holds).
	code = addUser(t, srvDir, "bob")
	srv = startServe(t, srvDir, "--addr", addr)
	b := newDir(t)
	login(t, b, srv.url, "bob", code)
	syncOK(t, b, srv.url, "/data/tasks")
	syncOK(t, a, srv.url)
	failure(t, cli(t, newDir(t), "", "login", srv.url, "bob", "--code", code), 2, "code")
}

// TestUserListRevoke lists users with their roles, revokes one (whose
// client then must log in again), through the admin socket and on the
// stopped server's directory.
func TestUserListRevoke(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	if got := ok(t, srvDir, "user", "list"); got != "no users; 'goatdb user add NAME' adds one\n" {
		t.Errorf("user list without users: %q", got)
	}
	if _, err := os.Stat(filepath.Join(srvDir, "auth")); !os.IsNotExist(err) {
		t.Errorf("user list created the identity: %v", err)
	}
	srv := startServe(t, srvDir)
	alice := loggedIn(t, srvDir, srv.url, "alice", "team", "admin")
	bob := loggedIn(t, srvDir, srv.url, "bob")
	mustPut(t, bob, "/data/tasks/b", `{"by": "bob"}`)
	syncOK(t, bob, srv.url)

	const table = "NAME   ROLES       DISABLED\n" +
		"alice  admin,team  no\n" +
		"bob    -           no\n"
	if got := ok(t, srvDir, "user", "list"); got != table {
		t.Errorf("user list:\n%s\nwant:\n%s", got, table)
	}
	want := `{"name":"alice","roles":["admin","team"],"disabled":false}` + "\n" +
		`{"name":"bob","roles":[],"disabled":false}` + "\n"
	if got := ok(t, srvDir, "user", "list", "--json"); got != want {
		t.Errorf("user list --json:\n%s\nwant:\n%s", got, want)
	}

	unused := addUser(t, srvDir, "bob")
	if got := ok(t, srvDir, "user", "revoke", "bob"); !strings.HasPrefix(got, "revoked user bob") {
		t.Errorf("user revoke: %q", got)
	}
	mustNotSync(t, bob, srv.url)
	syncOK(t, alice, srv.url, "/data/tasks")
	failure(t, cli(t, srvDir, "", "user", "revoke", "nobody"), 2, "no user nobody")
	// A code made before the revocation does not log in.
	failure(t, cli(t, newDir(t), "", "login", srv.url, "bob", "--code", unused), 2, "code")

	const revoked = "NAME   ROLES       DISABLED\n" +
		"alice  admin,team  no\n" +
		"bob    -           yes\n"
	if got := ok(t, srvDir, "user", "list"); got != revoked {
		t.Errorf("user list after revoke:\n%s\nwant:\n%s", got, revoked)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exit %d, stderr %q", code, srv.stderr)
	}
	// The same, on the stopped server's directory.
	if got := ok(t, srvDir, "user", "list"); got != revoked {
		t.Errorf("user list, server stopped:\n%s\nwant:\n%s", got, revoked)
	}
	failure(t, cli(t, srvDir, "", "user", "revoke", "nobody"), 2, "no user nobody")
	ok(t, srvDir, "user", "revoke", "alice")
	if got := ok(t, srvDir, "user", "list", "--json"); !strings.Contains(got, `{"name":"alice","roles":["admin","team"],"disabled":true}`) {
		t.Errorf("user list --json after revoking alice, server stopped: %q", got)
	}
	srv = startServe(t, srvDir)
	mustNotSync(t, alice, srv.url)
}

// TestUserSessionUsage checks the account commands' bad usage and input:
// exit 2, one line, and nothing written.
func TestUserSessionUsage(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	addUser(t, dir, "alice")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"user"}, "user needs add NAME, list or revoke NAME"},
		{[]string{"user", "frob"}, `unknown user command "frob"`},
		{[]string{"user", "add"}, "user add takes one NAME"},
		{[]string{"user", "add", "a", "b"}, "user add takes one NAME"},
		{[]string{"user", "add", "a b"}, `invalid user name "a b"`},
		{[]string{"user", "add", ".."}, `invalid user name ".."`},
		{[]string{"user", "add", strings.Repeat("x", 129)}, "invalid user name"},
		{[]string{"user", "add", "bob", "--role", "a/b"}, `invalid role "a/b"`},
		{[]string{"user", "add", "bob", "--role", strings.Repeat("r", 65)}, "invalid role"},
		{[]string{"user", "list", "x"}, "user list takes no arguments"},
		{[]string{"user", "list", "--role", "x"}, "--role goes with user add"},
		{[]string{"user", "revoke"}, "user revoke takes one NAME"},
		{[]string{"user", "revoke", "a b"}, `invalid user name "a b"`},
		{[]string{"user", "revoke", "nobody"}, "no user nobody; 'goatdb user list' lists the users"},
		{[]string{"user", "add", "bob", "--json"}, "--json goes with user list"},
		{[]string{"session"}, "session needs list or revoke SESSION"},
		{[]string{"session", "frob"}, `unknown session command "frob"`},
		{[]string{"session", "list", "x"}, "session list takes no arguments"},
		{[]string{"session", "revoke"}, "session revoke takes one SESSION"},
		{[]string{"session", "revoke", "nope"}, `invalid session "nope"`},
		{[]string{"session", "revoke", strings.Repeat("A", 52)}, "no session " + strings.Repeat("A", 52) + " was ever logged in here"},
		{[]string{"session", "revoke", "x", "--json"}, "--json goes with session list"},
	}
	before := sizes(t, dir)
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			failure(t, cli(t, dir, "", tt.args...), 2, tt.want)
			if after := sizes(t, dir); !equalSizes(before, after) {
				t.Fatalf("files changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// Reading or revoking on a directory without accounts creates nothing.
	failure(t, cli(t, missing, "", "user", "list"), 1, "does not exist")
	failure(t, cli(t, missing, "", "session", "list"), 1, "does not exist")
	failure(t, cli(t, missing, "", "user", "revoke", "bob"), 1, "does not exist")
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed account command created %s", missing)
	}
}
