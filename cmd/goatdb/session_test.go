package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// sessionRow is one line of 'goatdb session list --json'.
type sessionRow struct {
	Session string   `json:"session"`
	User    string   `json:"user"`
	Roles   []string `json:"roles"`
	Expires string   `json:"expires"`
	Revoked bool     `json:"revoked"`
}

// listSessions runs 'goatdb session list' and its --json form on the
// server's directory, checks that they agree, and returns the rows.
func listSessionRows(t *testing.T, srvDir string) []sessionRow {
	t.Helper()
	var rows []sessionRow
	for _, l := range splitLines(ok(t, srvDir, "session", "list", "--json")) {
		var r sessionRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("session list --json: %v: %q", err, l)
		}
		rows = append(rows, r)
	}
	table := splitLines(ok(t, srvDir, "session", "list"))
	if len(rows) == 0 {
		if len(table) != 1 || !strings.HasPrefix(table[0], "no sessions") {
			t.Errorf("session list without sessions: %q", table)
		}
		return nil
	}
	if len(table) != len(rows)+1 || strings.Join(strings.Fields(table[0]), " ") != "SESSION USER ROLES EXPIRES REVOKED" {
		t.Fatalf("session list:\n%s", strings.Join(table, "\n"))
	}
	for i, r := range rows {
		user, roles, revoked := r.User, strings.Join(r.Roles, ","), "no"
		if user == "" {
			user = "-"
		}
		if roles == "" {
			roles = "-"
		}
		if r.Revoked {
			revoked = "yes"
		}
		want := []string{r.Session, user, roles, r.Expires, revoked}
		if got := strings.Fields(table[i+1]); !slices.Equal(got, want) {
			t.Errorf("session list line %d: %q, want the fields %q as --json says", i+2, table[i+1], want)
		}
	}
	return rows
}

// findSession returns the row of a session, failing the test if none.
func findSession(t *testing.T, rows []sessionRow, session string) sessionRow {
	t.Helper()
	i := slices.IndexFunc(rows, func(r sessionRow) bool { return r.Session == session })
	if i < 0 {
		t.Fatalf("session %s is not listed: %+v", session, rows)
	}
	return rows[i]
}

// TestSessionListRevoke logs two devices of one user in, lists their
// sessions, and revokes them one by one: through the admin socket, then
// on the stopped server's directory. A revoked device's sync tells it to
// log in again, and logging in again works.
func TestSessionListRevoke(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	if rows := listSessionRows(t, srvDir); len(rows) != 0 {
		t.Errorf("sessions before any login: %+v", rows)
	}
	srv := startServe(t, srvDir)
	laptop := loggedIn(t, srvDir, srv.url, "alice", "team")
	phone := loggedIn(t, srvDir, srv.url, "alice", "team")
	mustPut(t, laptop, "/data/tasks/t1", `{"title": "x"}`)
	syncOK(t, laptop, srv.url)
	syncOK(t, phone, srv.url, "/data/tasks")
	ls, ps := sessionOf(t, laptop), sessionOf(t, phone)

	rows := listSessionRows(t, srvDir)
	if len(rows) != 2 {
		t.Fatalf("session list: %+v, want the two devices", rows)
	}
	for _, s := range []string{ls, ps} {
		r := findSession(t, rows, s)
		exp, err := time.Parse(time.RFC3339, r.Expires)
		if r.User != "alice" || !slices.Equal(r.Roles, []string{"team"}) || r.Revoked || err != nil {
			t.Errorf("session %s: %+v (%v), want alice, [team], not revoked", s, r, err)
		}
		if d := time.Until(exp); d < 29*24*time.Hour || d > 31*24*time.Hour {
			t.Errorf("session %s expires in %v, want about 30 days", s, d)
		}
	}

	if got := ok(t, srvDir, "session", "revoke", ps); !strings.HasPrefix(got, "revoked session "+ps) {
		t.Errorf("session revoke: %q", got)
	}
	mustNotSync(t, phone, srv.url)
	syncOK(t, laptop, srv.url)
	if r := findSession(t, listSessionRows(t, srvDir), ps); !r.Revoked {
		t.Errorf("revoked session listed as %+v", r)
	}
	stranger := sessionOf(t, newDir(t))
	failure(t, cli(t, srvDir, "", "session", "revoke", stranger), 2, "no session "+stranger)

	// Server stopped: revoke the other one on its directory.
	addr := strings.TrimPrefix(srv.url, "http://")
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exit %d, stderr %q", code, srv.stderr)
	}
	ok(t, srvDir, "session", "revoke", ls)
	for _, r := range listSessionRows(t, srvDir) {
		if !r.Revoked {
			t.Errorf("server stopped, after revoking both: %+v", r)
		}
	}
	failure(t, cli(t, srvDir, "", "session", "revoke", stranger), 2, "no session "+stranger)
	srv = startServe(t, srvDir, "--addr", addr)
	mustNotSync(t, laptop, srv.url)

	// A revoked device logs in again with a new code, at once.
	login(t, phone, srv.url, "alice", addUser(t, srvDir, "alice", "team"))
	syncOK(t, phone, srv.url)
	if r := findSession(t, listSessionRows(t, srvDir), ps); r.Revoked {
		t.Errorf("session logged in again is listed as %+v", r)
	}
}
