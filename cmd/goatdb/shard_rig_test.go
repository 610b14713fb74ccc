package main

// The shard rig: the members of a sharded cluster (serve --cluster-raft,
// --replicas 2), each a process of its own on loopback ports as in the
// cluster rig (rigNode), and a client (goatdb.DB) in the test process
// that syncs with the member list.
//
// What a member holds is read from its data directory beside the running
// server: the repositories are the logs under DIR/data/, and a commit is
// there if a read-only goatdb.Open of DIR finds it (GetAt). The
// membership and the raft leader are read with GET /v1/cluster, which
// answers only signed requests of a node, the root or an admin: the rig
// signs them as an observer node of the deployment ("obs", made with node
// init, never a member). That names the leader as raft knows it on each
// member, unlike the log lines of a placement change, which a leader
// writes only when it activates one.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/transport"
)

// shardReplicas is --replicas: how many members own each repository.
const shardReplicas = 2

// shardRepos is how many repositories the client writes to.
const shardRepos = 40

// shardRig is a sharded cluster of member processes.
type shardRig struct {
	base, rootFile string
	nodes          []*rigNode // in the order they were added
	obs            *server.Identity
	views          map[string]*transport.Client // by member URL, signed as obs
}

// shardView is GET /v1/cluster's answer.
type shardView struct {
	cluster.View
	Leader string `json:"leader"`
}

func newShardRig(t *testing.T) *shardRig {
	t.Helper()
	base := t.TempDir()
	s := &shardRig{base: base, rootFile: filepath.Join(base, "root.key"), views: map[string]*transport.Client{}}
	rigCLI(t, base, "root", "init", "--out", s.rootFile)
	obsDir := filepath.Join(base, "obs")
	rigCLI(t, obsDir, "node", "init", "--root", s.rootFile, "--name", "obs")
	var err error
	if s.obs, err = server.OpenIdentity(obsDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range s.nodes {
			n.kill(t)
		}
		if t.Failed() {
			for _, n := range s.nodes {
				// Without the access log (msg=request lines).
				var lines []string
				for line := range strings.Lines(n.out.String()) {
					if !strings.Contains(line, " msg=request ") {
						lines = append(lines, line)
					}
				}
				if len(lines) > 200 {
					lines = append([]string{"…\n"}, lines[len(lines)-200:]...)
				}
				t.Logf("%s output:\n%s", n.name, strings.Join(lines, ""))
			}
		}
	})
	return s
}

// add makes member name's directory and starts it: the first member
// starts the cluster (--cluster-init), the others join through via. A
// restart (start again) serves with neither: the raft state in DIR/raft/
// says who the member is.
func (s *shardRig) add(t *testing.T, name string, via *rigNode) *rigNode {
	t.Helper()
	addrs := freePorts(t, 2)
	n := &rigNode{name: name, dir: filepath.Join(s.base, name), url: "http://" + addrs[0], out: new(outBuffer)}
	rigCLI(t, n.dir, "node", "init", "--root", s.rootFile, "--name", name)
	common := []string{"serve", "--addr", addrs[0], "--cluster-raft", addrs[1], "--rules", "open", "--anonymous", "--log-level", "info",
		// Every client of the rig is anonymous and on 127.0.0.1: one address.
		"--rate", "0", "--ip-rate", "0", "--user-rate", "0"}
	if via == nil {
		n.flags = append(slices.Clone(common), "--cluster-init", "--replicas", fmt.Sprint(shardReplicas))
	} else {
		n.flags = append(slices.Clone(common), "--cluster-join", via.url)
	}
	s.nodes = append(s.nodes, n)
	n.start(t)
	n.flags = common // for a restart
	return n
}

// memberNames returns the names of nodes.
func memberNames(nodes []*rigNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	slices.Sort(out)
	return out
}

// urls returns the member list a client syncs with.
func (s *shardRig) urls() string {
	var out []string
	for _, n := range s.nodes {
		out = append(out, n.url)
	}
	return strings.Join(out, ",")
}

