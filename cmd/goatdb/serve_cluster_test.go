package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// freeAddrs returns n distinct free loopback addresses: their listeners
// are all open while they are chosen, so no two are the same port.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// TestServeShardedCluster: serve --cluster-raft with --cluster-init starts
// a cluster (r = 2); two more members join, one through the first and one
// through the second; the repositories a client wrote to the first end
// on exactly their two owners each. A client that names the members
// syncs each repository with its owners (the others answer it as moved),
// and with one owner stopped, with the other; the operator then makes the
// stopped member leave as dead, and the two others own everything. A
// client following the members with StartSync syncs each repository with
// its owners and hears their changes.
func TestServeShardedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers of a raft group")
	}
	base := t.TempDir()
	rootFile := filepath.Join(base, "root.key")
	ok(t, base, "root", "init", "--out", rootFile)
	dirs := map[string]string{}
	for _, n := range []string{"n1", "n2", "n3"} {
		dirs[n] = filepath.Join(base, n)
		ok(t, dirs[n], "node", "init", "--root", rootFile, "--name", n)
	}
	common := []string{"--rules", "open", "--anonymous", "--log-level", "error"}
	addrs := freeAddrs(t, 6)
	n1 := startServe(t, dirs["n1"], append([]string{"--addr", addrs[0], "--cluster-raft", addrs[1], "--cluster-init", "--replicas", "2"}, common...)...)

	client := dbtest.OpenDB(t, nil)
	const repos = 12
	for i := range repos {
		if _, err := client.Put(fmt.Sprintf("/data/s%d/k", i), goatdb.Fields{"v": i}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := client.Sync(ctx, n1.url); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("sync with n1: %v (stderr %q)", err, n1.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n2 := startServe(t, dirs["n2"], append([]string{"--addr", addrs[2], "--cluster-raft", addrs[3], "--cluster-join", n1.url}, common...)...)
	n3 := startServe(t, dirs["n3"], append([]string{"--addr", addrs[4], "--cluster-raft", addrs[5], "--cluster-join", n2.url}, common...)...)

	members := []string{"n1", "n2", "n3"}
	for {
		wrong := ""
		for _, n := range members {
			r := cli2(t, dirs[n], "ls")
			for i := range repos {
				rp := fmt.Sprintf("/data/s%d", i)
				owns := slices.Contains(cluster.Owners(rp, members, 2), n)
				if holds := strings.Contains(r, rp+"\n"); owns != holds {
					wrong = fmt.Sprintf("%s owns %s: %v, holds it: %v", n, rp, owns, holds)
				}
			}
		}
		if wrong == "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after 60 s, %s (n2 stderr %q)", wrong, n2.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A client that names the members syncs each repository with its
	// owners: a member answers one it does not own as moved.
	urls := n1.url + "," + n2.url + "," + n3.url
	other := dbtest.OpenDB(t, nil)
	var paths []string
	for i := range repos {
		paths = append(paths, fmt.Sprintf("/data/s%d", i))
	}
	if _, err := other.Sync(ctx, urls, paths...); err != nil {
		t.Fatalf("sync of every repository through the members: %v", err)
	}
	for i := range repos {
		if _, err := other.Get(fmt.Sprintf("/data/s%d/k", i)); err != nil {
			t.Fatalf("/data/s%d: %v", i, err)
		}
		if _, err := other.Put(fmt.Sprintf("/data/s%d/new", i), goatdb.Fields{"v": "routed"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Sync(ctx, urls, paths...); err != nil {
		t.Fatalf("sync of new writes: %v", err)
	}
	for i := range repos {
		rp := fmt.Sprintf("/data/s%d", i)
		owner := cluster.Owners(rp, members, 2)[0]
		if r := cli(t, dirs[owner], "", "get", rp+"/new"); r.code != 0 {
			t.Errorf("%s, owner of %s, lacks the routed write: %q", owner, rp, r.stderr)
		}
	}
	// With one URL, a repository the member does not own is an error that
	// names its owners.
	for i := range repos {
		rp := fmt.Sprintf("/data/s%d", i)
		if !slices.Contains(cluster.Owners(rp, members, 2), "n1") {
			_, err := other.Sync(ctx, n1.url, rp)
			if err == nil || !strings.Contains(err.Error(), "moved to http://") {
				t.Fatalf("sync of %s with n1 alone: %v, want it named moved", rp, err)
			}
			break
		}
	}

	if st := ok(t, dirs["n1"], "cluster", "status"); !strings.Contains(st, "n2 active") || !strings.Contains(st, "2 owners per repository") {
		t.Fatalf("cluster status: %q", st)
	}

	// A client that follows the members with StartSync (a failover group)
	// syncs each repository with its owners, and hears their changes.
	live := dbtest.OpenDB(t, nil)
	ls, err := live.StartSync([]string{n1.url, n2.url, n3.url}, &goatdb.SyncOptions{Failover: true, Repos: paths,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Stop()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("%s: not within the test's time", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range repos {
		p := fmt.Sprintf("/data/s%d/new", i)
		waitFor("StartSync fetched "+p, func() bool { _, err := live.Get(p); return err == nil })
	}
	if _, err := other.Put("/data/s0/pushed", goatdb.Fields{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sync(ctx, urls, "/data/s0"); err != nil {
		t.Fatal(err)
	}
	waitFor("a change on an owner reaches the StartSync client", func() bool { _, err := live.Get("/data/s0/pushed"); return err == nil })
	if _, err := live.Put("/data/s1/fromlive", goatdb.Fields{"v": 1}); err != nil {
		t.Fatal(err)
	}
	first := cluster.Owners("/data/s1", members, 2)[0]
	waitFor("the StartSync client's write reaches an owner", func() bool {
		return cli(t, dirs[first], "", "get", "/data/s1/fromlive").code == 0
	})

	// An owner stops: each repository is served by its other owner.
	n2.stop()
	for i := range repos {
		if _, err := other.Put(fmt.Sprintf("/data/s%d/late", i), goatdb.Fields{"v": "after n2 stopped"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Sync(ctx, urls, paths...); err != nil {
		t.Fatalf("sync with n2 stopped: %v", err)
	}
	for i := range repos {
		rp := fmt.Sprintf("/data/s%d", i)
		for _, owner := range cluster.Owners(rp, members, 2) {
			if owner == "n2" {
				continue
			}
			if r := cli(t, dirs[owner], "", "get", rp+"/late"); r.code != 0 {
				t.Errorf("%s, owner of %s, lacks the write made with n2 stopped: %q", owner, rp, r.stderr)
			}
		}
	}

	// The operator says n2 is gone for good: it leaves, and the two
	// others own everything, whole.
	if out := ok(t, dirs["n3"], "cluster", "leave", "n2", "--dead"); !strings.Contains(out, "n2 is leaving") {
		t.Fatalf("cluster leave: %q", out)
	}
	two := []string{"n1", "n3"}
	for {
		st := cli2(t, dirs["n1"], "cluster", "status")
		if !strings.Contains(st, "n2") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("n2 never left: %q", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		missing := ""
		for i := range repos {
			rp := fmt.Sprintf("/data/s%d", i)
			for _, owner := range cluster.Owners(rp, two, 2) {
				for _, k := range []string{"k", "new", "late"} {
					if r := cli(t, dirs[owner], "", "get", rp+"/"+k); r.code != 0 {
						missing = owner + " lacks " + rp + "/" + k
					}
				}
			}
		}
		if missing == "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after n2 left: %s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli2 runs ls beside a running server and returns its output, "" if it
// failed.
func cli2(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := cli(t, dir, "", args...)
	if r.code != 0 {
		return ""
	}
	return r.stdout
}
