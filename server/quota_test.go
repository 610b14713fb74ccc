package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/vfs"
)

// slow is a rate no test outlives: a bucket spent stays spent.
const slow = 0.0001

// quotaRig is an authenticated server with the given quotas (request
// rates unlimited unless set).
func quotaRig(t *testing.T, q server.Quotas, anonymous bool) *authRig {
	t.Helper()
	for _, qq := range []*server.Quota{&q.Session, &q.User, &q.Address} {
		if qq.Requests == 0 {
			qq.Requests = -1
		}
	}
	return newAuthRigWith(t, authz.DefaultRules(), func(ao *server.AuthOptions) { ao.Anonymous = anonymous },
		&server.Options{Quotas: &q})
}

// checkRefusal checks a quota's refusal: the status, a Retry-After for a
// 429, a reason that names the limit.
func checkRefusal(t *testing.T, st int, body string, h http.Header, want int, mention string) {
	t.Helper()
	if st != want {
		t.Fatalf("status %d (%q), want %d", st, body, want)
	}
	if want == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("429 with Retry-After %q, want whole seconds ≥ 1", h.Get("Retry-After"))
		}
	}
	if h.Get("Connection") != "close" {
		t.Errorf("refusal leaves the connection open (Connection %q)", h.Get("Connection"))
	}
	if !strings.Contains(body, mention) {
		t.Errorf("reason %q does not mention %q", body, mention)
	}
}

// TestQuotaRequestsPerSession: sessions behind one address (a reverse
// proxy) each have their own request budget; one that spends its own
// gets 429 while the others go on.
func TestQuotaRequestsPerSession(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Session: server.Quota{Requests: slow, RequestBurst: 4}}, false)
	a := rig.client().login("alice") // the login is the first request
	b := rig.client().login("bob")
	for i := 0; i < 3; i++ {
		if st, body, _ := a.do(http.MethodGet, "/v1/auth/whoami", nil); st != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+2, st, body)
		}
	}
	st, body, h := a.do(http.MethodGet, "/v1/auth/whoami", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "session")
	if st, body, _ := b.do(http.MethodGet, "/v1/auth/whoami", nil); st != http.StatusOK {
		t.Errorf("another session from the same address: %d %s, want 200", st, body)
	}
	ms := httptest.NewServer(rig.run.srv.MetricsHandler())
	defer ms.Close()
	if n := scrape(t, ms.URL).get("goatdb_http_rate_limited_total"); n < 1 {
		t.Errorf("goatdb_http_rate_limited_total = %v after a 429", n)
	}
}

// TestQuotaRequestsPerUser: a user's sessions share the user's budget.
func TestQuotaRequestsPerUser(t *testing.T) {
	rig := quotaRig(t, server.Quotas{User: server.Quota{Requests: slow, RequestBurst: 4}}, false)
	a1 := rig.client().login("alice")
	a2 := rig.client()
	code, _, err := rig.acc.AddUser("alice", nil) // a second code for a second device
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := a2.do(http.MethodPost, "/v1/auth/login", fmt.Appendf(nil, `{"user":"alice","code":%q}`, code)); st != http.StatusOK {
		t.Fatalf("second login: %d %s", st, body)
	}
	for _, c := range []*client{a1, a2, a1, a2} { // logging in counted against the sessions only
		if st, body, _ := c.do(http.MethodGet, "/v1/auth/whoami", nil); st != http.StatusOK {
			t.Fatalf("within the user's quota: %d %s", st, body)
		}
	}
	st, body, h := a1.do(http.MethodGet, "/v1/auth/whoami", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "user")
	st, body, h = a2.do(http.MethodGet, "/v1/auth/whoami", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "user")
	if st, body, _ := rig.client().login("bob").do(http.MethodGet, "/v1/auth/whoami", nil); st != http.StatusOK {
		t.Errorf("another user: %d %s, want 200", st, body)
	}
}

