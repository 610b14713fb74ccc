package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
)

// token logs user in through the JSON API with a fresh login code.
func (r *authRig) token(user string, roles ...string) string {
	r.t.Helper()
	code, _, err := r.acc.AddUser(user, roles)
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"user": user, "code": code})
	st, m, h := apiCall(r.t, "POST", r.run.url+"/v1/auth/token", string(body), nil)
	if st != http.StatusOK || m["token"] == "" || m["user"] != user {
		r.t.Fatalf("token for %s: %d %v", user, st, m)
	}
	if c := h.Get("Set-Cookie"); !strings.Contains(c, tokenCookie+"=") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") {
		r.t.Fatalf("cookie %q: want an HttpOnly, SameSite=Strict %s", c, tokenCookie)
	}
	return m["token"].(string)
}

const tokenCookie = "goatdb_token"

func bearerOf(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// TestAPITokenAuthorization: with the default rules, a user's token reads
// and writes its own /user/NAME repository; another user's item reads as
// missing (the same answer as for an item that does not exist), a write
// there is refused as a sync push of it would be, and the repository is
// not listed. Commits written with a token are signed by its web
// session, certified as the user. Logging out ends the token.
func TestAPITokenAuthorization(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	alice := rig.token("alice")
	mustPut(t, rig.db, "/user/bob/secret", goatdb.Fields{"v": "bob's"})
	base := rig.run.url + "/v1/items"

	st, it, _ := apiCall(t, "PUT", base+"/user/alice/a", `{"v": "mine"}`, bearerOf(alice))
	if st != http.StatusCreated {
		t.Fatalf("alice writes her own item: %d %v", st, it)
	}
	got, err := rig.db.Get("/user/alice/a")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rig.db.Repo("/user/alice")
	c, _ := r.Commit(got.Head())
	if c.Session() == rig.db.Session() {
		t.Fatal("the write is signed by the server's session, want alice's web session")
	}
	if p, err := rig.acc.Current(c.Session()); err != nil || p.User() != "alice" {
		t.Fatalf("the commit's session is certified as %v (%v), want alice", p, err)
	}

	stSecret, secret, _ := apiCall(t, "GET", base+"/user/bob/secret", "", bearerOf(alice))
	stMissing, missing, _ := apiCall(t, "GET", base+"/user/bob/nothing", "", bearerOf(alice))
	if stSecret != http.StatusNotFound || stMissing != http.StatusNotFound || secret["error"] != missing["error"] ||
		strings.Replace(secret["reason"].(string), "secret", "nothing", 1) != missing["reason"] {
		t.Fatalf("bob's item %d %v vs a missing one %d %v: want the same 404", stSecret, secret, stMissing, missing)
	}
	for _, sub := range []string{"/history", "/diff"} {
		if st, _, _ := apiCall(t, "GET", base+"/user/bob/secret"+sub, "", bearerOf(alice)); st != http.StatusNotFound {
			t.Errorf("GET bob's item%s: %d, want 404", sub, st)
		}
	}
	if st, _, _ := apiCall(t, "GET", rig.run.url+"/v1/repos/user/bob/items", "", bearerOf(alice)); st != http.StatusNotFound {
		t.Errorf("listing bob's repository: %d, want 404", st)
	}
	if st, _, _ := apiCall(t, "GET", rig.run.url+"/v1/changes?repo=/user/bob", "", bearerOf(alice)); st != http.StatusNotFound {
		t.Errorf("changes of bob's repository: %d, want 404", st)
	}
	st, e, _ := apiCall(t, "PUT", base+"/user/bob/x", `{"v": "planted"}`, bearerOf(alice))
	if st != http.StatusForbidden || !strings.Contains(e["reason"].(string), "refused") {
		t.Fatalf("alice writes to bob's repository: %d %v, want 403 refused", st, e)
	}
	if _, err := rig.db.Get("/user/bob/x"); err == nil {
		t.Fatal("the refused write was stored")
	}
	// The same commit pushed by sync is refused too.
	cl := rig.client().login("alice2")
	cl.put("/user/bob", "y", map[string]item.Value{"v": str("planted")})
	if stats, err := cl.sync("/user/bob"); err == nil && len(stats.Rejected) == 0 {
		t.Fatalf("sync push to bob's repository: %+v, want it rejected", stats)
	}

	st, list, _ := apiCall(t, "GET", rig.run.url+"/v1/repos", "", bearerOf(alice))
	b, _ := json.Marshal(list)
	if st != 200 || !strings.Contains(string(b), "/user/alice") || strings.Contains(string(b), "/user/bob") || strings.Contains(string(b), "/sys/") {
		t.Fatalf("repos for alice: %d %s", st, b)
	}
	if st, _, _ := apiCall(t, "GET", base+"/user/alice/a", "", nil); st != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", st)
	}
	// A cookie-authenticated write from another origin is refused.
	st, e, _ = apiCall(t, "PUT", base+"/user/alice/a", `{"v": "csrf"}`, map[string]string{
		"Cookie": tokenCookie + "=" + alice, "Origin": "http://evil.example"})
	if st != http.StatusForbidden {
		t.Fatalf("cross-origin cookie write: %d %v, want 403", st, e)
	}
	if st, _, _ := apiCall(t, "PUT", base+"/user/alice/a", `{"v": "same origin"}`, map[string]string{
		"Cookie": tokenCookie + "=" + alice, "Origin": rig.run.url}); st != http.StatusOK {
		t.Fatalf("same-origin cookie write: %d, want 200", st)
	}
	if st, _, _ := apiCall(t, "DELETE", rig.run.url+"/v1/auth/token", "", bearerOf(alice)); st != http.StatusNoContent {
		t.Fatalf("log out: %d", st)
	}
	if st, _, _ := apiCall(t, "GET", base+"/user/alice/a", "", bearerOf(alice)); st != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", st)
	}
}

