package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// ownerServer serves, with authentication, rules under which a task of
// /data/tasks is written by its owner alone, and returns its URL and a
// function that makes a one-time login code for a user.
func ownerServer(t *testing.T) (url string, code func(user string) string) {
	t.Helper()
	rules := dbtest.OwnerRules(t)
	id, _, err := server.NewIdentity("cli-test")
	if err != nil {
		t.Fatal(err)
	}
	db, err := goatdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(db, &server.Options{RateLimit: -1, Auth: &server.AuthOptions{Identity: id, Rules: rules}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		db.Close()
	})
	return hs.URL, func(user string) string {
		c, _, err := srv.Accounts().AddUser(user, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestRejectedReauthorDiscard: a write the server's rules refuse is
// listed by rejected (text and --json), written again by reauthor (and
// refused again, the rule being what it is), and dropped by discard.
func TestRejectedReauthorDiscard(t *testing.T) {
	url, code := ownerServer(t)
	alice, bob := newDir(t), newDir(t)
	ok(t, alice, "login", url, "alice", "--code", code("alice"))
	mustPut(t, alice, "/data/tasks/t1", `{"owner": "alice", "title": "a"}`)
	ok(t, alice, "sync", url)
	ok(t, bob, "login", url, "bob", "--code", code("bob"))
	ok(t, bob, "sync", url, "/data/tasks")
	if out := ok(t, bob, "rejected"); out != "no rejected writes\n" {
		t.Fatalf("rejected before any refusal: %q", out)
	}
	refused := mustPut(t, bob, "/data/tasks/t1", `{"title": "mine"}`)
	if r := cli(t, bob, "", "sync", url); r.code != exitFail || !strings.Contains(r.stdout, "only alice may change this task") {
		t.Fatalf("sync of a refused write: %+v", r)
	}

	out := ok(t, bob, "rejected", "/data/tasks")
	if !strings.HasPrefix(out, "/data/tasks/t1 "+refused+": rejected by "+url+" at ") || !strings.Contains(out, "only alice may change this task") {
		t.Fatalf("rejected: %q", out)
	}
	var w rejectedJSON
	if err := json.Unmarshal([]byte(ok(t, bob, "rejected", "--json")), &w); err != nil ||
		w.Path != "/data/tasks/t1" || w.Commit != refused || w.Cause != refused || w.Server != url {
		t.Fatalf("rejected --json: %+v, %v", w, err)
	}
	if out := ok(t, bob, "get", "/data/tasks/t1"); !strings.Contains(out, `"title":"a"`) {
		t.Fatalf("get while the write is quarantined: %s", out)
	}

	failure(t, cli(t, bob, "", "reauthor", "/data/tasks/t1"), exitUsage, "--all")
	failure(t, cli(t, bob, "", "discard", "/data/tasks/t1", strings.Repeat("0", 64)), exitFail, "not a rejected write")
	failure(t, cli(t, bob, "", "rejected", "/data/nope"), exitFail, "not found")

	again := strings.TrimSpace(ok(t, bob, "reauthor", "/data/tasks/t1", refused))
	if !commitID.MatchString(again+"\n") || again == refused {
		t.Fatalf("reauthor printed %q, want a new commit id", again)
	}
	if out := ok(t, bob, "get", "/data/tasks/t1"); !strings.Contains(out, `"title":"mine"`) {
		t.Fatalf("get after reauthor: %s", out)
	}
	if r := cli(t, bob, "", "sync", url); r.code != exitFail {
		t.Fatalf("sync of the reauthored write: %+v, want it refused again", r)
	}
	if out := ok(t, bob, "rejected"); !strings.HasPrefix(out, "/data/tasks/t1 "+again+":") {
		t.Fatalf("rejected after the second refusal: %q", out)
	}

	ok(t, bob, "discard", "/data/tasks", "--all")
	if out := ok(t, bob, "rejected"); out != "no rejected writes\n" {
		t.Fatalf("rejected after discard: %q", out)
	}
	if out := ok(t, bob, "sync", url); !strings.Contains(out, "sent 0 commits") {
		t.Fatalf("sync after discard: %q", out)
	}
}