// TestQuotaAddress: requests that fail authentication, and anonymous
// sessions (which anyone can make up), count against their address; once
// it is spent, the address's requests are refused before they are
// verified, while logged-in sessions keep their own budgets.
func TestQuotaAddress(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Address: server.Quota{Requests: slow, RequestBurst: 3}}, true)
	bad := rig.client()
	for i := 0; i < 3; i++ {
		if st, body, _ := bad.send(http.MethodGet, "/v1/auth/whoami", nil, "v1;garbage"); st != http.StatusUnauthorized {
			t.Fatalf("bad signature %d: %d %s, want 401", i, st, body)
		}
	}
	st, body, h := bad.send(http.MethodGet, "/v1/auth/whoami", nil, "v1;garbage")
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "rate limit")
	// Fresh anonymous sessions from the same address get no new budget.
	st, body, h = rig.client().do(http.MethodGet, "/v1/auth/whoami", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "rate limit")
}

// TestQuotaAnonymousSessions: without a user, sessions share their
// address's budget, so making up session keys does not multiply it.
func TestQuotaAnonymousSessions(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Address: server.Quota{Requests: slow, RequestBurst: 4}}, true)
	for i := 0; i < 4; i++ {
		if st, body, _ := rig.client().do(http.MethodGet, "/v1/auth/whoami", nil); st != http.StatusOK {
			t.Fatalf("anonymous session %d: %d %s", i, st, body)
		}
	}
	st, body, h := rig.client().do(http.MethodGet, "/v1/auth/whoami", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "rate limit")
}

// TestQuotaRegistrations: an address registers at most its quota of
// anonymous sessions per hour.
func TestQuotaRegistrations(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Registrations: 2}, true)
	for i := 0; i < 2; i++ {
		if st, body, _ := rig.client().do(http.MethodPost, "/v1/auth/register", []byte("{}")); st != http.StatusOK {
			t.Fatalf("registration %d: %d %s", i, st, body)
		}
	}
	st, body, h := rig.client().do(http.MethodPost, "/v1/auth/register", []byte("{}"))
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "anonymous sessions per hour")
}

// TestQuotaPush: the commits a session pushes count against its quota: a
// request over the whole quota is refused with 413, one over what remains
// with 429, and nothing of a refused request is stored.
func TestQuotaPush(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Session: server.Quota{PushCommits: 5}, PushWindow: 1000 * time.Hour}, false)
	a := rig.client().login("alice")
	for i := range 3 {
		a.put("/data/a", fmt.Sprint("k", i), map[string]item.Value{"n": str("x")})
	}
	if _, err := a.sync("/data/a"); err != nil {
		t.Fatalf("a push within the quota: %v", err)
	}
	for i := range 3 {
		a.put("/data/a", fmt.Sprint("l", i), map[string]item.Value{"n": str("x")})
	}
	_, err := a.sync("/data/a")
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a push over what remains of the quota: %v, want 429", err)
	}
	if n := countKeys(t, rig, "/data/a"); n != 3 {
		t.Errorf("server holds %d items, want the 3 of the push within the quota", n)
	}
	b := rig.client().login("bob")
	for i := range 6 {
		b.put("/data/b", fmt.Sprint("k", i), map[string]item.Value{"n": str("x")})
	}
	_, err = b.sync("/data/b")
	if err == nil || !strings.Contains(err.Error(), "413") || !strings.Contains(err.Error(), "send fewer") {
		t.Fatalf("a push over the whole quota: %v, want 413 saying to send fewer", err)
	}
}

// TestQuotaPushBytes: so do their bytes.
func TestQuotaPushBytes(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Session: server.Quota{PushBytes: 4 << 10}, PushWindow: 1000 * time.Hour}, false)
	a := rig.client().login("alice")
	a.put("/data/a", "small", map[string]item.Value{"n": str("x")})
	if _, err := a.sync("/data/a"); err != nil {
		t.Fatalf("a push within the quota: %v", err)
	}
	a.put("/data/a", "big", map[string]item.Value{"n": str(strings.Repeat("y", 8<<10))})
	_, err := a.sync("/data/a")
	if err == nil || !strings.Contains(err.Error(), "413") || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("a push of more bytes than the quota: %v, want 413 naming bytes", err)
	}
}

