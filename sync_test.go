package goatdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// syncServer serves a new database with package server on a loopback
// httptest server and returns the database and the URL.
func syncServer(t *testing.T) (*goatdb.DB, string) {
	t.Helper()
	return syncServerWith(t, nil)
}

// syncServerWith serves a new database opened with opts.
func syncServerWith(t *testing.T, opts *goatdb.Options) (*goatdb.DB, string) {
	t.Helper()
	db := dbtest.OpenDB(t, opts)
	srv, err := server.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return db, hs.URL
}

// syncItems writes n items to repo in one batch.
func syncItems(t *testing.T, db *goatdb.DB, repo string, from, to int) {
	t.Helper()
	b := db.Batch()
	for i := from; i < to; i++ {
		b.Put(fmt.Sprintf("%s/i%04d", repo, i), goatdb.Fields{"n": float64(i)})
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func syncOK(t *testing.T, db *goatdb.DB, url string, repos ...string) goatdb.SyncStats {
	t.Helper()
	st, err := db.Sync(context.Background(), url, repos...)
	if err != nil {
		t.Fatalf("sync: %v (stats %+v)", err, st)
	}
	return st
}

// dirFiles maps every file under dir to its size.
func dirFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// resumeFile is the shape of DIR/resume.json.
type resumeFile struct {
	Version int                                  `json:"version"`
	Servers map[string]map[string]map[string]any `json:"servers"`
}

// readResume decodes dir/resume.json, failing if it is not a valid
// version 1 file.
func readResume(t *testing.T, dir string) resumeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "resume.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f resumeFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("resume.json: %v\n%s", err, b)
	}
	if f.Version != 1 {
		t.Fatalf("resume.json version %d, want 1", f.Version)
	}
	return f
}

// logBuffer is a slog destination the test reads.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNormalizeServerURL(t *testing.T) {
	good := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080//", "http://127.0.0.1:8080"},
		{"https://example.com/goat/", "https://example.com/goat"},
		{"HTTP://localhost:1", "http://localhost:1"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
	}
	for _, tt := range good {
		got, err := goatdb.NormalizeServerURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeServerURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "want http:// or https://"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"localhost:8080", "want http:// or https://"},
		{"ftp://example.com", "want http:// or https://"},
		{"file:///tmp/x", "want http:// or https://"},
		{"http://", "has no host"},
		{"http:///path", "has no host"},
		{"http://h?x=1", "remove the query, fragment or user part"},
		{"http://h/#frag", "remove the query, fragment or user part"},
		{"http://user@h", "remove the query, fragment or user part"},
		{"http://user:pw@h/", "remove the query, fragment or user part"},
		{"http://h/\x7f", "invalid control character"},
	}
	for _, tt := range bad {
		got, err := goatdb.NormalizeServerURL(tt.in)
		if err == nil {
			t.Errorf("NormalizeServerURL(%q) = %q, want an error", tt.in, got)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "goatdb: server URL ") || !strings.Contains(msg, tt.why) {
			t.Errorf("NormalizeServerURL(%q): %q, want it to say %q", tt.in, msg, tt.why)
		}
	}
	t.Run("empty query", func(t *testing.T) {
		// The sync route is appended to the normalised URL, so a kept "?"
		// turns "/v1/sync" into a query.
		if got, err := goatdb.NormalizeServerURL("http://h/?"); err == nil {
			t.Errorf("NormalizeServerURL(%q) = %q, want an error", "http://h/?", got)
		}
	})
}

