package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
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
