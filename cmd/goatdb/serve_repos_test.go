package main

import "testing"

// TestServeOpenRepos: --max-open-repos and --repo-memory are checked, its
// default is a share of the file limit, and a server bounded to one open
// repository serves syncs of several.
func TestServeOpenRepos(t *testing.T) {
	t.Parallel()
	if n := defaultMaxOpenRepos(); n < 16 || n > maxDefaultOpenRepos {
		t.Errorf("default --max-open-repos %d, want 16 to %d", n, maxDefaultOpenRepos)
	}
	for _, bad := range [][]string{{"--max-open-repos", "-1"}, {"--repo-memory", "-1"}} {
		failure(t, cli(t, newDir(t), "", append([]string{"serve"}, bad...)...), 2, bad[0])
	}
	srvDir := newDir(t)
	code := addUser(t, srvDir, "alice")
	srv := startServe(t, srvDir, "--max-open-repos", "1", "--repo-memory", "1")
	dir := newDir(t)
	login(t, dir, srv.url, "alice", code)
	for _, p := range []string{"/data/a/x", "/data/b/x", "/data/c/x"} {
		mustPut(t, dir, p, `{"v": 1}`)
	}
	syncOK(t, dir, srv.url)
	other := newDir(t)
	login(t, other, srv.url, "bob", addUser(t, srvDir, "bob"))
	for _, p := range []string{"/data/a", "/data/b", "/data/c"} {
		syncOK(t, other, srv.url, p)
	}
	if got := ok(t, other, "get", "/data/b/x"); got != `{"v":1}`+"\n" {
		t.Errorf("a second client got %q", got)
	}
}