// A Sync that cannot start (bad URL, bad repository path, closed
// database) says why and writes nothing, not even the repositories it
// names.
func TestSyncRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	syncItems(t, db, "/data/r", 0, 3)
	before := dirFiles(t, dir)
	tests := []struct {
		url   string
		repos []string
		want  string
		is    error
	}{
		{"ftp://127.0.0.1:1", []string{"/data/new"}, `server URL "ftp://127.0.0.1:1": want http:// or https://`, nil},
		{"127.0.0.1:1", nil, `server URL "127.0.0.1:1"`, nil},
		{"http://127.0.0.1:1?x", []string{"/data/new"}, "remove the query", nil},
		{"http://127.0.0.1:1", []string{"/bad"}, "/bad", goatdb.ErrInvalidPath},
		{"http://127.0.0.1:1", []string{"/data/new/item"}, "/data/new/item", goatdb.ErrInvalidPath},
	}
	for _, tt := range tests {
		st, err := db.Sync(context.Background(), tt.url, tt.repos...)
		switch {
		case err == nil:
			t.Errorf("Sync(%q, %v) succeeded", tt.url, tt.repos)
		case !strings.Contains(err.Error(), tt.want):
			t.Errorf("Sync(%q, %v): %v, want it to say %q", tt.url, tt.repos, err, tt.want)
		case tt.is != nil && !errors.Is(err, tt.is):
			t.Errorf("Sync(%q, %v): %v, want %v", tt.url, tt.repos, err, tt.is)
		case errors.Is(err, goatdb.ErrUnreachable):
			t.Errorf("Sync(%q, %v): %v is ErrUnreachable; nothing was sent", tt.url, tt.repos, err)
		}
		if st.Rounds != 0 || st.BytesSent != 0 {
			t.Errorf("Sync(%q, %v) sent something: %+v", tt.url, tt.repos, st)
		}
	}
	if after := dirFiles(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Sync(context.Background(), "http://127.0.0.1:1"); !errors.Is(err, goatdb.ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}

	t.Run("bad path after a good one", func(t *testing.T) {
		dir := t.TempDir()
		db := dbtest.OpenDBIn(t, dir, nil)
		before := dirFiles(t, dir)
		if _, err := db.Sync(context.Background(), "http://127.0.0.1:1", "/data/new", "/bad"); !errors.Is(err, goatdb.ErrInvalidPath) {
			t.Fatalf("Sync with an invalid path: %v, want ErrInvalidPath", err)
		}
		if after := dirFiles(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("a refused Sync left %v", after)
		}
	})
}

// Resume points are kept in DIR/resume.json: a database reopened from the
// directory syncs in one small round trip what it synced before.
func TestSyncResumePointsPersist(t *testing.T) {
	srvDB, url := syncServer(t)
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	syncItems(t, db, "/data/r", 0, 300)
	first := syncOK(t, db, url)
	if first.CommitsSent != 300 || first.Converged != 1 {
		t.Fatalf("first sync: %+v, want 300 commits sent and 1 repository converged", first)
	}
	f := readResume(t, dir)
	if _, ok := f.Servers[url]["/data/r"]; !ok {
		t.Fatalf("resume.json has no point for %s /data/r: %+v", url, f)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A copy of the directory without resume.json shows what the same
	// in-sync sync costs on first contact (a rateless IBLT exchange that
	// ends at once: the digests match).
	cold := filepath.Join(t.TempDir(), "cold")
	if err := os.CopyFS(cold, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cold, "resume.json")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cold, "LOCK"))
	coldDB := dbtest.OpenDBIn(t, cold, nil)
	bloom := syncOK(t, coldDB, url)

	db = dbtest.OpenDBIn(t, dir, nil)
	warm := syncOK(t, db, url)
	t.Logf("bytes sent: first contact %d, in sync without resume points %d, with %d", first.BytesSent, bloom.BytesSent, warm.BytesSent)
	if warm.Rounds != 1 || warm.CommitsSent+warm.CommitsReceived != 0 || warm.Converged != 1 {
		t.Errorf("sync of a reopened database in sync: %+v, want 1 round trip, nothing moved", warm)
	}
	if warm.BytesSent > bloom.BytesSent || warm.BytesSent*20 > first.BytesSent {
		t.Errorf("sync with resume points sent %d bytes; without them %d, on first contact %d", warm.BytesSent, bloom.BytesSent, first.BytesSent)
	}
	if warm.BytesSent+warm.BytesReceived > 512 {
		t.Errorf("sync with resume points moved %d+%d bytes, want a few dozen each way", warm.BytesSent, warm.BytesReceived)
	}

	// A new write goes alone, in one round trip.
	syncItems(t, db, "/data/r", 300, 301)
	st := syncOK(t, db, url)
	if st.Rounds != 1 || st.CommitsSent != 1 || st.CommitsReceived != 0 {
		t.Errorf("sync of one new commit: %+v, want 1 round trip and 1 commit sent", st)
	}
	if n, err := srvDB.Count("/data/r"); err != nil || n != 301 {
		t.Errorf("server holds %d items (%v), want 301", n, err)
	}
}