// node returns the member named name.
func (s *shardRig) node(name string) *rigNode {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// view returns n's GET /v1/cluster, or false if n does not answer it.
func (s *shardRig) view(t *testing.T, n *rigNode) (shardView, bool) {
	t.Helper()
	c := s.views[n.url]
	if c == nil {
		c = transport.New(transport.Config{URL: n.url, Key: s.obs.NodeKey,
			NodeCert: base64.StdEncoding.EncodeToString(s.obs.Node.Encode()), NodeRules: authz.OpenRules().Fingerprint()})
		s.views[n.url] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, http.MethodGet, "/v1/cluster", nil, nil)
	if err != nil {
		return shardView{}, false
	}
	defer resp.Body.Close()
	var v shardView
	if resp.StatusCode != http.StatusOK {
		return v, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /v1/cluster on %s: %v", n.name, err)
	}
	return v, true
}

// shardHolds returns the repositories of the client's that n's directory
// holds (their logs), sorted.
func shardHolds(t *testing.T, n *rigNode) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(n.dir, "data"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".log"); ok && strings.HasPrefix(name, "shard") {
			out = append(out, "/data/"+name)
		}
	}
	slices.Sort(out)
	return out
}

// shardOwned returns the repositories of repos that member owns among members.
func shardOwned(member string, members []string, repos []string) []string {
	var out []string
	for _, rp := range repos {
		if cluster.Owns(member, rp, members, shardReplicas) {
			out = append(out, rp)
		}
	}
	return out
}

