package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
	"github.com/goatdb/goatdb/server"
)

// apiCall makes a JSON API request and decodes a JSON answer into a map
// (nil for none).
func apiCall(t *testing.T, method, url string, body string, header map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %d, body %q is not a JSON object: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// TestAPIItemLifecycle: put, get with its ETag, a conditional update that
// succeeds and one that finds the head moved (412), a merge patch, a
// listing with a filter, history, a diff, a soft delete; errors are
// JSON with a reason.
func TestAPIItemLifecycle(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	run := serve(t, db, &server.Options{RateLimit: -1}, "")
	u := run.url + "/v1/items/data/notes/"

	st, it, h := apiCall(t, "PUT", u+"a", `{"title": "one", "n": 1}`, nil)
	if st != http.StatusCreated || it["head"] == "" || h.Get("ETag") != `"`+it["head"].(string)+`"` {
		t.Fatalf("put: %d %v ETag %q", st, it, h.Get("ETag"))
	}
	first := h.Get("ETag")
	st, it, h = apiCall(t, "GET", u+"a", "", nil)
	if st != 200 || it["fields"].(map[string]any)["title"] != "one" || h.Get("ETag") != first {
		t.Fatalf("get: %d %v %q", st, it, h.Get("ETag"))
	}
	st, _, h = apiCall(t, "PUT", u+"a", `{"title": "two", "n": 2}`, map[string]string{"If-Match": first})
	if st != 200 || h.Get("ETag") == first {
		t.Fatalf("conditional put: %d, ETag %q", st, h.Get("ETag"))
	}
	st, e, _ := apiCall(t, "PUT", u+"a", `{"title": "three"}`, map[string]string{"If-Match": first})
	if st != http.StatusPreconditionFailed || e["error"] != "precondition_failed" || e["reason"] == "" {
		t.Fatalf("put on a moved head: %d %v", st, e)
	}
	st, it, _ = apiCall(t, "PATCH", u+"a", `{"n": null, "tag": "x"}`, nil)
	if f := it["fields"].(map[string]any); st != 200 || f["title"] != "two" || f["tag"] != "x" || f["n"] != nil {
		t.Fatalf("patch: %d %v", st, it)
	}
	for i, title := range []string{"b1", "b2", "b3"} {
		apiCall(t, "PUT", u+title, `{"title": "`+title+`", "n": `+string(rune('1'+i))+`}`, nil)
	}
	st, page, _ := apiCall(t, "GET", run.url+"/v1/repos/data/notes/items?filter=n%20%3E%3D%202&limit=1", "", nil)
	items := page["items"].([]any)
	if st != 200 || len(items) != 1 || items[0].(map[string]any)["key"] != "b2" || page["next"] != "b2" {
		t.Fatalf("filtered page: %d %v", st, page)
	}
	st, page, _ = apiCall(t, "GET", run.url+"/v1/repos/data/notes/items?sort=title&desc=true&limit=2", "", nil)
	if items = page["items"].([]any); st != 200 || len(items) != 2 || items[0].(map[string]any)["key"] != "a" || page["next"] != "o2" {
		t.Fatalf("sorted page: %d %v", st, page)
	}
	st, hist, _ := apiCall(t, "GET", u+"a/history", "", nil)
	if cs := hist["commits"].([]any); st != 200 || len(cs) != 3 {
		t.Fatalf("history: %d %v", st, hist)
	}
	st, d, _ := apiCall(t, "GET", u+"a/diff", "", nil)
	if st != 200 || len(d["changes"].([]any)) != 2 {
		t.Fatalf("diff of the last commit: %d %v", st, d)
	}
	st, it, _ = apiCall(t, "DELETE", u+"a", "", nil)
	if st != 200 || it["deleted"] != true {
		t.Fatalf("delete: %d %v", st, it)
	}
	if _, err := db.Get("/data/notes/a"); err == nil {
		t.Fatal("the item is not deleted in the database")
	}
	st, e, _ = apiCall(t, "GET", u+"zzz", "", nil)
	if st != 404 || e["error"] != "not_found" {
		t.Fatalf("missing item: %d %v", st, e)
	}
	st, e, _ = apiCall(t, "PUT", u+"a", `{"title": `, nil)
	if st != 400 || !strings.Contains(e["reason"].(string), "line 1") {
		t.Fatalf("bad JSON: %d %v", st, e)
	}
}

// TestAPIChanges: the changes stream sends what changed after a cursor,
// then live changes, and resumes from its last cursor.
func TestAPIChanges(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	run := serve(t, db, &server.Options{RateLimit: -1}, "")
	mustPut(t, db, "/data/feed/a", goatdb.Fields{"v": 1})
	_, info, _ := apiCall(t, "GET", run.url+"/v1/repos/data/feed", "", nil)
	cur := info["cursor"].(string)
	mustPut(t, db, "/data/feed/b", goatdb.Fields{"v": 2})

	resp, err := http.Get(run.url + "/v1/changes?repo=/data/feed&since=" + cur)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan [2]string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- [2]string{ev, strings.TrimPrefix(line, "data: ")}
			}
		}
		close(events)
	}()
	next := func() [2]string {
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return [2]string{}
	}
	if e := next(); e[0] != "change" || !strings.Contains(e[1], `"key":"b"`) {
		t.Fatalf("first event %q, want the change of b", e)
	}
	if e := next(); e[0] != "ready" {
		t.Fatalf("second event %q, want ready", e)
	}
	mustPut(t, db, "/data/feed/c", goatdb.Fields{"v": 3})
	if e := next(); e[0] != "change" || !strings.Contains(e[1], `"key":"c"`) || !strings.Contains(e[1], `"v":3`) {
		t.Fatalf("live event %q, want the change of c", e)
	}
	if e := next(); e[0] != "cursor" {
		t.Fatalf("event %q, want the batch's cursor", e)
	}
}

