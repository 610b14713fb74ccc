package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var purgedLine = regexp.MustCompile(`^purged (/\S+): ([0-9]+) commits?, at \S+Z; no node sends them any more, and the next compaction \('goatdb gc'\) drops them from the logs\n$`)

// purgeOK runs 'goatdb purge PATH --reason ...' on a server's directory,
// which must succeed, and returns how many commits it purged.
func purgeOK(t *testing.T, srvDir, path string) string {
	t.Helper()
	out := ok(t, srvDir, "purge", path, "--reason", "erasure request #7")
	m := purgedLine.FindStringSubmatch(out)
	if m == nil || m[1] != path {
		t.Fatalf("purge %s printed %q", path, out)
	}
	return m[2]
}

// TestPurgeUsage: purge takes one item path outside /sys and a reason,
// and works on a server's data directory.
func TestPurgeUsage(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	ok(t, srvDir, "user", "add", "alice") // a server's directory: auth/ and /sys
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"purge", "--reason", "r"}, "one item path"},
		{[]string{"purge", "/data/x/a", "/data/x/b", "--reason", "r"}, "one item path"},
		{[]string{"purge", "/data/x", "--reason", "r"}, "/type/repo/item"},
		{[]string{"purge", "/sys/users/alice", "--reason", "r"}, "/sys"},
		{[]string{"purge", "/data/x/a"}, "--reason"},
		{[]string{"purge", "/data/x/a", "--reason", " "}, "--reason"},
		{[]string{"purge", "/data/x/a", "--reason", strings.Repeat("r", 1025)}, "at most 1024"},
	} {
		failure(t, cli(t, srvDir, "", c.args...), exitUsage, c.want)
	}
	failure(t, cli(t, srvDir, "", "purge", "/data/x/a", "--reason", "r"), exitFail, "nothing to purge at /data/x/a")
	failure(t, cli(t, filepath.Join(t.TempDir(), "nope"), "", "purge", "/data/x/a", "--reason", "r"), exitFail, "does not exist")
	client := newDir(t)
	mustPut(t, client, "/data/x/a", `{"v": 1}`)
	failure(t, cli(t, client, "", "purge", "/data/x/a", "--reason", "r"), exitUsage, "not a server's data directory")
	if got := ok(t, client, "get", "/data/x/a"); got != `{"v":1}`+"\n" {
		t.Errorf("a refused purge changed the item: %q", got)
	}
}

// TestPurgeCommand: purge through a running server hides the item from a
// client that synced it at its next sync, and a second purge of it finds
// nothing; on a stopped server's directory, it takes effect when the
// server starts.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	srv := startServe(t, srvDir, "--gc=false")
	a := loggedIn(t, srvDir, srv.url, "alice")
	mustPut(t, a, "/data/tasks/t1", `{"title": "secret one"}`)
	mustPut(t, a, "/data/tasks/t1", `{"done": true}`)
	mustPut(t, a, "/data/tasks/t2", `{"title": "secret two"}`)
	mustPut(t, a, "/data/tasks/t3", `{"title": "stays"}`)
	syncOK(t, a, srv.url, "/data/tasks")
	b := loggedIn(t, srvDir, srv.url, "bob")
	syncOK(t, b, srv.url, "/data/tasks")
	ok(t, b, "get", "/data/tasks/t1")

	if n := purgeOK(t, srvDir, "/data/tasks/t1"); n != "2" {
		t.Errorf("purged %s commits, want the item's 2", n)
	}
	syncOK(t, b, srv.url, "/data/tasks")
	failure(t, cli(t, b, "", "get", "/data/tasks/t1"), exitFail, "/data/tasks/t1")
	failure(t, cli(t, srvDir, "", "purge", "/data/tasks/t1", "--reason", "again"), exitFail, "nothing to purge")

	// On the stopped server's directory.
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d: %s", code, srv.stderr)
	}
	if n := purgeOK(t, srvDir, "/data/tasks/t2"); n != "1" {
		t.Errorf("purged %s commits, want 1", n)
	}
	// (Without its own collection, which would drop the purged commits at
	// once: the client would get its copy refused as purged instead.)
	srv = startServe(t, srvDir, "--addr", strings.TrimPrefix(srv.url, "http://"), "--gc=false")
	syncOK(t, b, srv.url, "/data/tasks")
	failure(t, cli(t, b, "", "get", "/data/tasks/t2"), exitFail, "/data/tasks/t2")
	if got := ok(t, b, "get", "/data/tasks/t3"); got != `{"title":"stays"}`+"\n" {
		t.Errorf("the item not purged: %q", got)
	}
	c := loggedIn(t, srvDir, srv.url, "carol")
	syncOK(t, c, srv.url, "/data/tasks")
	if got := ok(t, c, "ls", "/data/tasks"); got != "/data/tasks/t3\n" {
		t.Errorf("a new client gets %q, want t3 alone", got)
	}
}

// TestPurgeDropsAtCompaction: after 'goatdb gc --force' beside the
// server, its log holds no byte of the purged item's values.
func TestPurgeDropsAtCompaction(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	srv := startServe(t, srvDir)
	a := loggedIn(t, srvDir, srv.url, "alice")
	const unique = "erase-me-2b7e151628aed2a6"
	mustPut(t, a, "/data/tasks/t1", `{"title": "`+unique+`"}`)
	mustPut(t, a, "/data/tasks/t2", `{"title": "stays"}`)
	syncOK(t, a, srv.url, "/data/tasks")
	logFile := filepath.Join(srvDir, "data", "tasks.log")
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), unique) {
		t.Fatalf("the value is not in the server's log before the purge (%v): the test cannot tell", err)
	}
	purgeOK(t, srvDir, "/data/tasks/t1")
	r := cli(t, srvDir, "", "gc", "--force", "/data/tasks")
	if strings.Contains(r.stderr, "not implemented") {
		t.Skipf("compaction is not implemented yet: %s", r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("gc --force: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(logFile); err != nil || strings.Contains(string(b), unique) {
		t.Fatalf("the purged value is still in the server's log after gc (%v)", err)
	}
	b := loggedIn(t, srvDir, srv.url, "bob")
	syncOK(t, b, srv.url, "/data/tasks")
	if got := ok(t, b, "ls", "/data/tasks"); got != "/data/tasks/t2\n" {
		t.Errorf("after the compaction a new client gets %q, want t2 alone", got)
	}
}