// A damaged or stale resume.json costs a Bloom round, never a commit: the
// sync converges, a damaged file is reported in the log and written anew.
func TestSyncDamagedResumeFile(t *testing.T) {
	srvDB, url := syncServer(t)
	tests := []struct {
		name    string
		damage  func(old []byte) []byte
		warning bool
	}{
		{"garbage", func([]byte) []byte { return []byte("\x00\xffnot json at all") }, true},
		{"empty", func([]byte) []byte { return nil }, true},
		{"truncated", func(old []byte) []byte { return old[:len(old)/2] }, true},
		{"unknown version", func(old []byte) []byte { return bytes.Replace(old, []byte(`"version": 1`), []byte(`"version": 7`), 1) }, true},
		{"unknown field", func(old []byte) []byte {
			return bytes.Replace(old, []byte(`"version": 1`), []byte(`"version": 1, "extra": 1`), 1)
		}, true},
		{"stale positions", func(old []byte) []byte {
			var f map[string]any
			if err := json.Unmarshal(old, &f); err != nil {
				panic(err)
			}
			for _, repos := range f["servers"].(map[string]any) {
				for _, p := range repos.(map[string]any) {
					p.(map[string]any)["server_seq"] = 1 << 40
					p.(map[string]any)["local_seq"] = 0
				}
			}
			b, _ := json.Marshal(f)
			return b
		}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("/data/d%d", i)
			dir := t.TempDir()
			db := dbtest.OpenDBIn(t, dir, nil)
			syncItems(t, db, repo, 0, 50)
			syncOK(t, db, url)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			// Meanwhile the server gets items this client lacks.
			syncItems(t, srvDB, repo, 100, 120)

			name := filepath.Join(dir, "resume.json")
			old, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, tt.damage(old), 0o644); err != nil {
				t.Fatal(err)
			}
			logs := new(logBuffer)
			db = dbtest.OpenDBIn(t, dir, &goatdb.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			st := syncOK(t, db, url)
			if st.Converged != 1 || st.CommitsReceived < 20 {
				t.Errorf("sync with a %s resume file: %+v, want 1 converged and the server's 20 new commits", tt.name, st)
			}
			if n, err := db.Count(repo); err != nil || n != 70 {
				t.Errorf("client holds %d items (%v), want 70", n, err)
			}
			warned := strings.Contains(logs.String(), "level=WARN msg=\"ignoring damaged sync resume points")
			if warned != tt.warning {
				t.Errorf("warning logged: %v, want %v; log:\n%s", warned, tt.warning, logs)
			}
			if _, ok := readResume(t, dir).Servers[url][repo]; !ok {
				t.Errorf("resume.json was not rewritten with a point for %s", repo)
			}
			// And the rewritten file is used.
			if st := syncOK(t, db, url); st.Rounds != 1 || st.CommitsReceived+st.CommitsSent != 0 {
				t.Errorf("next sync: %+v, want 1 round trip and nothing moved", st)
			}
		})
	}
}