// TestAPIRevokedToken: revoking the user ends its tokens at once.
func TestAPIRevokedToken(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	tok := rig.token("carol")
	if st, _, _ := apiCall(t, "GET", rig.run.url+"/v1/auth/session", "", bearerOf(tok)); st != 200 {
		t.Fatalf("session: %d", st)
	}
	if err := rig.acc.RevokeUser("carol"); err != nil {
		t.Fatal(err)
	}
	if st, e, _ := apiCall(t, "GET", rig.run.url+"/v1/auth/session", "", bearerOf(tok)); st != http.StatusUnauthorized {
		t.Fatalf("revoked user's token: %d %v, want 401", st, e)
	}
}

// TestAPIPerItemRules: with a rule that decides item by item, an item the
// user may not read is missing on every JSON route (get, at, history,
// diff, patch, delete, listings, the changes stream), and a write the
// rule refuses is refused, as the same commit pushed by sync is.
func TestAPIPerItemRules(t *testing.T) {
	var b authz.Builder
	b.Handle("/docs/{repo}/{id}", authz.Rule{
		Scope: authz.ByItem,
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, it item.Item) bool {
			pub, _ := it.Get("public")
			owner, _ := it.Get("owner")
			return pub.Any() == true || owner.Any() == p.User
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, before, after item.Item) error {
			if owner, _ := after.Get("owner"); owner.Any() != p.User {
				return errors.New("the owner field must name the writer")
			}
			if owner, ok := before.Get("owner"); ok && owner.Any() != p.User {
				return errors.New("only the owner edits an item")
			}
			return nil
		},
	})
	rules, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	rig := newAuthRig(t, rules, nil)
	mustPut(t, rig.db, "/docs/team/open", goatdb.Fields{"owner": "bob", "public": true, "v": 1})
	mustPut(t, rig.db, "/docs/team/closed", goatdb.Fields{"owner": "bob", "public": false, "v": 1})
	alice := rig.token("alice")
	a := bearerOf(alice)
	base := rig.run.url + "/v1/items/docs/team/"

	if st, _, _ := apiCall(t, "GET", base+"open", "", a); st != 200 {
		t.Fatalf("public item: %d", st)
	}
	head, _ := rig.db.Get("/docs/team/closed")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "closed", ""}, {"GET", "closed?at=" + head.Head().String(), ""}, {"GET", "closed/history", ""},
		{"GET", "closed/diff", ""}, {"PATCH", "closed", `{"v": 2}`}, {"DELETE", "closed", ""},
	} {
		st, e, _ := apiCall(t, tc.method, base+tc.path, tc.body, a)
		if st != http.StatusNotFound || !strings.Contains(e["reason"].(string), "does not exist") {
			t.Errorf("%s %s: %d %v, want 404 as for a missing item", tc.method, tc.path, st, e)
		}
	}
	st, page, _ := apiCall(t, "GET", rig.run.url+"/v1/repos/docs/team/items", "", a)
	if b, _ := json.Marshal(page); st != 200 || !strings.Contains(string(b), "open") || strings.Contains(string(b), "closed") {
		t.Fatalf("listing: %d %s", st, b)
	}
	st, repos, _ := apiCall(t, "GET", rig.run.url+"/v1/repos", "", a)
	if b, _ := json.Marshal(repos); st != 200 || !strings.Contains(string(b), `"items":1`) {
		t.Fatalf("repos: %d %s, want /docs/team with the 1 item alice may read", st, b)
	}
	// Writes the rule refuses, and the same refused by sync.
	if st, e, _ := apiCall(t, "PUT", base+"mine", `{"owner": "bob"}`, a); st != http.StatusForbidden ||
		!strings.Contains(e["reason"].(string), "owner field must name the writer") {
		t.Fatalf("write naming another owner: %d %v", st, e)
	}
	if st, e, _ := apiCall(t, "PATCH", base+"open", `{"v": 9}`, a); st != http.StatusForbidden {
		t.Fatalf("edit of bob's public item: %d %v", st, e)
	}
	cl := rig.client().login("alice3")
	cl.put("/docs/team", "mine2", map[string]item.Value{"owner": str("bob")})
	if stats, err := cl.sync("/docs/team"); err == nil && len(stats.Rejected) == 0 {
		t.Fatalf("sync push naming another owner: %+v, want it rejected", stats)
	}
	if st, _, _ := apiCall(t, "PUT", base+"mine", `{"owner": "alice", "public": false}`, a); st != http.StatusCreated {
		t.Fatalf("alice's own item: %d", st)
	}
	// The changes stream carries only what alice may read.
	resp := openChanges(t, rig.run.url+"/v1/changes?repo=/docs/team&since=0.0", alice)
	defer resp.Body.Close()
	seen := readEvents(t, resp, "ready")
	if !strings.Contains(seen, `"key":"open"`) || !strings.Contains(seen, `"key":"mine"`) || strings.Contains(seen, "closed") {
		t.Fatalf("changes: %s", seen)
	}
}

func openChanges(t *testing.T, url, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	return resp
}

// readEvents returns the stream's text up to the first event named
// until, or fails after 10 seconds.
func readEvents(t *testing.T, resp *http.Response, until string) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		var sb strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			sb.WriteString(sc.Text() + "\n")
			if sc.Text() == "event: "+until {
				break
			}
		}
		done <- sb.String()
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no " + until + " event")
	}
	return ""
}

// TestAPIServerInfo: a user sees the health and the quotas; the whole
// server's counters only an admin sees.
func TestAPIServerInfo(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	st, user, _ := apiCall(t, "GET", rig.run.url+"/v1/server", "", bearerOf(rig.token("dave")))
	if st != 200 || user["status"] != "ok" || user["quotas"] == nil || user["metrics"] != nil {
		t.Fatalf("a user's server page: %d %v; want status and quotas, no metrics", st, user)
	}
	st, admin, _ := apiCall(t, "GET", rig.run.url+"/v1/server", "", bearerOf(rig.token("erin", server.AdminRole)))
	if st != 200 || admin["metrics"] == nil || admin["repos_open"] == nil {
		t.Fatalf("an admin's server page: %d %v; want the metrics", st, admin)
	}
}