// TestQuotaRepos: a session creates at most its quota of repositories;
// past it, new repositories are refused one by one (with a reason, while
// the request's other repositories sync), and a request of only new
// repositories is refused with 429. The attack: one request naming
// thousands of new repositories creates no more than the quota.
func TestQuotaRepos(t *testing.T) {
	const quota = 3
	rig := quotaRig(t, server.Quotas{Session: server.Quota{Repos: quota}}, false)
	a := rig.client().login("alice")
	var paths []string
	for i := range 200 {
		p := fmt.Sprintf("/data/r%03d", i)
		paths = append(paths, p)
		a.put(p, "k", map[string]item.Value{"n": str("x")})
	}
	_, err := a.sync(paths...)
	if err == nil || !strings.Contains(err.Error(), "new repositor") {
		t.Fatalf("one request creating 200 repositories: %v, want refusals naming the quota", err)
	}
	repos, err := rig.db.Repos()
	if err != nil {
		t.Fatal(err)
	}
	var created int
	for _, p := range repos {
		if strings.HasPrefix(p, "/data/") {
			created++
		}
	}
	if created != quota {
		t.Errorf("%d repositories created, want the quota of %d", created, quota)
	}
	// Only new repositories: 429 as a whole.
	_, err = a.sync(paths[quota:]...)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("a request of only new repositories past the quota: %v, want 429", err)
	}
	// The repositories created still sync.
	a.put(paths[0], "k2", map[string]item.Value{"n": str("y")})
	if _, err := a.sync(paths[:quota]...); err != nil {
		t.Errorf("syncing existing repositories past the quota: %v", err)
	}
	// Another user has a quota of its own.
	b := rig.client().login("bob")
	b.put("/data/bob", "k", map[string]item.Value{"n": str("x")})
	if _, err := b.sync("/data/bob"); err != nil {
		t.Errorf("another session creating a repository: %v", err)
	}
}

// TestQuotaEventStreams: a session holds at most its quota of event
// streams; others still connect.
func TestQuotaEventStreams(t *testing.T) {
	rig := quotaRig(t, server.Quotas{Session: server.Quota{EventStreams: 2}}, false)
	a := rig.client().login("alice")
	for range 2 {
		if st := a.openEvents(t); st != http.StatusOK {
			t.Fatalf("stream within the quota: %d", st)
		}
	}
	st, body, h := a.do(http.MethodGet, "/v1/events", nil)
	checkRefusal(t, st, body, h, http.StatusTooManyRequests, "event streams")
	if st := rig.client().login("bob").openEvents(t); st != http.StatusOK {
		t.Errorf("another session's stream: %d, want 200", st)
	}
}

// openEvents opens an event stream, kept open until the test ends, and
// returns its status.
func (c *client) openEvents(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base()+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(authz.AuthHeaderName, c.header(http.MethodGet, "/v1/events", nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp.StatusCode
}

// countKeys counts the items of a repository on the rig's server.
func countKeys(t *testing.T, rig *authRig, path string) int {
	t.Helper()
	n, err := rig.db.Count(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQuotaPushRefundedOnStorageFailure: commits the server failed to
// store do not count against the push quota: the client sends them again.
func TestQuotaPushRefundedOnStorageFailure(t *testing.T) {
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/srv", &goatdb.Options{FS: mem})
	mustPut(t, db, "/data/t/seed", goatdb.Fields{"n": 0})
	q := server.Quotas{Session: server.Quota{PushCommits: 3}, PushWindow: 1000 * time.Hour}
	srv := serve(t, db, &server.Options{Quotas: &q, RateLimit: -1}, "")
	cli := dbtest.OpenDB(t, nil)
	mustSync(t, cli, srv.url, "/data/t")
	mustPut(t, cli, "/data/t/a", goatdb.Fields{"n": 1})
	mustPut(t, cli, "/data/t/b", goatdb.Fields{"n": 2})
	failWrites(mem, "t.log")
	if code, body, _ := postWithID(t, srv.url, pushRequest(t, cli, "/data/t"), "refund-1"); code != http.StatusServiceUnavailable {
		t.Fatalf("a push while writes fail: %d %q, want 503", code, body)
	}
	failWrites(mem, "")
	mustPut(t, cli, "/data/t/c", goatdb.Fields{"n": 3})
	mustSync(t, cli, srv.url, "/data/t") // the 3 commits: the whole quota, if the failed push was refunded
	if n, err := db.Count("/data/t"); err != nil || n != 4 {
		t.Errorf("server holds %d items (%v), want 4", n, err)
	}
}
