package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/server/console"
)

// testTimeout bounds each browser test, browser start included.
const testTimeout = 60 * time.Second

// chromium returns the path of a Chromium or Chrome, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found; install Debian's chromium package to run the console's browser tests")
	return ""
}

// site is a goatdb server on 127.0.0.1 with the console, and a browser
// tab pointed at it.
type site struct {
	t    *testing.T
	db   *goatdb.DB // the server's database
	srv  *server.Server
	url  string
	tab  context.Context
	errs *pageErrors
}

// pageErrors collects the uncaught exceptions of the page.
type pageErrors struct {
	mu   sync.Mutex // guards list
	list []string
}

func (p *pageErrors) add(ev any) {
	if e, ok := ev.(*runtime.EventExceptionThrown); ok {
		p.mu.Lock()
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		p.list = append(p.list, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
		p.mu.Unlock()
	}
}

func (p *pageErrors) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.list, "\n")
}

// newSite starts a server (with authentication when rules is not nil) and
// a browser.
func newSite(t *testing.T, rules *authz.Rules) *site {
	t.Helper()
	return newSiteWith(t, rules, nil)
}

// newSiteWith is newSite with the server's database opened with dbOpts.
func newSiteWith(t *testing.T, rules *authz.Rules, dbOpts *goatdb.Options) *site {
	t.Helper()
	exe := chromium(t)
	db := dbtest.OpenDB(t, dbOpts)
	opts := &server.Options{RateLimit: -1}
	if rules != nil {
		id, _, err := server.NewIdentity("console-test")
		if err != nil {
			t.Fatal(err)
		}
		opts.Auth = &server.AuthOptions{Identity: id, Rules: rules}
	}
	srv, err := server.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(withConsole(srv.Handler()))
	t.Cleanup(func() {
		ts.CloseClientConnections() // event streams end with their connections
		ts.Close()
		srv.Close()
	})
	s := &site{t: t, db: db, srv: srv, url: ts.URL, errs: &pageErrors{}}
	s.tab = browser(t, exe)
	if err := chromedp.Do(s.tab); err != nil { // start it, so no event is missed
		t.Fatalf("start %s: %v", exe, err)
	}
	if err := chromedp.Listen(s.tab, s.errs.add); err != nil {
		t.Fatal(err)
	}
	return s
}

// withConsole returns h, serving the console at / and /console/ if h does
// not already.
func withConsole(h http.Handler) http.Handler {
	if answers(h, "/", "text/html") {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", console.Handler())
	mux.Handle("/console/", console.Handler())
	mux.Handle("/", h)
	return mux
}

// answers reports whether h answers GET path with 200 and ctype.
func answers(h http.Handler, path, ctype string) bool {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), ctype)
}

// browser starts a headless Chromium with its own profile for the test.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	tab, tcancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() { tcancel(); acancel(); cancel() })
	return tab
}

// open navigates to the console at fragment (such as "#/repos").
func (s *site) open(fragment string) {
	s.t.Helper()
	if err := chromedp.Do(s.tab, chromedp.Navigate(s.url+"/"+fragment)); err != nil {
		s.t.Fatalf("open %s: %v", fragment, err)
	}
}

// do runs steps, failing the test with what the page shows.
func (s *site) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	if err := chromedp.Do(s.tab, steps...); err != nil {
		s.fail(what, err)
	}
}

// wait waits until the JavaScript expression is true.
func (s *site) wait(what, expr string) {
	s.t.Helper()
	if _, err := chromedp.Run(s.tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		s.fail(what, err)
	}
}