// An HTTP error from the server is a *ServerError with its status, reason
// and Retry-After.
func TestSyncServerError(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		wantAfter  time.Duration
		temporary  bool
	}{
		{http.StatusTooManyRequests, "3", 3 * time.Second, true},
		{http.StatusServiceUnavailable, "", 0, true},
		{http.StatusInternalServerError, "junk", 0, true},
		{http.StatusBadRequest, "", 0, false},
		{http.StatusUnsupportedMediaType, "", 0, false},
	}
	db := dbtest.OpenDB(t, nil)
	syncItems(t, db, "/data/e", 0, 2)
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, "  the reason\nmore lines\n")
			}))
			defer hs.Close()
			_, err := db.Sync(context.Background(), hs.URL)
			var se *goatdb.ServerError
			if !errors.As(err, &se) {
				t.Fatalf("Sync: %v (%T), want a *ServerError", err, err)
			}
			if se.Status != tt.status || se.RetryAfter != tt.wantAfter || se.Temporary() != tt.temporary || se.Message != "the reason" {
				t.Errorf("ServerError %+v, Temporary %v; want status %d, RetryAfter %v, Temporary %v, message %q",
					*se, se.Temporary(), tt.status, tt.wantAfter, tt.temporary, "the reason")
			}
			if se.URL != hs.URL+"/v1/sync" {
				t.Errorf("ServerError.URL %q, want %q", se.URL, hs.URL+"/v1/sync")
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(tt.status)) || !strings.Contains(msg, "the reason") {
				t.Errorf("error %q does not give the status and reason", msg)
			}
			if errors.Is(err, goatdb.ErrUnreachable) {
				t.Errorf("an HTTP answer is ErrUnreachable: %v", err)
			}
		})
	}
}

