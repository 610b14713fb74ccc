package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/hashicorp/raft"
)

// clusterRig is servers of one deployment, each a member of one raft
// group over raft's in-memory transport.
type clusterRig struct {
	t          *testing.T
	root       ed25519.PrivateKey
	audience   string
	rootPub    ed25519.PublicKey
	transports map[string]*raft.InmemTransport
	members    map[string]*clusterMember
	ack        int // Options.AckReplicas of the members
}

type clusterMember struct {
	run  *running
	node *cluster.Node
}

func newClusterRig(t *testing.T) *clusterRig {
	id, root, err := server.NewIdentity("cl")
	if err != nil {
		t.Fatal(err)
	}
	return &clusterRig{t: t, root: root, audience: id.Audience, rootPub: id.Root,
		transports: map[string]*raft.InmemTransport{}, members: map[string]*clusterMember{}}
}

func (c *clusterRig) identity(name string) *server.Identity {
	return nodeIdentity(c.t, &server.Identity{Audience: c.audience, Root: c.rootPub}, c.root, name)
}

// start serves a member on a loopback port with db.
func (c *clusterRig) start(name string, bootstrap bool, db *goatdb.DB) *clusterMember {
	t := c.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raftAddr, tr := raft.NewInmemTransport(raft.ServerAddress(name))
	for other, ot := range c.transports {
		tr.Connect(raft.ServerAddress(other), ot)
		ot.Connect(raftAddr, tr)
	}
	c.transports[name] = tr
	store := raft.NewInmemStore()
	node, err := cluster.Start(cluster.Config{Member: cluster.Member{Name: name, URL: "http://" + addr, Raft: name},
		Bootstrap: bootstrap, Replicas: 2, Logs: store, Stable: store, Snapshots: raft.NewInmemSnapshotStore(), Transport: tr,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	run := serve(t, db, &server.Options{RateLimit: -1, Cluster: node, AckReplicas: c.ack, AckTimeout: 5 * time.Second,
		Auth: &server.AuthOptions{Identity: c.identity(name), Rules: authz.OpenRules()}}, addr)
	m := &clusterMember{run: run, node: node}
	c.members[name] = m
	return m
}

// join starts member name with db, joins it through the member via, and
// waits until every member sees it serve.
func (c *clusterRig) join(ctx context.Context, name string, via *clusterMember, db *goatdb.DB) *clusterMember {
	c.t.Helper()
	m := c.start(name, false, db)
	if err := m.run.srv.JoinCluster(ctx, via.run.url, m.run.url, name); err != nil {
		c.t.Fatalf("%s joins through %s: %v", name, via.run.url, err)
	}
	c.until(name+" serves", 20*time.Second, func(v cluster.View) bool {
		return slices.Contains(v.Serving(), name) && !v.Pending()
	})
	return m
}

// until waits for every member's view to satisfy ok.
func (c *clusterRig) until(what string, d time.Duration, ok func(cluster.View) bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, m := range c.members {
			if v, _ := m.node.View(); !ok(v) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterJoinHandsRepositoriesOver: the first member starts the
// cluster (r = 2) holding 20 repositories; the second joins through it
// and the third through the second, which forwards to the leader. The
// first hands each repository to the owners it gains before the change
// takes effect; once it has, every repository is held, whole, by both of
// its owners, and the accounts by every member; a member that no longer
// owns a repository drops its copy; a later write on one owner reaches the
// other owner and no other member, whose JSON API redirects to an owner.
func TestClusterJoinHandsRepositoriesOver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft group of three servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newClusterRig(t)
	db1 := dbtest.OpenDB(t, nil)
	const repos, items = 20, 5
	for i := range repos {
		for j := range items {
			mustPut(t, db1, fmt.Sprintf("/data/r%d/k%d", i, j), goatdb.Fields{"v": j})
		}
	}
	n1 := c.start("n1", true, db1)
	if err := n1.node.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n1.run.srv.Accounts().AddUser("alice", nil); err != nil {
		t.Fatal(err)
	}
	c.join(ctx, "n2", n1, dbtest.OpenDB(t, nil))
	c.join(ctx, "n3", c.members["n2"], dbtest.OpenDB(t, nil)) // through a follower

	v, _ := n1.node.View()
	held := map[string]int{}
	for i := range repos {
		rp := fmt.Sprintf("/data/r%d", i)
		for _, owner := range v.OwnersNow(rp) {
			db := c.members[owner].run.db
			for j := range items {
				if _, err := db.Get(fmt.Sprintf("%s/k%d", rp, j)); err != nil {
					t.Fatalf("%s owns %s but lacks k%d: %v", owner, rp, j, err)
				}
			}
			held[owner]++
		}
	}
	t.Logf("owned repositories per member: %v", held)
	c.untilHeld(t, repos)

	// A write on one owner reaches the other owner, and no other member.
	owners := v.OwnersNow("/data/r0")
	var other string
	for name := range c.members {
		if !slices.Contains(owners, name) {
			other = name
		}
	}
	mustPut(t, c.members[owners[0]].run.db, "/data/r0/fresh", goatdb.Fields{"v": "new"})
	eventually(t, 10*time.Second, "the write on the co-owner", func() bool {
		_, err := c.members[owners[1]].run.db.Get("/data/r0/fresh")
		return err == nil
	})
	if have, _ := c.members[other].run.db.Repos(); slices.Contains(have, "/data/r0") {
		t.Errorf("%s, which does not own /data/r0, holds it", other)
	}

	// The JSON API of a member that does not own a repository redirects
	// to an owner.
	code, _, err := c.members["n1"].run.srv.Accounts().AddUser("op", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"user": "op", "code": code})
	var tok struct{ Token string }
	eventually(t, 10*time.Second, "the user op on "+other, func() bool {
		resp, err := http.Post(c.members[other].run.url+"/v1/auth/token", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&tok) == nil
	})
	req, _ := http.NewRequest("GET", c.members[other].run.url+"/v1/items/data/r0/k0?at=x", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := c.members[owners[0]].run.url + "/v1/items/data/r0/k0?at=x"
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("GET on a member that does not own /data/r0: %d, Location %q; want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	for _, name := range []string{"n2", "n3"} {
		if held[name] == 0 {
			t.Errorf("%s owns nothing of 20 repositories (r = 2 of 3)", name)
		}
		if _, err := c.members[name].run.db.Get(server.UsersRepo + "/alice"); err != nil {
			t.Errorf("%s lacks the accounts (user alice): %v", name, err)
		}
	}
}

// untilHeld waits until every member holds exactly the data repositories
// it owns: the others are dropped.
func (c *clusterRig) untilHeld(t *testing.T, repos int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		wrong := ""
		for name, m := range c.members {
			v, _ := m.node.View()
			have, err := m.run.db.Repos()
			if err != nil {
				t.Fatal(err)
			}
			for i := range repos {
				rp := fmt.Sprintf("/data/r%d", i)
				owns := slices.Contains(v.OwnersNow(rp), name)
				if holds := slices.Contains(have, rp); owns != holds {
					wrong = fmt.Sprintf("%s owns %s: %v, holds it: %v", name, rp, owns, holds)
				}
			}
		}
		if wrong == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s, %s", wrong)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue reads one series of a server's /metrics.
func metricValue(t *testing.T, srv *server.Server, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// TestClusterRebalance: four members with r = 2 hold about half of 40
// repositories (of 30 items, about 9 KB of log) each; a fifth joins and
// takes about r/n of them, handed over with about as many bytes as the
// moved repositories' logs (the figure: ≤ 1.2×; the accounts handed to
// the new member count too), and every commit stays on both owners.
func TestClusterRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft group of five servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := newClusterRig(t)
	db1 := dbtest.OpenDB(t, nil)
	const repos, items = 40, 30
	for i := range repos {
		for j := range items {
			note := strings.Repeat(fmt.Sprintf("note %d of item %d in repository %d. ", j*7, j, i), 8)
			mustPut(t, db1, fmt.Sprintf("/data/r%d/k%d", i, j), goatdb.Fields{"title": fmt.Sprintf("item %d of repository %d", j, i), "n": j, "note": note})
		}
	}
	n1 := c.start("n1", true, db1)
	if err := n1.node.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		c.join(ctx, fmt.Sprintf("n%d", i), n1, dbtest.OpenDB(t, nil))
	}
	c.untilHeld(t, repos)
	for name, m := range c.members {
		have, _ := m.run.db.Repos()
		n := 0
		for _, rp := range have {
			if strings.HasPrefix(rp, "/data/") {
				n++
			}
		}
		if n < 12 || n > 28 {
			t.Errorf("%s holds %d of 40 repositories (r = 2 of 4: about 20)", name, n)
		}
	}

	var before float64
	for _, m := range c.members {
		before += metricValue(t, m.run.srv, "goatdb_cluster_handoff_bytes_total")
	}
	v4, _ := n1.node.View()
	n5 := c.join(ctx, "n5", n1, dbtest.OpenDB(t, nil))
	c.untilHeld(t, repos)
	var after float64
	for _, m := range c.members {
		after += metricValue(t, m.run.srv, "goatdb_cluster_handoff_bytes_total")
	}
	v5, _ := n1.node.View()
	var moved int
	var movedSize int64
	for i := range repos {
		rp := fmt.Sprintf("/data/r%d", i)
		if slices.Contains(v5.OwnersNow(rp), "n5") {
			if slices.Contains(v4.OwnersNow(rp), "n5") {
				t.Fatalf("n5 owned %s before it joined", rp)
			}
			moved++
			size, err := n5.run.db.LogSize(rp)
			if err != nil {
				t.Fatal(err)
			}
			movedSize += size
		}
		for _, owner := range v5.OwnersNow(rp) {
			for j := range items {
				if _, err := c.members[owner].run.db.Get(fmt.Sprintf("%s/k%d", rp, j)); err != nil {
					t.Fatalf("%s owns %s but lacks k%d: %v", owner, rp, j, err)
				}
			}
		}
	}
	ratio := (after - before) / float64(movedSize)
	t.Logf("a 5th member took %d of 40 repositories (r/n = 2/5: about 16); handed over with %.0f bytes, their logs %d bytes: %.2f×",
		moved, after-before, movedSize, ratio)
	if moved < 8 || moved > 24 {
		t.Errorf("a 5th member took %d of 40 repositories, want about 16", moved)
	}
	if ratio > 1.2 {
		t.Errorf("handing over took %.2f× the moved repositories' size, want ≤ 1.2×", ratio)
	}
}

// TestClusterAckReplicas: in a sharded cluster with AckReplicas 1, a
// client's sync of a write to an owner is answered once the other owner
// stored it.
func TestClusterAckReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft group of three servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newClusterRig(t)
	c.ack = 1
	n1 := c.start("n1", true, dbtest.OpenDB(t, nil))
	if err := n1.node.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n2", "n3"} {
		c.join(ctx, name, n1, dbtest.OpenDB(t, nil))
	}
	code, _, err := n1.run.srv.Accounts().AddUser("writer", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := n1.node.View()
	owners := v.OwnersNow("/data/acked")
	first, second := c.members[owners[0]], c.members[owners[1]]
	cli := dbtest.OpenDB(t, nil)
	eventually(t, 10*time.Second, "the writer's login on an owner", func() bool {
		_, err := cli.LoginCode(ctx, first.run.url, "writer", code)
		return err == nil
	})
	for i := range 5 {
		path := fmt.Sprintf("/data/acked/k%d", i)
		id, err := cli.Put(path, goatdb.Fields{"v": i})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Sync(ctx, first.run.url, "/data/acked"); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
		if r, err := second.run.db.LookupRepo("/data/acked"); err != nil || !r.Has(id) {
			t.Fatalf("write %d acknowledged before the other owner stored it (%v)", i, err)
		}
	}
}