// settle waits until every running member's view is settled on the
// placement of members (none joining or leaving) and every member holds
// exactly the repositories it owns in it; it returns how long that took.
func (s *shardRig) settle(t *testing.T, members []*rigNode, repos []string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	want := memberNames(members)
	for {
		wrong := ""
		for _, n := range s.nodes {
			if !n.running() {
				continue
			}
			v, ok := s.view(t, n)
			switch {
			case !ok:
				wrong = n.name + " does not answer GET /v1/cluster"
			case v.Pending() || !slices.Equal(v.Serving(), want):
				wrong = fmt.Sprintf("%s sees epoch %d serving %v (pending %v), want %v", n.name, v.Epoch, v.Serving(), v.Pending(), want)
			}
			if wrong != "" {
				break
			}
		}
		if wrong == "" {
			for _, n := range members {
				if got, own := shardHolds(t, n), shardOwned(n.name, want, repos); !slices.Equal(got, own) {
					wrong = fmt.Sprintf("%s holds %d repositories, owns %d: extra %v, missing %v", n.name, len(got), len(own),
						without(got, own), without(own, got))
					break
				}
			}
		}
		if wrong == "" {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("no settled placement of %v after %v: %s", want, limit, wrong)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// without returns the elements of a not in b.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// leader returns the leader every running member names once they agree
// on one that runs, and how long that took.
func (s *shardRig) leader(t *testing.T, limit time.Duration) (*rigNode, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		seen := map[string]bool{}
		for _, n := range s.nodes {
			if n.running() {
				v, _ := s.view(t, n)
				seen[v.Leader] = true
			}
		}
		if len(seen) == 1 {
			for name := range seen {
				if l := s.node(name); l != nil && l.running() {
					return l, time.Since(start)
				}
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("the running members name no common running leader after %v: %v", limit, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// commitsOn waits until every commit of acked (item path → commits) is
// on every running owner of its repository among members, read from
// their directories; it returns how long that took.
func (s *shardRig) commitsOn(t *testing.T, members []string, acked map[string][]commit.ID, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		missing := 0
		example := ""
		for _, name := range members {
			n := s.node(name)
			if !n.running() {
				continue
			}
			db, err := goatdb.Open(n.dir, &goatdb.Options{ReadOnly: true, MustExist: true})
			if err != nil {
				t.Fatalf("a read-only open of %s beside its server: %v", n.name, err)
			}
			for path, ids := range acked {
				rp, _, _ := goatdb.SplitPath(path)
				if !cluster.Owns(name, rp, members, shardReplicas) {
					continue
				}
				for _, id := range ids {
					if _, err := db.GetAt(path, id); err != nil {
						missing++
						example = fmt.Sprintf("%s lacks %s of %s: %v", name, id, path, err)
					}
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if missing == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("after %v, %d acknowledged commits are missing on an owner; %s", limit, missing, example)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestShardRig: a sharded cluster of member processes (r = 2) with 40
// repositories grows from four members to five, loses its raft leader to
// SIGKILL (a new one is elected; a sixth member's join waits for the
// killed one, which never handed off, and takes effect once it restarted
// on its directory and ports), and loses an owner to SIGKILL while a
// client syncs every repository through the member list.
func TestShardRig(t *testing.T) {
	if testing.Short() {
		t.Skip("the shard rig starts six goatdb serve processes of a raft group; skipped with -short")
	}
	skipRig(t)
	began := time.Now()
	s := newShardRig(t)
	var repos []string
	for i := range shardRepos {
		repos = append(repos, fmt.Sprintf("/data/shard%02d", i))
	}

	// 1. Four members; the client writes to 40 repositories and syncs
	// with the member list.
	n1 := s.add(t, "n1", nil)
	s.add(t, "n2", n1)
	s.add(t, "n3", s.nodes[1])
	s.add(t, "n4", s.nodes[2])
	four := slices.Clone(s.nodes)
	d := s.settle(t, four, nil, 60*time.Second)
	t.Logf("four members settled %v after the last started (%v since the start)", d, time.Since(began))

	client := dbtest.OpenDB(t, nil)
	acked := map[string][]commit.ID{}
	put := func(path string, v any) {
		id, err := client.Put(path, goatdb.Fields{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		acked[path] = append(acked[path], id)
	}
	syncAll := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		st, err := client.Sync(ctx, s.urls(), repos...)
		if err != nil {
			t.Fatalf("sync of the %d repositories with %s (%s): %v", len(repos), s.urls(), when, err)
		}
		t.Logf("sync %s: %d commits sent in %v", when, st.CommitsSent, time.Since(start))
	}
	for _, rp := range repos {
		for k := range 3 {
			put(fmt.Sprintf("%s/k%d", rp, k), k)
		}
	}
	syncAll("with four members")
	d = s.settle(t, four, repos, 30*time.Second)
	counts := map[string]int{}
	for _, n := range four {
		counts[n.name] = len(shardHolds(t, n))
		if c := counts[n.name]; c < 12 || c > 28 {
			t.Errorf("%s holds %d of %d repositories, want about half (12-28)", n.name, c, shardRepos)
		}
	}
	dc := s.commitsOn(t, memberNames(four), acked, 30*time.Second)
	t.Logf("step 1: holdings %v match the placement of four %v after the sync; every acknowledged commit on both owners %v later", counts, d, dc)

	// 2. A fifth member joins through n3.
	before := map[string][]string{}
	for _, n := range four {
		before[n.name] = shardHolds(t, n)
	}
	joined := time.Now()
	n5 := s.add(t, "n5", s.node("n3"))
	five := slices.Clone(s.nodes)
	d = s.settle(t, five, repos, 60*time.Second)
	gained := len(shardHolds(t, n5))
	if gained < 8 || gained > 24 {
		t.Errorf("n5 took %d of %d repositories, want about r/n = 2/5 (8-24)", gained, shardRepos)
	}
	counts = map[string]int{}
	dropped := 0
	for _, n := range five {
		counts[n.name] = len(shardHolds(t, n))
		dropped += len(without(before[n.name], shardHolds(t, n)))
	}
	dc = s.commitsOn(t, memberNames(five), acked, 30*time.Second)
	t.Logf("step 2: n5 joined; holdings %v match the placement of five %v after it served (%v after its start); n5 gained %d repositories, the others dropped %d; every acknowledged commit on both owners %v later",
		counts, d, time.Since(joined), gained, dropped, dc)

	// 3. The raft leader is killed.
	old, _ := s.leader(t, 10*time.Second)
	old.kill(t)
	killed := time.Now()
	leader, d := s.leader(t, 30*time.Second)
	t.Logf("step 3: killed the leader %s; the others elected %s %v later", old.name, leader.name, d)
	// A sixth member joins through a live member other than the leader:
	// the change waits for the killed member, which still serves in the
	// placement and has not handed off.
	var via *rigNode
	for _, n := range s.nodes {
		if n.running() && n != leader {
			via = n
			break
		}
	}
	n6 := s.add(t, "n6", via)
	six := slices.Clone(s.nodes)
	pendingSince := time.Now()
	for {
		v, ok := s.view(t, leader)
		if ok && v.Members["n6"].State == cluster.Joining {
			break
		}
		if time.Since(pendingSince) > 30*time.Second {
			t.Fatalf("the leader does not list n6 joining after 30s: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The live members hand n6 what they are first owners of; what the
	// killed member is first owner of waits for it.
	time.Sleep(2 * time.Second)
	v, _ := s.view(t, leader)
	early := shardHolds(t, n6)
	if !v.Pending() || v.Members["n6"].State != cluster.Joining || v.Handoffs[old.name] == v.Epoch {
		t.Fatalf("with %s dead, the join of n6 took effect: %+v", old.name, v)
	}
	if extra := without(early, shardOwned("n6", memberNames(six), repos)); len(extra) > 0 {
		t.Errorf("n6, joining, holds repositories it will not own: %v", extra)
	}
	t.Logf("step 3: n6's join (epoch %d) is pending while %s is down, %v after the kill: handed off %v; n6 holds %d of the %d it will own",
		v.Epoch, old.name, time.Since(killed), v.Handoffs, len(early), len(shardOwned("n6", memberNames(six), repos)))
	restarted := time.Now()
	old.start(t) // the same directory and ports, without --cluster-init or --cluster-join
	d = s.settle(t, six, repos, 60*time.Second)
	counts = map[string]int{}
	for _, n := range six {
		counts[n.name] = len(shardHolds(t, n))
	}
	dc = s.commitsOn(t, memberNames(six), acked, 30*time.Second)
	t.Logf("step 3: %s restarted; holdings %v match the placement of six %v after it served (%v after the restart, %v after the kill); n6 gained %d; every acknowledged commit on both owners %v later",
		old.name, counts, d, time.Since(restarted), time.Since(killed), counts["n6"], dc)
	if l, _ := s.leader(t, 10*time.Second); l == old {
		t.Logf("step 3: %s leads again", old.name)
	}

	// 4. An owner is killed: the client syncs every repository through
	// the member list, and a write made then is on the live owner.
	leader, _ = s.leader(t, 10*time.Second)
	var victim *rigNode
	for _, n := range six {
		if n != leader && n != old && len(shardHolds(t, n)) > 0 {
			victim = n
			break
		}
	}
	lost := shardOwned(victim.name, memberNames(six), repos)
	victim.kill(t)
	for _, rp := range repos {
		put(rp+"/late", "after "+victim.name+" was killed")
	}
	syncAll(victim.name + " killed")
	late := map[string][]commit.ID{}
	for _, rp := range repos {
		late[rp+"/late"] = acked[rp+"/late"]
	}
	// Right after the sync, each write is on an owner that runs: the one
	// the client synced with.
	for _, rp := range repos {
		on := 0
		for _, o := range cluster.Owners(rp, memberNames(six), shardReplicas) {
			if n := s.node(o); n.running() {
				db, err := goatdb.Open(n.dir, &goatdb.Options{ReadOnly: true, MustExist: true})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.GetAt(rp+"/late", late[rp+"/late"][0]); err == nil {
					on++
				}
				db.Close()
			}
		}
		if on == 0 {
			t.Errorf("the write to %s synced with %s killed is on no live owner", rp, victim.name)
		}
	}
	dc = s.commitsOn(t, memberNames(six), late, 30*time.Second)
	t.Logf("step 4: killed %s (owner of %d repositories); the sync of all %d through the member list succeeded; its writes on every live owner %v later",
		victim.name, len(lost), len(repos), dc)
	t.Logf("the scenario took %v", time.Since(began))
}