// text returns the text of the first element matching a CSS selector.
func (s *site) text(sel string) string {
	s.t.Helper()
	v, err := chromedp.Run(s.tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	if err != nil {
		s.fail("read "+sel, err)
	}
	return v
}

func (s *site) fail(what string, err error) {
	s.t.Helper()
	body, _ := chromedp.Run(context.WithoutCancel(s.tab), chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	s.t.Fatalf("%s: %v\npage errors: %s\npage text:\n%s", what, err, s.errs, body)
}

// setValue sets a form control's value (as typing would).
func (s *site) setValue(sel, value string) {
	s.t.Helper()
	s.do("set "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

func (s *site) click(sel string) {
	s.t.Helper()
	s.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// screenshot writes docs/console/NAME.png when GOATDB_SCREENSHOTS=1; other
// runs write nothing.
func (s *site) screenshot(name string) {
	s.t.Helper()
	if os.Getenv("GOATDB_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(s.tab, chromedp.FullScreenshot(100))
	if err != nil {
		s.fail("screenshot", err)
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// accessible fails the test if a form control on the page has no label or
// the page does not have exactly one h1.
func (s *site) accessible(page string) {
	s.t.Helper()
	bad, err := chromedp.Run(s.tab, chromedp.Evaluate[string](`[...document.querySelectorAll('input, select, textarea')]
		.filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.outerHTML).join(' ')
		+ (document.querySelectorAll('h1').length === 1 ? '' : ' h1 count ' + document.querySelectorAll('h1').length)`))
	if err != nil {
		s.fail("check labels", err)
	}
	if bad != "" {
		s.t.Errorf("%s: unlabelled controls or headings: %s", page, bad)
	}
}

func (s *site) put(path string, f goatdb.Fields) {
	s.t.Helper()
	if _, err := s.db.Put(path, f); err != nil {
		s.t.Fatal(err)
	}
}

func rows(sel string) string {
	return fmt.Sprintf(`document.querySelectorAll(%q).length`, sel+" tbody tr")
}

// notesRules let every logged-in user read and write /data/...
func notesRules(t *testing.T) *authz.Rules {
	t.Helper()
	var b authz.Builder
	b.Handle("/data/{repo}/{id}", authz.Rule{
		Scope: authz.ByRepo,
		Read:  func(_ context.Context, p authz.Principal, _ authz.Ref, _ item.Item) bool { return p.User != "" },
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, _, after item.Item) error {
			if p.User == "" {
				return errors.New("log in to write")
			}
			if v, ok := after.Get("title"); ok && v.Type() == item.TypeString && v.Str() == "secret" {
				return errors.New("no secret titles here")
			}
			return nil
		},
	})
	r, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLogin(t *testing.T) {
	s := newSite(t, notesRules(t))
	code, _, err := s.srv.Accounts().AddUser("alice", []string{"editor"})
	if err != nil {
		t.Fatal(err)
	}
	s.put("/data/notes/welcome", goatdb.Fields{"title": "hello", "n": 1})

	s.open("#/repos")
	s.wait("the login form", `!!document.querySelector('input[name=user]')`)
	s.do("type the user", chromedp.SendKeys(chromedp.CSS(`input[name=user]`), "alice"))
	s.do("type a wrong code", chromedp.SendKeys(chromedp.CSS(`input[name=code]`), "not-the-code"))
	s.click(`form.login button[type=submit]`)
	s.wait("the refusal", `document.querySelector('#login-error')?.textContent.includes('401')`)
	s.screenshot("login")
	s.accessible("login")

	s.setValue(`input[name=code]`, code)
	s.click(`form.login button[type=submit]`)
	s.wait("the repositories after login", `!!document.querySelector('#repos a[href="#/repo/data/notes"]')`)
	if who := s.text("#who"); !strings.Contains(who, "alice") {
		t.Errorf("header shows %q, want alice", who)
	}

	// A write with the cookie: signed by alice's session.
	s.open("#/item/data/notes/welcome")
	s.wait("the editor", `document.querySelector('#editor')?.value.includes('hello')`)
	s.setValue("#editor", `{"title": "hello from alice", "n": 2}`)
	s.click("#save")
	s.wait("saved", `document.querySelector('#editor-note')?.textContent.includes('Saved')`)
	if it, err := s.db.Get("/data/notes/welcome"); err != nil || it.Get("title") != "hello from alice" {
		t.Errorf("server holds %v (%v), want the edit", it.Fields(), err)
	}

	// A write the rules refuse: 403 and their reason next to the editor.
	s.setValue("#editor", `{"title": "secret"}`)
	s.click("#save")
	s.wait("the refusal", `document.querySelector('#editor-error')?.textContent.includes('403')`)
	if msg := s.text("#editor-error"); !strings.Contains(msg, "no secret titles here") {
		t.Errorf("editor error %q lacks the rules' reason", msg)
	}

	s.click("#logout")
	s.wait("the login form after logout", `!!document.querySelector('input[name=user]')`)
	resp, err := http.Get(s.url + "/v1/repos")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/repos without credentials: %d, want 401", resp.StatusCode)
	}
}

func TestBrowse(t *testing.T) {
	s := newSite(t, nil)
	for i := range 25 {
		s.put(fmt.Sprintf("/data/notes/k%02d", i), goatdb.Fields{"title": fmt.Sprintf("note %d", i), "n": i, "done": i%2 == 0})
	}
	s.put("/data/other/x", goatdb.Fields{"title": "elsewhere"})

	s.open("")
	s.wait("the repositories", `!!document.querySelector('#repos a[href="#/repo/data/notes"]')`)
	if txt := s.text("#repos"); !strings.Contains(txt, "/data/other") || !strings.Contains(txt, "25") {
		t.Errorf("repositories table %q, want both repositories and 25 items", txt)
	}
	s.click(`#repos a[href="#/repo/data/notes"]`)
	s.wait("the items", rows("#items")+` === 25`)

	s.do("ten a page", chromedp.SetValue(chromedp.CSS(`select[name=limit]`), "10"))
	s.click(`form[role=search] button[type=submit]`)
	s.wait("page 1", rows("#items")+` === 10 && document.querySelector('#items tbody tr')?.dataset.key === 'k00'`)
	s.screenshot("items")
	s.accessible("items")
	s.click("#next-page")
	s.wait("page 2", `document.querySelector('#items tbody tr')?.dataset.key === 'k10'`)
	s.click("#next-page")
	s.wait("page 3", rows("#items")+` === 5 && document.querySelector('#items tbody tr')?.dataset.key === 'k20'`)
	s.wait("no page 4", `document.querySelector('#next-page')?.disabled`)

	// By keyboard: type the filter and press Enter.
	s.do("type a filter", chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), `title == "note 7"`+kb.Enter))
	s.wait("the filtered items", rows("#items")+` === 1 && document.querySelector('#items tbody tr')?.dataset.key === 'k07'`)

	s.setValue(`input[name=filter]`, `title ==`)
	s.click(`form[role=search] button[type=submit]`)
	s.wait("the filter's error", `document.querySelector('#filter-error')?.textContent.includes('400')`)
	if inv, _ := chromedp.Run(s.tab, chromedp.Evaluate[string](`document.querySelector('input[name=filter]')?.getAttribute('aria-invalid') || ''`)); inv != "true" {
		t.Errorf("filter input aria-invalid %q, want true", inv)
	}
}

func TestItemHistoryDiff(t *testing.T) {
	s := newSite(t, nil)
	s.put("/data/notes/k1", goatdb.Fields{"title": "draft", "n": 1})
	s.put("/data/notes/k1", goatdb.Fields{"title": "final", "n": 1, "tags": []any{"a", "b"}})

	s.open("#/item/data/notes/k1")
	s.wait("the fields", `document.querySelector('#fields')?.textContent.includes('final')`)
	s.wait("the history", `document.querySelectorAll('#history li').length === 2`)
	s.click(`#diff-form button[type=submit]`)
	s.wait("the diff", `document.querySelector('#diff')?.textContent.includes('draft')`)
	diff := s.text("#diff")
	for _, want := range []string{"title", "changed", "final", "tags", "added"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff %q lacks %q", diff, want)
		}
	}
	s.screenshot("item")
	s.accessible("item")
}

func TestEdit(t *testing.T) {
	s := newSite(t, nil)
	s.put("/data/notes/k1", goatdb.Fields{"title": "first", "n": 1})

	s.open("#/item/data/notes/k1")
	s.wait("the editor", `document.querySelector('#editor')?.value.includes('first')`)
	s.setValue("#editor", `{"title": "edited", "n": 2, "done": true}`)
	s.click("#save")
	s.wait("saved", `document.querySelector('#editor-note')?.textContent.includes('Saved')`)
	it, err := s.db.Get("/data/notes/k1")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(it.Get("title"), " ", it.Get("n"), " ", it.Get("done")); got != "edited 2 true" {
		t.Errorf("server holds %v, want the edit", it.Fields())
	}
	s.wait("the new field in the table", `document.querySelector('#fields')?.textContent.includes('edited')`)

	// Not JSON: refused before it leaves the page.
	s.setValue("#editor", `{"title": `)
	s.click("#save")
	s.wait("the syntax error", `document.querySelector('#editor-error')?.textContent.includes('Not valid JSON')`)

	// Someone else writes: the save is refused with 412.
	s.put("/data/notes/k1", goatdb.Fields{"title": "theirs"})
	s.setValue("#editor", `{"title": "mine"}`)
	s.click("#save")
	s.wait("the conflict", `document.querySelector('#editor-error')?.textContent.includes('412')`)
	s.screenshot("editor-conflict")
	if it, _ := s.db.Get("/data/notes/k1"); it.Get("title") != "theirs" {
		t.Errorf("after a refused save the server holds %v, want theirs", it.Fields())
	}
	s.click("#editor-error button")
	s.wait("their version", `document.querySelector('#editor')?.value.includes('theirs')`)

	// A new item: created with If-None-Match: *.
	s.open("#/repo/data/notes")
	s.setValue(`input[name=key]`, "fresh")
	s.click(`#new-item button[type=submit]`)
	s.wait("the empty editor", `document.querySelector('#save')?.textContent === 'Create'`)
	s.setValue("#editor", `{"title": "brand new"}`)
	s.click("#save")
	s.wait("created", `document.querySelector('#editor-note')?.textContent.includes('Created')`)
	if it, err := s.db.Get("/data/notes/fresh"); err != nil || it.Get("title") != "brand new" {
		t.Errorf("server holds %v (%v), want the new item", it.Fields(), err)
	}
}

func TestLiveQuery(t *testing.T) {
	s := newSite(t, nil)
	s.put("/data/notes/a", goatdb.Fields{"title": "already here"})

	s.open("#/live?repo=/data/notes")
	s.wait("the first results", rows("#live")+` === 1`)
	s.wait("the stream", `document.querySelector('#live-state')?.textContent.startsWith('Live')`)

	// A write on the server's database.
	s.put("/data/notes/b", goatdb.Fields{"title": "written on the server"})
	s.wait("the server's write", `!!document.querySelector('#live tr[data-key="b"]')`)

	// A second database syncing to the server.
	peer := dbtest.OpenDB(t, nil)
	if _, err := peer.Put("/data/notes/c", goatdb.Fields{"title": "synced from a peer"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := peer.Sync(ctx, s.url, "/data/notes"); err != nil {
		t.Fatal(err)
	}
	s.wait("the peer's write", `!!document.querySelector('#live tr[data-key="c"]')`)
	s.wait("the log", `document.querySelectorAll('#live-log li').length >= 2`)
	s.screenshot("live")
	s.accessible("live")
}

func TestServerPage(t *testing.T) {
	s := newSite(t, nil)
	s.open("#/server")
	s.wait("the server's facts", `!!document.querySelector('#server-facts')?.textContent.includes('status')`)
	s.screenshot("server")
	if s.errs.String() != "" {
		t.Errorf("page errors: %s", s.errs)
	}
}

// TestFirstLoad measures the bytes a browser transfers for the console's
// first load (HTML, CSS, JavaScript, icon) and holds them to 200 KB.
func TestFirstLoad(t *testing.T) {
	s := newSite(t, nil)
	var mu sync.Mutex // guards urls and size
	urls := map[network.RequestID]string{}
	size := map[string]float64{}
	chromedp.Listen(s.tab, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[e.RequestID] = e.Request.URL
		case *network.EventLoadingFinished:
			size[urls[e.RequestID]] += e.EncodedDataLength
		}
	})
	s.open("")
	s.wait("the repositories", `!!document.querySelector('#repos') || document.body.innerText.includes('No repositories')`)

	resp, err := http.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP {
		t.Errorf("GET / policy %q, want %q", got, console.CSP)
	}

	mu.Lock()
	defer mu.Unlock()
	var console, all float64
	var parts []string
	for u, n := range size {
		all += n
		if p := strings.TrimPrefix(u, s.url); p == "/" || strings.HasPrefix(p, "/console/") {
			console += n
			parts = append(parts, fmt.Sprintf("%s %.0f B", p, n))
		}
	}
	raw, gz := consoleSizes()
	t.Logf("first load: %.0f bytes on the wire for the console (%s), %.0f with the API calls; files %d bytes, %d gzip-compressed", console, strings.Join(parts, ", "), all, raw, gz)
	if console == 0 || len(parts) < 3 {
		t.Fatalf("measured %v, want the page, its CSS and its script", parts)
	}
	if console > 200*1024 {
		t.Errorf("first load %.0f bytes, want ≤ 200 KB", console)
	}
}

func consoleSizes() (raw, gz int) { return console.Sizes() }
