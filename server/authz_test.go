package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
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

// syncBody is a valid sync request for one empty repository.
func syncBody(t *testing.T, c *client, path string) []byte {
	t.Helper()
	b, err := syncproto.EncodeRequest(&syncproto.Request{Session: c.sid, Repos: []syncproto.RepoRequest{{Path: path}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnsignedRequestRefused: every /v1 route refuses a request without a
// Goat-Auth header with 401, a reason and the deployment's audience;
// /healthz needs nothing, and /metrics is not on the public handler.
func TestUnsignedRequestRefused(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client()
	for _, rt := range []struct{ method, path string }{
		{"POST", "/v1/sync"}, {"GET", "/v1/events"}, {"POST", "/v1/auth/login"}, {"GET", "/v1/auth/whoami"},
	} {
		st, body, h := c.send(rt.method, rt.path, nil, "")
		if st != http.StatusUnauthorized || !strings.Contains(body, "not signed") || h.Get(server.AudienceHeader) != rig.id.Audience {
			t.Errorf("%s %s unsigned: %d %q audience %q", rt.method, rt.path, st, body, h.Get(server.AudienceHeader))
		}
	}
	if st, _, _ := c.send("GET", "/healthz", nil, ""); st != http.StatusOK {
		t.Errorf("/healthz: %d", st)
	}
	if st, _, _ := c.send("GET", "/metrics", nil, ""); st != http.StatusNotFound {
		t.Errorf("/metrics on the public handler: %d", st)
	}
}

// TestRequestSignatureBindsMethodPathBodyAudience: a signature made for
// another method, path, body or audience is refused.
func TestRequestSignatureBindsMethodPathBodyAudience(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	body := syncBody(t, c, "/data/x")
	if st, b, _ := c.do("POST", "/v1/sync", body); st != http.StatusOK {
		t.Fatalf("a well-signed request: %d %s", st, b)
	}
	other := syncBody(t, c, "/data/y")
	for name, h := range map[string]string{
		"method": c.header("GET", "/v1/sync", body),
		"path":   c.header("POST", "/v1/sync?x=1", body),
		"body":   c.header("POST", "/v1/sync", other),
		"audience": func() string {
			h, _ := authz.SignRequest(c.key, "other-deployment", reqOf(rig, "POST", "/v1/sync", body), c.now(), authz.NewNonce(), "")
			return h
		}(),
	} {
		if st, b, _ := c.send("POST", "/v1/sync", body, h); st != http.StatusUnauthorized {
			t.Errorf("signed for another %s: %d %s", name, st, b)
		}
	}
	// Another key signing as alice's session: the header names the
	// session the signature must verify against.
	mallory := rig.client()
	h := c.header("POST", "/v1/sync", body)
	forged, _ := authz.SignRequest(mallory.key, rig.id.Audience, reqOf(rig, "POST", "/v1/sync", body), c.now(), authz.NewNonce(), "")
	forged = strings.Replace(forged, sessionField(forged), sessionField(h), 1)
	if st, _, _ := c.send("POST", "/v1/sync", body, forged); st != http.StatusUnauthorized {
		t.Errorf("a signature by another key under alice's session: %d", st)
	}
}

func reqOf(rig *authRig, method, path string, body []byte) authz.Request {
	return authz.Request{Method: method, Host: strings.TrimPrefix(rig.run.url, "http://"), PathQuery: path, Body: authz.BodyDigest(body)}
}

// sessionField returns the s= field of a Goat-Auth header.
func sessionField(h string) string {
	for _, f := range strings.Split(h, ";") {
		if f = strings.TrimSpace(f); strings.HasPrefix(f, "s=") {
			return f
		}
	}
	return ""
}

// TestReplayedRequestRefused: the same signed request twice is refused
// the second time; one signed outside the window is refused as stale.
func TestReplayedRequestRefused(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	body := syncBody(t, c, "/data/x")
	h := c.header("POST", "/v1/sync", body)
	if st, _, _ := c.send("POST", "/v1/sync", body, h); st != http.StatusOK {
		t.Fatalf("first: %d", st)
	}
	if st, b, _ := c.send("POST", "/v1/sync", body, h); st != http.StatusUnauthorized || !strings.Contains(b, "replay") {
		t.Fatalf("replayed: %d %s", st, b)
	}
	rig.clock.Add(2 * time.Minute)
	if st, b, _ := c.send("POST", "/v1/sync", body, h); st != http.StatusUnauthorized {
		t.Fatalf("replayed after the window: %d %s", st, b)
	}
}

// TestClockSkewNonceChallenge: a client whose clock is 10 minutes fast is
// refused with a Goat-Nonce; signing again with it as the echo succeeds.
func TestClockSkewNonceChallenge(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	c.now = func() time.Time { return rig.clock.Now().Add(10 * time.Minute) }
	body := syncBody(t, c, "/data/x")
	st, _, h := c.do("POST", "/v1/sync", body)
	nonce := h.Get(server.NonceHeader)
	if st != http.StatusUnauthorized || nonce == "" {
		t.Fatalf("skewed: %d, nonce %q", st, nonce)
	}
	c.echo = nonce
	if st, b, _ := c.do("POST", "/v1/sync", body); st != http.StatusOK {
		t.Fatalf("with the echoed nonce: %d %s", st, b)
	}
}

// TestExpiredCertificate401AndRenew: a renewal while the certificate is
// valid gives a new one; once every certificate expired, requests get 401
// and renewal is refused: the session must log in again.
func TestExpiredCertificate401AndRenew(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	first, err := rig.acc.Current(c.sid)
	if err != nil {
		t.Fatal(err)
	}
	rig.clock.Add(20 * 24 * time.Hour)
	st, b, _ := c.do("POST", "/v1/auth/renew", nil)
	if st != http.StatusOK {
		t.Fatalf("renew: %d %s", st, b)
	}
	var ans struct{ Expires string }
	if err := json.Unmarshal([]byte(b), &ans); err != nil {
		t.Fatal(err)
	}
	renewed, _ := time.Parse(time.RFC3339, ans.Expires)
	if !renewed.After(first.Expires()) {
		t.Fatalf("renewed certificate expires %v, the first %v", renewed, first.Expires())
	}
	rig.clock.Add(31 * 24 * time.Hour)
	if st, b, _ := c.do("POST", "/v1/sync", syncBody(t, c, "/data/x")); st != http.StatusUnauthorized || !strings.Contains(b, "log in") {
		t.Fatalf("expired: %d %s", st, b)
	}
	if st, _, _ := c.do("POST", "/v1/auth/renew", nil); st != http.StatusUnauthorized {
		t.Fatalf("renewing an expired session: %d", st)
	}
}

// TestLoginCodeExpiresAndSingleUse: a login code works once, not for
// another user, and not after it expired.
func TestLoginCodeExpiresAndSingleUse(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	code, _, err := rig.acc.AddUser("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	login := func(c *client, user, code string) int {
		body, _ := json.Marshal(map[string]string{"user": user, "code": code})
		st, _, _ := c.do("POST", "/v1/auth/login", body)
		return st
	}
	if st := login(rig.client(), "bob", code); st != http.StatusUnauthorized {
		t.Fatalf("alice's code for bob: %d", st)
	}
	if st := login(rig.client(), "alice", code); st != http.StatusOK {
		t.Fatalf("first use: %d", st)
	}
	if st := login(rig.client(), "alice", code); st != http.StatusUnauthorized {
		t.Fatalf("second use: %d", st)
	}
	code, _, _ = rig.acc.AddUser("alice", nil)
	rig.clock.Add(25 * time.Hour)
	if st := login(rig.client(), "alice", code); st != http.StatusUnauthorized {
		t.Fatalf("expired code: %d", st)
	}
}

// TestDefaultDeny: with no app rules, a logged-in user reads and writes
// nothing under /data/, and the repository looks missing.
func TestDefaultDeny(t *testing.T) {
	rig := newAuthRig(t, nil, nil)
	mustPut(t, rig.db, "/data/x/a", goatdb.Fields{"v": 1})
	c := rig.client().login("alice")
	_, err := c.sync("/data/x")
	if !errors.Is(err, syncproto.ErrUnknownRepo) {
		t.Fatalf("reading /data/x: %v", err)
	}
	c.put("/data/y", "b", map[string]item.Value{"v": item.Int(1)})
	st, err := c.sync("/data/y")
	if len(st.Rejected) != 1 || !strings.Contains(st.Rejected[0].Reason, "not allowed") {
		t.Fatalf("writing /data/y: %v, %v", st.Rejected, err)
	}
}

// TestBuiltinSysRules: a user session cannot write /sys/users (make itself
// admin) nor read it, whatever the app rules say.
func TestBuiltinSysRules(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	if _, _, err := rig.acc.AddUser("bob", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	c := rig.client().login("mallory")
	if _, err := c.sync(server.UsersRepo); !errors.Is(err, syncproto.ErrUnknownRepo) {
		t.Fatalf("reading /sys/users: %v", err)
	}
	c.put(server.UsersRepo, "mallory", map[string]item.Value{"roles": item.StringSet("admin")})
	st, _ := c.sync(server.UsersRepo)
	if len(st.Rejected) != 1 {
		t.Fatalf("writing /sys/users: rejected %v", st.Rejected)
	}
	us, _ := rig.acc.Users()
	for _, u := range us {
		if u.Name == "mallory" && len(u.Roles) > 0 {
			t.Fatalf("mallory made itself %v", u.Roles)
		}
	}
}

// TestWriteRuleSeesBeforeAfter: a rule that forbids changing a task's
// owner refuses exactly the commit that does, and authz.Check gives the
// same answers without a server (TestRuleCheckWithoutServer).
func TestWriteRuleSeesBeforeAfter(t *testing.T) {
	rules := dbtest.OwnerRules(t)
	rig := newAuthRig(t, rules, nil)
	alice := rig.client().login("alice")
	ok1 := alice.put("/data/tasks", "t1", map[string]item.Value{"owner": str("alice"), "title": str("a")})
	ok2 := alice.put("/data/tasks", "t1", map[string]item.Value{"title": str("b")})
	bad := alice.put("/data/tasks", "t1", map[string]item.Value{"owner": str("bob")})
	st, err := alice.sync("/data/tasks")
	if !errors.Is(err, nil) && len(st.Rejected) == 0 {
		t.Fatal(err)
	}
	if len(st.Rejected) != 1 || st.Rejected[0].ID != bad.ID() || !strings.Contains(st.Rejected[0].Reason, "the owner of a task is its writer") {
		t.Fatalf("rejected %v", st.Rejected)
	}
	r, _ := rig.db.Repo("/data/tasks")
	if !r.Has(ok1.ID()) || !r.Has(ok2.ID()) || r.Has(bad.ID()) {
		t.Fatal("the server holds the wrong commits")
	}

	// TestRuleCheckWithoutServer: the same decisions from authz.Check.
	p := authz.Principal{Session: alice.sid, User: "alice"}
	v1 := item.Item{}.With("owner", str("alice")).With("title", str("a"))
	if err := authz.Check(rules, p, "/data/tasks/t1", v1, v1.With("title", str("b"))); err != nil {
		t.Fatalf("Check allowed on the server, refused here: %v", err)
	}
	if err := authz.Check(rules, p, "/data/tasks/t1", v1, v1.With("owner", str("bob"))); err == nil {
		t.Fatal("Check refused on the server, allowed here")
	}

	// Bob may not write alice's task at all.
	bob := rig.client().login("bob")
	if _, err := bob.sync("/data/tasks"); err != nil {
		t.Fatal(err)
	}
	steal := bob.put("/data/tasks", "t1", map[string]item.Value{"title": str("mine")})
	st, _ = bob.sync("/data/tasks")
	if len(st.Rejected) != 1 || st.Rejected[0].ID != steal.ID() || !strings.Contains(st.Rejected[0].Reason, "only alice") {
		t.Fatalf("bob's write: rejected %v", st.Rejected)
	}
}

// TestClaimedSessionRefused: the session named in a sync request's body is
// not who the server thinks is asking: mallory, naming alice's session,
// still reads only what mallory may (nothing of /user/alice).
func TestClaimedSessionRefused(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	alice := rig.client().login("alice")
	alice.put("/user/alice", "diary", map[string]item.Value{"text": str("secret")})
	if _, err := alice.sync("/user/alice"); err != nil {
		t.Fatal(err)
	}
	mallory := rig.client().login("mallory")
	body, err := syncproto.EncodeRequest(&syncproto.Request{Session: alice.sid, Repos: []syncproto.RepoRequest{{Path: "/user/alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	st, b, _ := mallory.do("POST", "/v1/sync", body)
	if st != http.StatusOK {
		t.Fatalf("%d %s", st, b)
	}
	resp, err := syncproto.DecodeResponse([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Repos[0]; p.Status != syncproto.StatusNotFound || len(p.Commits) != 0 {
		t.Fatalf("mallory claiming alice's session got %v with %d commits", p.Status, len(p.Commits))
	}
}

// TestCommitSignedByOtherKeyRejected: a commit that names alice's session
// but is signed by mallory's key is refused.
func TestCommitSignedByOtherKeyRejected(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	alice := rig.client().login("alice")
	mallory := rig.client().login("mallory")
	c := alice.put("/data/x", "a", map[string]item.Value{"v": item.Int(1)})
	enc := c.Encode()
	// Replace the signature (the last 64 bytes) with mallory's over the id.
	id := c.ID()
	copy(enc[len(enc)-64:], signWith(mallory, id[:]))
	body, _ := syncproto.EncodeRequest(&syncproto.Request{Session: mallory.sid, Repos: []syncproto.RepoRequest{{Path: "/data/x", Count: 1, Commits: [][]byte{enc}}}})
	st, b, _ := mallory.do("POST", "/v1/sync", body)
	if st != http.StatusOK {
		t.Fatalf("%d %s", st, b)
	}
	resp, _ := syncproto.DecodeResponse([]byte(b))
	if len(resp.Repos[0].Rejected) != 1 {
		t.Fatalf("a commit signed by another key: %+v", resp.Repos[0])
	}
}

// TestCommitOutsideCertificateIntervalRejected: a commit stamped before
// its author's certificate began (made before logging in) is refused with
// the reason; a commit by a session that never logged in too.
func TestCommitOutsideCertificateIntervalRejected(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	alice := rig.client()
	early := alice.put("/data/x", "a", map[string]item.Value{"v": item.Int(1)})
	time.Sleep(5 * time.Millisecond)
	rig.clock.Add(time.Hour) // the login happens an hour after the commit
	alice.login("alice")
	st, _ := alice.sync("/data/x")
	if len(st.Rejected) != 1 || st.Rejected[0].ID != early.ID() || !strings.Contains(st.Rejected[0].Reason, "no valid session certificate at commit time") {
		t.Fatalf("rejected %v", st.Rejected)
	}

	// A logged-in user relays a commit of a session that never logged in.
	stranger := rig.client()
	sc := stranger.put("/data/x", "s", map[string]item.Value{"v": item.Int(2)})
	bob := rig.client().login("bob")
	body, _ := syncproto.EncodeRequest(&syncproto.Request{Session: bob.sid, Repos: []syncproto.RepoRequest{{Path: "/data/x", Count: 1, Commits: [][]byte{sc.Encode()}}}})
	_, b, _ := bob.do("POST", "/v1/sync", body)
	resp, _ := syncproto.DecodeResponse([]byte(b))
	if len(resp.Repos[0].Rejected) != 1 || !strings.Contains(resp.Repos[0].Rejected[0].Reason, "never logged in") {
		t.Fatalf("relayed commit of a stranger: %+v", resp.Repos[0].Rejected)
	}
}

// TestBackdatedCommitAfterRevocationRejected: after a session is revoked,
// a commit it made (or claims to have made) before the revocation is
// refused when it arrives; one the server stored before stays.
func TestBackdatedCommitAfterRevocationRejected(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	alice := rig.client().login("alice")
	kept := alice.put("/data/x", "a", map[string]item.Value{"v": item.Int(1)})
	if _, err := alice.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	late := alice.put("/data/x", "b", map[string]item.Value{"v": item.Int(2)})
	rig.clock.Add(time.Second)
	if err := rig.acc.RevokeSession(alice.sid); err != nil {
		t.Fatal(err)
	}
	// Relayed by another user: the revoked session itself gets 401.
	if _, err := alice.sync("/data/x"); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the revoked session's sync: %v", err)
	}
	bob := rig.client().login("bob")
	body, _ := syncproto.EncodeRequest(&syncproto.Request{Session: bob.sid, Repos: []syncproto.RepoRequest{{Path: "/data/x", Count: 2, Commits: [][]byte{late.Encode()}}}})
	_, b, _ := bob.do("POST", "/v1/sync", body)
	resp, _ := syncproto.DecodeResponse([]byte(b))
	if len(resp.Repos[0].Rejected) != 1 || !strings.Contains(resp.Repos[0].Rejected[0].Reason, "revoked") {
		t.Fatalf("back-dated commit after the revocation: %+v", resp.Repos[0].Rejected)
	}
	r, _ := rig.db.Repo("/data/x")
	if !r.Has(kept.ID()) || r.Has(late.ID()) {
		t.Fatal("the server lost the commit stored before the revocation, or took the late one")
	}
}

// TestOfflineGrace: a commit made while the certificate was valid is
// accepted within the grace after it expired, and refused after.
func TestOfflineGrace(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), func(o *server.AuthOptions) {
		o.Accounts.CertLifetime = time.Hour
		o.Accounts.Grace = 24 * time.Hour
	})
	alice := rig.client().login("alice")
	within := alice.put("/data/x", "a", map[string]item.Value{"v": item.Int(1)})
	after := alice.put("/data/x", "b", map[string]item.Value{"v": item.Int(2)})
	bob := rig.client()
	relay := func(c interface{ Encode() []byte }, count uint64) []syncproto.Rejection {
		// bob logs in anew each time: his own certificate must be valid.
		bob.login("bob")
		body, _ := syncproto.EncodeRequest(&syncproto.Request{Session: bob.sid, Repos: []syncproto.RepoRequest{{Path: "/data/x", Count: count, Commits: [][]byte{c.Encode()}}}})
		st, b, _ := bob.do("POST", "/v1/sync", body)
		if st != http.StatusOK {
			t.Fatalf("%d %s", st, b)
		}
		resp, _ := syncproto.DecodeResponse([]byte(b))
		return resp.Repos[0].Rejected
	}
	rig.clock.Add(2 * time.Hour) // expired an hour ago, within the grace
	if rej := relay(within, 1); len(rej) != 0 {
		t.Fatalf("within the grace: %v", rej)
	}
	rig.clock.Add(24 * time.Hour)
	if rej := relay(after, 2); len(rej) != 1 || !strings.Contains(rej[0].Reason, "log in again") {
		t.Fatalf("after the grace: %v", rej)
	}
}

// TestRevocationEndsRequestsAndStreams: once a session is revoked its next
// request gets 401 and its open event stream ends within a second.
func TestRevocationEndsRequestsAndStreams(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	alice := rig.client().login("alice")
	req, _ := http.NewRequest("GET", rig.run.url+"/v1/events", nil)
	req.Header.Set(authz.AuthHeaderName, alice.header("GET", "/v1/events", nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %v %v", err, resp)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				close(ended)
				return
			}
		}
	}()
	if err := rig.acc.RevokeSession(alice.sid); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if st, b, _ := alice.do("POST", "/v1/sync", syncBody(t, alice, "/data/x")); st != http.StatusUnauthorized || !strings.Contains(b, "revoked") {
		t.Fatalf("after revocation: %d %s", st, b)
	}
	select {
	case <-ended:
		t.Logf("stream ended %v after the revocation", time.Since(revoked))
	case <-time.After(time.Second):
		t.Fatal("the event stream is still open a second after the revocation")
	}
}

// TestUserRevocationVoidsAllSessions: revoking a user voids every session
// of it and its login codes; a new user add lets it log in again.
func TestUserRevocationVoidsAllSessions(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	a1 := rig.client().login("alice")
	a2 := rig.client().login("alice")
	code, _, _ := rig.acc.NewCode("alice")
	rig.clock.Add(time.Second)
	if err := rig.acc.RevokeUser("alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a1, a2} {
		if st, _, _ := c.do("GET", "/v1/auth/whoami", nil); st != http.StatusUnauthorized {
			t.Fatalf("a session of a revoked user: %d", st)
		}
	}
	body, _ := json.Marshal(map[string]string{"user": "alice", "code": code})
	if st, _, _ := rig.client().do("POST", "/v1/auth/login", body); st != http.StatusUnauthorized {
		t.Fatalf("a code of a revoked user: %d", st)
	}
	rig.clock.Add(time.Second)
	a3 := rig.client().login("alice")
	if st, b, _ := a3.do("GET", "/v1/auth/whoami", nil); st != http.StatusOK || !strings.Contains(b, `"user":"alice"`) {
		t.Fatalf("after user add again: %d %s", st, b)
	}
}

// TestAnonymousOnlyByOption: without AuthOptions.Anonymous a session that
// never logged in gets 401 and cannot register; with it, it registers and
// reads what the rules give anonymous principals.
func TestAnonymousOnlyByOption(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	c := rig.client()
	if st, b, _ := c.do("POST", "/v1/sync", syncBody(t, c, "/data/x")); st != http.StatusUnauthorized || !strings.Contains(b, "goatdb login") {
		t.Fatalf("anonymous sync: %d %s", st, b)
	}
	if st, _, _ := c.do("POST", "/v1/auth/register", nil); st != http.StatusForbidden {
		t.Fatalf("register: %d", st)
	}
	open := newAuthRig(t, authz.OpenRules(), func(o *server.AuthOptions) { o.Anonymous = true })
	mustPut(t, open.db, "/data/x/a", goatdb.Fields{"v": 1})
	a := open.client()
	if st, b, _ := a.do("POST", "/v1/auth/register", nil); st != http.StatusOK || !strings.Contains(b, `"user":""`) {
		t.Fatalf("register: %d %s", st, b)
	}
	st, err := a.sync("/data/x")
	if err != nil || st.CommitsReceived != 1 {
		t.Fatalf("anonymous read: %v, %+v", err, st)
	}
}

// TestRevocationEvictedAfterExpiryPlusGrace: a revocation record is kept
// while a certificate it covers could still admit a commit, and deleted
// after; the session stays locked out (its certificates expired).
func TestRevocationEvictedAfterExpiryPlusGrace(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), func(o *server.AuthOptions) {
		o.Accounts.CertLifetime = time.Hour
		o.Accounts.AnonymousLifetime = time.Hour
		o.Accounts.Grace = time.Hour
	})
	alice := rig.client().login("alice")
	rig.clock.Add(time.Second)
	if err := rig.acc.RevokeSession(alice.sid); err != nil {
		t.Fatal(err)
	}
	count := func() int { n, _ := rig.db.Count(server.RevocationsRepo); return n }
	rig.clock.Add(90 * time.Minute) // the certificate expired, within the grace
	if n, err := rig.acc.EvictRevocations(); err != nil || n != 0 || count() != 1 {
		t.Fatalf("within the grace: evicted %d (%v), %d left", n, err, count())
	}
	rig.clock.Add(time.Hour)
	if n, err := rig.acc.EvictRevocations(); err != nil || n != 1 || count() != 0 {
		t.Fatalf("after the grace: evicted %d (%v), %d left", n, err, count())
	}
	if st, _, _ := alice.do("GET", "/v1/auth/whoami", nil); st != http.StatusUnauthorized {
		t.Fatalf("the revoked session after eviction: %d", st)
	}
}

// TestEventsOnlyForReadableRepos: a session's event stream announces the
// repositories it may read, never one it may not (its changes send
// nothing).
func TestEventsOnlyForReadableRepos(t *testing.T) {
	var b authz.Builder
	b.Handle("/data/pub/{id}", authz.Rule{Scope: authz.ByRepo,
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, _ item.Item) bool { return p.User != "" }})
	rules, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	rig := newAuthRig(t, rules, nil)
	mustPut(t, rig.db, "/data/pub/a", goatdb.Fields{"v": 1})
	mustPut(t, rig.db, "/data/priv/a", goatdb.Fields{"v": 1})
	alice := rig.client().login("alice")
	req, _ := http.NewRequest("GET", rig.run.url+"/v1/events", nil)
	req.Header.Set(authz.AuthHeaderName, alice.header("GET", "/v1/events", nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %v %v", err, resp)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				lines <- string(buf[:n])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	var seen strings.Builder
	deadline := time.After(5 * time.Second)
	waitFor := func(s string) {
		for !strings.Contains(seen.String(), s) {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q: %s", s, seen.String())
				}
				seen.WriteString(l)
			case <-deadline:
				t.Fatalf("no %q in %s", s, seen.String())
			}
		}
	}
	waitFor("event: ready")
	// Changes to the private repository, then one to the public one: the
	// stream names only the public one.
	mustPut(t, rig.db, "/data/priv/b", goatdb.Fields{"v": 2})
	mustPut(t, rig.db, "/data/pub/b", goatdb.Fields{"v": 2})
	// The public repository is announced at the start and after its
	// change; by then the private one's earlier change has been handled.
	for strings.Count(seen.String(), `"repo":"/data/pub"`) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended: %s", seen.String())
			}
			seen.WriteString(l)
		case <-deadline:
			t.Fatalf("the public change was not announced: %s", seen.String())
		}
	}
	if !strings.Contains(seen.String(), `"repo":"/data/pub"`) || strings.Contains(seen.String(), "/data/priv") {
		t.Fatalf("stream: %s", seen.String())
	}
}

// TestMergeOfAcceptedParentsAccepted: two users edit one item apart; the
// merge one of them computes and pushes (no author, no signature) is taken
// because the server computes the same merge of parents it accepted. A
// forged merge of the same parents (TestForgedMergeRejected) is refused:
// a keyless merge cannot carry a value of its own past the rules.
func TestMergeOfAcceptedParentsAccepted(t *testing.T) {
	rig := newAuthRig(t, authz.OpenRules(), nil)
	alice := rig.client().login("alice")
	bob := rig.client().login("bob")
	alice.put("/data/x", "t", map[string]item.Value{"title": str("base")})
	if _, err := alice.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	a := alice.put("/data/x", "t", map[string]item.Value{"title": str("alice's")})
	b := bob.put("/data/x", "t", map[string]item.Value{"done": item.Bool(true)})
	if _, err := alice.sync("/data/x"); err != nil {
		t.Fatal(err)
	}

	// TestForgedMergeRejected: bob pushes his write and a merge of it with
	// alice's that carries a value of its own.
	forged, err := commit.NewMerge("t", []*commit.Commit{a, b}, commit.Fields{Repo: "/data/x", Full: true,
		Value: item.Item{}.With("title", str("forged")).With("owner", str("bob"))})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := syncproto.EncodeRequest(&syncproto.Request{Session: bob.sid, Repos: []syncproto.RepoRequest{{Path: "/data/x", Count: 3,
		Commits: [][]byte{b.Encode(), forged.Encode()}}}})
	_, raw, _ := bob.do("POST", "/v1/sync", body)
	resp, err := syncproto.DecodeResponse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if rej := resp.Repos[0].Rejected; len(rej) != 1 || rej[0].ID != forged.ID() {
		t.Fatalf("forged merge: rejected %v", rej)
	}

	// Bob syncs: he receives alice's write, merges, and pushes the merge.
	if _, err := bob.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	head, ok := bob.repo("/data/x").Head("t")
	if !ok {
		t.Fatal("no head")
	}
	mc, _ := bob.repo("/data/x").Commit(head)
	if !mc.IsMerge() {
		t.Fatalf("bob's head %s is not a merge", head.Short())
	}
	r, _ := rig.db.Repo("/data/x")
	if !r.Has(head) {
		t.Fatal("the server does not hold the merge of accepted parents")
	}
	if got := get(t, rig.db, "/data/x/t"); got["title"] != "alice's" || got["done"] != true {
		t.Fatalf("the server's value %v", got)
	}
}

// TestRenewWritesOnlyWhenDue: renewing a certificate with more than half
// its lifetime left answers it as it is and writes nothing (a loop of
// renewals costs no disk), unless the user's roles changed, which a
// renewal then carries.
func TestRenewWritesOnlyWhenDue(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	c := rig.client().login("alice")
	r, err := rig.db.Repo(server.SessionsRepo)
	if err != nil {
		t.Fatal(err)
	}
	seq := r.Seq()
	for range 5 {
		if st, b, _ := c.do("POST", "/v1/auth/renew", nil); st != http.StatusOK {
			t.Fatalf("renew: %d %s", st, b)
		}
	}
	if r.Seq() != seq {
		t.Fatal("renewing a fresh certificate wrote to /sys/sessions")
	}
	if _, _, err := rig.acc.AddUser("alice", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	st, b, _ := c.do("POST", "/v1/auth/renew", nil)
	if st != http.StatusOK || !strings.Contains(b, `"roles":["admin"]`) || r.Seq() == seq {
		t.Fatalf("renew after a role change: %d %s", st, b)
	}
}

// TestRevokeRoute: a user revokes its own sessions but not another user's;
// an admin revokes any session or user; a revoked user's sessions get 401.
func TestRevokeRoute(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	alice1 := rig.client().login("alice")
	alice2 := rig.client().login("alice")
	bob := rig.client().login("bob")
	admin := rig.client().login("root", "admin")
	revoke := func(c *client, field, value string) int {
		body, _ := json.Marshal(map[string]string{field: value})
		st, _, _ := c.do("POST", "/v1/auth/revoke", body)
		return st
	}
	if st := revoke(bob, "session", alice1.sid.String()); st != http.StatusForbidden {
		t.Fatalf("bob revoking alice's session: %d", st)
	}
	if st := revoke(bob, "user", "alice"); st != http.StatusForbidden {
		t.Fatalf("bob revoking alice: %d", st)
	}
	if st := revoke(alice1, "session", alice2.sid.String()); st != http.StatusOK {
		t.Fatalf("alice revoking her other session: %d", st)
	}
	if st, _, _ := alice2.do("GET", "/v1/auth/whoami", nil); st != http.StatusUnauthorized {
		t.Fatalf("the revoked session: %d", st)
	}
	if st := revoke(admin, "user", "bob"); st != http.StatusOK {
		t.Fatalf("an admin revoking bob: %d", st)
	}
	if st, _, _ := bob.do("GET", "/v1/auth/whoami", nil); st != http.StatusUnauthorized {
		t.Fatalf("a session of a revoked user: %d", st)
	}
	if st := revoke(admin, "user", "nobody"); st != http.StatusNotFound {
		t.Fatalf("revoking an unknown user: %d", st)
	}
	if st, _, _ := alice1.do("GET", "/v1/auth/whoami", nil); st != http.StatusOK {
		t.Fatalf("alice's first session: %d", st)
	}
}
