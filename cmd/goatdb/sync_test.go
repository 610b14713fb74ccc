package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
)

// outBuffer is a buffer that a running command writes to while the test
// reads it.
type outBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *outBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *outBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background is a 'goatdb serve' running in-process.
type background struct {
	url            string
	stdout, stderr *outBuffer
	stop           func() int // cancels the context and returns the exit status
}

// servingLine matches serve's first lines: that it made the data directory,
// if it did, and where it serves.
var servingLine = regexp.MustCompile(`^(?:goatdb: (?:created the data directory .+|.+ was not a goatdb data directory: made it one), a new, empty database\n)?goatdb: serving (.+) on (https?://127\.0\.0\.1:[0-9]+)\n`)

// startServe runs 'goatdb serve' on dir and a free loopback port, with
// flags after its own, until stop (or the end of the test), and returns
// once it prints its URL.
func startServe(t *testing.T, dir string, flags ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{stdout: new(outBuffer), stderr: new(outBuffer)}
	done := make(chan int, 1)
	args := append([]string{"--dir", dir, "serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, flags...)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), b.stdout, b.stderr)
	}()
	var once sync.Once
	var code int
	b.stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { b.stop() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingLine.FindStringSubmatch(b.stdout.String()); m != nil {
			if m[1] != dir {
				t.Errorf("serving line names %s, want %s", m[1], dir)
			}
			b.url = m[2]
			return b
		}
		select {
		case code := <-done:
			done <- code // for stop
			t.Fatalf("serve exited with %d before serving: stdout %q, stderr %q", code, b.stdout, b.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line after 10s: stdout %q, stderr %q", b.stdout, b.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var syncLine = regexp.MustCompile(`^sent ([0-9]+) commit(s?) \([0-9.]+ (?:B|kB|MB)\), received ([0-9]+) commit(s?) \([0-9.]+ (?:B|kB|MB)\), ([0-9]+) round trip(s?), ([0-9]+) repositor(y|ies) in sync\n$`)

// syncOK runs 'goatdb sync' with args in dir, which must succeed, and
// returns the numbers of its summary line: commits sent, received, round
// trips, repositories in sync.
func syncOK(t *testing.T, dir string, args ...string) (sent, received, rounds, inSync string) {
	t.Helper()
	out := ok(t, dir, append([]string{"sync"}, args...)...)
	m := syncLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sync %v printed %q, want a summary line", args, out)
	}
	for i := 1; i < len(m); i += 2 {
		if plural := m[i+1] == "s" || m[i+1] == "ies"; plural == (m[i] == "1") {
			t.Errorf("sync printed %q: %s with %q", out, m[i], m[i+1])
		}
	}
	return m[1], m[3], m[5], m[7]
}

// TestServeAndSync runs 'goatdb serve' in-process and syncs two other
// directories, logged in as two users, through it with 'goatdb sync'.
func TestServeAndSync(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	srv := startServe(t, srvDir)

	t.Run("push", func(t *testing.T) {
		a := loggedIn(t, srvDir, srv.url, "alice")
		mustPut(t, a, "/data/tasks/t1", `{"title": "from a"}`)
		sent, received, rounds, inSync := syncOK(t, a, srv.url)
		if sent != "1" || received != "0" || rounds == "0" || inSync != "1" {
			t.Errorf("push: sent %s, received %s, %s round trips, %s in sync; want 1, 0, at least 1, 1", sent, received, rounds, inSync)
		}
		if got := ok(t, a, "sync", srv.url+"/"); !syncLine.MatchString(got) || !strings.HasPrefix(got, "sent 0 commits") {
			t.Errorf("sync again (URL with a trailing slash): %q, want nothing sent", got)
		}
	})

	b := loggedIn(t, srvDir, srv.url, "bob")
	t.Run("pull a named repository", func(t *testing.T) {
		sent, received, _, inSync := syncOK(t, b, srv.url, "/data/tasks")
		if sent != "0" || received != "1" || inSync != "1" {
			t.Errorf("pull: sent %s, received %s, %s in sync; want 0, 1, 1", sent, received, inSync)
		}
		if got := ok(t, b, "get", "/data/tasks/t1"); got != `{"title":"from a"}`+"\n" {
			t.Errorf("get after the pull: %q", got)
		}
	})

	t.Run("json", func(t *testing.T) {
		out := ok(t, b, "sync", srv.url, "--json")
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Errorf("sync --json printed %q, want one line", out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("sync --json: %v: %q", err, out)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		want := []string{"bytes_received", "bytes_sent", "commits_received", "commits_sent", "converged", "refused", "rejected", "rounds", "server"}
		if !slices.Equal(keys, want) {
			t.Errorf("sync --json keys %v, want %v", keys, want)
		}
		if m["server"] != srv.url || m["converged"] != 1.0 || m["rounds"] != 1.0 || m["commits_sent"] != 0.0 || m["commits_received"] != 0.0 {
			t.Errorf("sync --json in sync: %v", m)
		}
		if bs, ok := m["bytes_sent"].(float64); !ok || bs <= 0 {
			t.Errorf("bytes_sent %v", m["bytes_sent"])
		}
		for _, k := range []string{"rejected", "refused"} {
			if l, ok := m[k].([]any); !ok || len(l) != 0 {
				t.Errorf("%s = %v, want []", k, m[k])
			}
		}
	})

	t.Run("failures", func(t *testing.T) {
		c := loggedIn(t, srvDir, srv.url, "carol")
		r := cli(t, c, "", "sync", srv.url, "/data/none")
		if r.code != 2 || !strings.HasPrefix(r.stderr, "goatdb: ") || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, "/data/none does not exist on this server") {
			t.Errorf("sync of a repository the server lacks: exit %d, stderr %q", r.code, r.stderr)
		}

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		failure(t, cli(t, c, "", "sync", closed), 2, "is 'goatdb serve' running there?")
		failure(t, cli(t, c, "", "sync", "ftp://127.0.0.1:1"), 2, "want http:// or https://")
		failure(t, cli(t, c, "", "sync"), 2, "sync needs the server URL")
		failure(t, cli(t, c, "", "sync", srv.url, "/data"), 2, "/data")

		failure(t, cli(t, srvDir, "", "serve", "--addr", "127.0.0.1:0"), 2, "in use by another goatdb process")
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		failure(t, cli(t, c, "", "serve", "--addr", busy.Addr().String()), 2, "listen on "+busy.Addr().String())
		failure(t, cli(t, c, "", "serve", "extra"), 2, "serve takes no arguments")
		failure(t, cli(t, c, "", "serve", "--log-level", "loud"), 2, "--log-level")
	})

	if code := srv.stop(); code != 0 {
		t.Errorf("serve after cancel: exit %d, stderr %q", code, srv.stderr)
	}
	if got, want := srv.stdout.String(), "goatdb: serving "+srvDir+" on "+srv.url+"\ngoatdb: console on "+srv.url+"/\ngoatdb: stopped\n"; got != want {
		t.Errorf("serve printed %q, want %q", got, want)
	}
	if s := srv.stderr.String(); s != "" {
		t.Errorf("serve at --log-level warn wrote to stderr: %q", s)
	}
	// The server's directory holds what was pushed, and is free again.
	if got := ok(t, srvDir, "get", "/data/tasks/t1"); got != `{"title":"from a"}`+"\n" {
		t.Errorf("get on the server's directory: %q", got)
	}
}

func TestHelpServeAndSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if h := ok(t, dir, "help", "serve"); !strings.HasPrefix(h, "Usage: goatdb serve") || !strings.Contains(h, "--addr") || !strings.Contains(h, "-log-level") {
		t.Errorf("help serve:\n%s", h)
	}
	if h := ok(t, dir, "help", "sync"); !strings.HasPrefix(h, "Usage: goatdb sync [flags] URL[,URL...] [REPO...]") || !strings.Contains(h, "-json") {
		t.Errorf("help sync:\n%s", h)
	}
}

// closedURL returns the URL of a loopback port nobody listens on: a
// listener's, closed.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return url
}

// TestSyncExitStatus: sync exits 0 only when every repository synced and
// no commit was refused, whether the directory has repositories or not.
func TestSyncExitStatus(t *testing.T) {
	t.Parallel()
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		url := closedURL(t)
		empty := newDir(t)
		failure(t, cli(t, empty, "", "sync", url), exitUsage, "server unreachable")
		failure(t, cli(t, empty, "", "sync", url, "--json"), exitUsage, "is 'goatdb serve' running there?")
		withRepo := newDir(t)
		mustPut(t, withRepo, "/data/x/a", `{"a": 1}`)
		failure(t, cli(t, withRepo, "", "sync", url), exitUsage, "is 'goatdb serve' running there?")
		failure(t, cli(t, withRepo, "", "sync", url, "/data/x"), exitUsage, "is 'goatdb serve' running there?")
	})

	srvDir := newDir(t)
	// A commit stamped an hour ahead of every clock but its writer's:
	// clients refuse it.
	db, err := goatdb.Open(srvDir, &goatdb.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put("/data/future/a", goatdb.Fields{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, srvDir)

	t.Run("nothing to sync", func(t *testing.T) {
		t.Parallel()
		c := loggedIn(t, srvDir, srv.url, "carol")
		if got, want := ok(t, c, "sync", srv.url), "no repositories here to sync; "+srv.url+" answers (name a repository to fetch it)\n"; got != want {
			t.Errorf("sync with no repositories: %q, want %q", got, want)
		}
		stranger := newDir(t) // never logged in
		failure(t, cli(t, stranger, "", "sync", srv.url), exitUsage, "answered 401 Unauthorized: session "+sessionOf(t, stranger)+" is not logged in on this server")
		withRepo := newDir(t)
		mustPut(t, withRepo, "/data/x/a", `{"a": 1}`)
		failure(t, cli(t, withRepo, "", "sync", srv.url), exitUsage, "not logged in there")
	})

	t.Run("refused here", func(t *testing.T) {
		t.Parallel()
		c := loggedIn(t, srvDir, srv.url, "dave")
		r := cli(t, c, "", "sync", srv.url, "/data/future")
		if r.code != exitFail || !strings.Contains(r.stdout, "refused here: /data/future commit ") ||
			r.stderr != "goatdb: 1 of the server's commits were refused here (listed above)\n" {
			t.Errorf("sync of a commit from the future: %+v", r)
		}
	})

	t.Run("partial failure", func(t *testing.T) {
		t.Parallel()
		c := loggedIn(t, srvDir, srv.url, "erin")
		mustPut(t, c, "/data/mine/a", `{"a": 1}`)
		r := cli(t, c, "", "sync", srv.url, "/data/mine", "/data/none")
		if r.code != exitUsage || !strings.Contains(r.stderr, "/data/none does not exist on this server") || !syncLine.MatchString(r.stdout) {
			t.Errorf("sync of a repository the server has and one it lacks: %+v", r)
		}
	})
}