// TestAPIWriteQuotas: JSON writes count against the quotas a sync push
// counts against (commits, and new repositories).
func TestAPIWriteQuotas(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	q := server.DefaultQuotas()
	q.Session.PushCommits, q.Session.Repos = 2, 1
	run := serve(t, db, &server.Options{RateLimit: -1, Quotas: &q}, "")
	for i, want := range []int{201, 201, 429} {
		st, e, _ := apiCall(t, "PUT", run.url+"/v1/items/data/q/k"+string(rune('0'+i)), `{"v": 1}`, nil)
		if st != want {
			t.Fatalf("write %d: %d %v, want %d", i, st, e, want)
		}
		if st == 429 && (e["error"] != "too_many_requests" || !strings.Contains(e["reason"].(string), "commits")) {
			t.Fatalf("refusal %v: want a JSON error naming the commits quota", e)
		}
	}
	q2 := server.DefaultQuotas()
	q2.Session.Repos = 1
	run2 := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1, Quotas: &q2}, "")
	if st, e, _ := apiCall(t, "PUT", run2.url+"/v1/items/data/one/k", `{"v": 1}`, nil); st != 201 {
		t.Fatalf("first repository: %d %v", st, e)
	}
	if st, e, _ := apiCall(t, "PUT", run2.url+"/v1/items/data/two/k", `{"v": 1}`, nil); st != 429 && st != 413 {
		t.Fatalf("second repository over a quota of one: %d %v", st, e)
	}
}

// TestAPICORS: off by default (a preflight is refused, answers carry no
// CORS headers); a listed origin's preflight gets the methods and
// headers, and its answers name it; another origin gets nothing.
func TestAPICORS(t *testing.T) {
	preflight := func(url, origin string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodOptions, url+"/v1/items/data/x/k", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	plain := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1}, "")
	if st, h := preflight(plain.url, "http://app.example"); st != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("default server: preflight %d, ACAO %q; want 403 and none", st, h.Get("Access-Control-Allow-Origin"))
	}
	run := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1, CORSOrigins: []string{"http://app.example"}}, "")
	st, h := preflight(run.url, "http://app.example")
	if st != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "If-Match") {
		t.Fatalf("listed origin: preflight %d, headers %v", st, h)
	}
	if st, h := preflight(run.url, "http://evil.example"); st != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("unlisted origin: %d %q", st, h.Get("Access-Control-Allow-Origin"))
	}
	_, _, h = apiCall(t, "PUT", run.url+"/v1/items/data/x/k", `{"v": 1}`, map[string]string{"Origin": "http://app.example"})
	if h.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("answer to a listed origin: %v", h)
	}
}