func TestSyncUnreachable(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	syncItems(t, db, "/data/u", 0, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	st, err := db.Sync(context.Background(), url)
	if !errors.Is(err, goatdb.ErrUnreachable) {
		t.Errorf("Sync with a closed port: %v, want ErrUnreachable", err)
	}
	if st.Converged != 0 || st.BytesReceived != 0 {
		t.Errorf("stats of a failed sync: %+v", st)
	}

	// A cancelled sync says so, rather than blaming the server.
	_, url2 := syncServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Sync(ctx, url2); !errors.Is(err, context.Canceled) || errors.Is(err, goatdb.ErrUnreachable) {
		t.Errorf("Sync with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(db.Dir(), "resume.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed syncs wrote resume.json: %v", err)
	}
}

// A sync of a repository the server lacks fails; the empty repository it
// created here must not make every later sync of the directory fail.
func TestSyncUnknownRepository(t *testing.T) {
	_, url := syncServer(t)
	db := dbtest.OpenDB(t, nil)
	syncItems(t, db, "/data/k", 0, 2)
	syncOK(t, db, url)
	_, err := db.Sync(context.Background(), url, "/data/none")
	if !errors.Is(err, syncproto.ErrUnknownRepo) || !strings.Contains(err.Error(), "/data/none does not exist on this server") {
		t.Fatalf("sync of a repository the server lacks: %v, want ErrUnknownRepo", err)
	}
	if _, err := db.Sync(context.Background(), url); err != nil {
		t.Errorf("after a failed sync of /data/none, the sync of the whole directory fails: %v", err)
	}
}

func TestStartSyncValidation(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	tests := []struct {
		name    string
		servers []string
		opts    *goatdb.SyncOptions
		want    string
		is      error
	}{
		{"no servers", nil, nil, "at least one server URL", nil},
		{"empty server list", []string{}, &goatdb.SyncOptions{}, "at least one server URL", nil},
		{"bad URL", []string{"ftp://127.0.0.1:1"}, nil, "want http:// or https://", nil},
		{"one bad URL of two", []string{"http://127.0.0.1:1", "http://h?q"}, nil, "remove the query", nil},
		{"bad repository path", []string{"http://127.0.0.1:1"}, &goatdb.SyncOptions{Repos: []string{"/data/ok", "/data"}}, "/data", goatdb.ErrInvalidPath},
		{"item path as repository", []string{"http://127.0.0.1:1"}, &goatdb.SyncOptions{Repos: []string{"/data/r/item"}}, "/data/r/item", goatdb.ErrInvalidPath},
		{"negative backoff", []string{"http://127.0.0.1:1"}, &goatdb.SyncOptions{MinBackoff: -time.Second}, "negative duration", nil},
		{"negative interval", []string{"http://127.0.0.1:1"}, &goatdb.SyncOptions{Interval: -1}, "negative duration", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := db.StartSync(tt.servers, tt.opts)
			if err == nil {
				s.Stop()
				t.Fatal("StartSync succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("StartSync: %v, want it to say %q", err, tt.want)
			}
			if s != nil {
				t.Errorf("StartSync returned a Syncer with an error")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(db.Dir(), "data")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused StartSync created repositories: %v", err)
	}

	t.Run("read-only database", func(t *testing.T) {
		ro := dbtest.OpenDB(t, &goatdb.Options{ReadOnly: true})
		if s, err := ro.StartSync([]string{"http://127.0.0.1:1"}, nil); err == nil || !strings.Contains(err.Error(), "read-only") {
			if s != nil {
				s.Stop()
			}
			t.Errorf("StartSync on a read-only database: %v, want an error", err)
		}
	})
	t.Run("closed database", func(t *testing.T) {
		c := dbtest.OpenDB(t, nil)
		c.Close()
		if s, err := c.StartSync([]string{"http://127.0.0.1:1"}, nil); !errors.Is(err, goatdb.ErrClosed) {
			if s != nil {
				s.Stop()
			}
			t.Errorf("StartSync on a closed database: %v, want ErrClosed", err)
		}
	})
}

// syncerGoroutines counts the goroutines running a Syncer's code.
func syncerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "goatdb.(*Syncer).") || strings.Contains(g, "goatdb.(*serverLoop).") {
			count++
		}
	}
	return count
}

// waitSyncerGoroutines waits until at most n goroutines run a Syncer's
// code.
func waitSyncerGoroutines(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syncerGoroutines() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines still run a Syncer's code, want %d", what, syncerGoroutines(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop may be called any number of times, and Close stops the database's
// Syncers; either way none of their goroutines is left.
func TestSyncerStopAndClose(t *testing.T) {
	srvDB, url := syncServer(t)
	base := syncerGoroutines()
	// start writes an item to /data/s and starts a Syncer, which pushes it.
	start := func(t *testing.T, db *goatdb.DB, item int) *goatdb.Syncer {
		t.Helper()
		syncItems(t, db, "/data/s", item, item+1)
		s, err := db.StartSync([]string{url}, &goatdb.SyncOptions{MinBackoff: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for st := s.Status()[0]; !st.Listening || st.Syncs == 0; st = s.Status()[0] {
			if time.Now().After(deadline) {
				t.Fatalf("syncer not listening and synced after 5s: %+v", st)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if syncerGoroutines() <= base {
			t.Fatal("no goroutine runs the Syncer's code while it runs")
		}
		return s
	}

	t.Run("Stop twice", func(t *testing.T) {
		db := dbtest.OpenDB(t, nil)
		s := start(t, db, 0)
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if err := s.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		waitSyncerGoroutines(t, base, "after Stop")
		if st := s.Status()[0]; st.Listening {
			t.Errorf("status after Stop: %+v", st)
		}
		// The database still works, and syncs by hand.
		syncItems(t, db, "/data/s", 1, 2)
		syncOK(t, db, url)
		if err := db.Close(); err != nil {
			t.Errorf("Close after Stop: %v", err)
		}
	})

	t.Run("Close stops it", func(t *testing.T) {
		dir := t.TempDir()
		db := dbtest.OpenDBIn(t, dir, nil)
		s := start(t, db, 10)
		syncItems(t, db, "/data/s", 11, 12)
		if err := db.Close(); err != nil {
			t.Errorf("Close with a running Syncer: %v", err)
		}
		waitSyncerGoroutines(t, base, "after Close")
		if err := s.Stop(); err != nil {
			t.Errorf("Stop after Close: %v", err)
		}
		// The directory is released: another database can open it.
		dbtest.OpenDBIn(t, dir, nil)
	})
	for _, p := range []string{"/data/s/i0000", "/data/s/i0001", "/data/s/i0010"} {
		if _, err := srvDB.Get(p); err != nil {
			t.Errorf("the server lacks %s: %v", p, err)
		}
	}
}
