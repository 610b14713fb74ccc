package main

import (
	"strings"
	"testing"
)

// TestGC: goatdb gc prints a line per repository, on the directory itself
// and through a running server's admin socket; history written today is
// within the horizon, so nothing is collected, and --dry-run says so too;
// a bad path is a usage error and a missing repository exits 1.
func TestGC(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/t/a", `{"v": 1}`)
	mustPut(t, dir, "/data/t/a", `{"v": 2}`)
	mustPut(t, dir, "/data/u/b", `{"v": 1}`)
	out := ok(t, dir, "gc", "--dry-run")
	if !strings.Contains(out, "/data/t: ") || !strings.Contains(out, "/data/u: ") || !strings.Contains(out, "(dry run)") {
		t.Errorf("gc --dry-run printed %q, want a dry-run line per repository", out)
	}
	out = ok(t, dir, "gc", "/data/t")
	if !strings.Contains(out, "/data/t: 2 commits") || !strings.Contains(out, "too little to collect") || strings.Contains(out, "/data/u") {
		t.Errorf("gc /data/t printed %q, want one line, nothing collected", out)
	}
	failure(t, cli(t, dir, "", "gc", "data/t"), 2, "data/t")
	failure(t, cli(t, dir, "", "gc", "/data/none"), 1, "/data/none")

	srvDir := newDir(t)
	code := addUser(t, srvDir, "alice")
	srv := startServe(t, srvDir)
	cdir := newDir(t)
	login(t, cdir, srv.url, "alice", code)
	mustPut(t, cdir, "/data/t/x", `{"v": 1}`)
	syncOK(t, cdir, srv.url)
	out = ok(t, srvDir, "gc", "--force", "/data/t")
	if !strings.Contains(out, "/data/t: 1 commits") {
		t.Errorf("gc through the server printed %q", out)
	}
}