// TestAPIRateLimitIsJSON: the shared rate limit, which runs before the
// JSON API's handlers, answers the JSON API's paths with a JSON error and
// the sync route with its one line of text.
func TestAPIRateLimitIsJSON(t *testing.T) {
	run := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: 0.001, RateBurst: 1}, "")
	apiCall(t, "GET", run.url+"/v1/repos", "", nil)
	st, e, h := apiCall(t, "GET", run.url+"/v1/repos", "", nil)
	if st != http.StatusTooManyRequests || e["error"] != "too_many_requests" || h.Get("Retry-After") == "" {
		t.Fatalf("second request: %d %v %v", st, e, h)
	}
	resp, err := http.Post(run.url+"/v1/sync", "application/x-goatdb-sync", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("sync route over the limit: %d %s", resp.StatusCode, ct)
	}
}

// TestAPISchemaErrors: a value the item's schema refuses is 422 with the
// field it is about, and nothing is written.
func TestAPISchemaErrors(t *testing.T) {
	reg := schema.NewRegistry()
	if err := reg.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true}, {Name: "count", Type: item.TypeInt}}}); err != nil {
		t.Fatal(err)
	}
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: reg})
	run := serve(t, db, &server.Options{RateLimit: -1}, "")
	u := run.url + "/v1/items/data/tasks/t1"
	if st, e, _ := apiCall(t, "PUT", u+"?schema=task", `{"title": "x", "count": 1}`, nil); st != http.StatusCreated {
		t.Fatalf("put with the schema: %d %v", st, e)
	}
	st, e, _ := apiCall(t, "PUT", u, `{"title": "x", "count": "three"}`, nil)
	if st != http.StatusUnprocessableEntity || e["error"] != "invalid" || e["field"] != "count" {
		t.Fatalf("wrong type: %d %v, want 422 about count", st, e)
	}
	if it, _ := db.Get("/data/tasks/t1"); it.Get("count") != int64(1) {
		t.Fatalf("the refused write changed the item: %v", it.Fields())
	}
}

// TestAPIConditionalReasons: 412 answers say what the item is now, in
// ETags; If-Match: * updates only an item that exists.
func TestAPIConditionalReasons(t *testing.T) {
	run := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1}, "")
	u := run.url + "/v1/items/data/c/k"
	if st, e, _ := apiCall(t, "PUT", u, `{"v": 1}`, map[string]string{"If-Match": "*"}); st != http.StatusPreconditionFailed ||
		!strings.Contains(e["reason"].(string), "does not exist") {
		t.Fatalf("If-Match: * on a missing item: %d %v", st, e)
	}
	_, _, h := apiCall(t, "PUT", u, `{"v": 1}`, nil)
	first := h.Get("ETag")
	if st, _, _ := apiCall(t, "PUT", u, `{"v": 2}`, map[string]string{"If-Match": "*"}); st != 200 {
		t.Fatalf("If-Match: * on an item: %d", st)
	}
	st, e, _ := apiCall(t, "PUT", u, `{"v": 3}`, map[string]string{"If-Match": first})
	if st != http.StatusPreconditionFailed || !strings.Contains(e["reason"].(string), "its ETag is now") || strings.Contains(e["reason"].(string), "DB.Update") {
		t.Fatalf("moved head: %d %v", st, e)
	}
	if st, e, _ := apiCall(t, "PUT", u, `{"v": 3}`, map[string]string{"If-None-Match": "*"}); st != http.StatusPreconditionFailed ||
		!strings.Contains(e["reason"].(string), "only creates") {
		t.Fatalf("If-None-Match: * on an item: %d %v", st, e)
	}
}
