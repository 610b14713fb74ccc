package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/cluster"
	"github.com/hashicorp/raft"
)

// rig is an in-process raft group over raft's TCP transport on
// loopback.
type rig struct {
	t     *testing.T
	nodes map[string]*cluster.Node
	trans map[string]*raft.NetworkTransport
	addrs map[string]string
}

func newRig(t *testing.T) *rig {
	return &rig{t: t, nodes: map[string]*cluster.Node{}, trans: map[string]*raft.NetworkTransport{}, addrs: map[string]string{}}
}

// member returns the member name of the rig (its raft address is known
// once started).
func (r *rig) member(name string) cluster.Member {
	return cluster.Member{Name: name, URL: "http://" + name + ".test", Raft: r.addrs[name]}
}

// start starts node name.
func (r *rig) start(name string, bootstrap bool) *cluster.Node {
	r.t.Helper()
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addrs[name] = string(tr.LocalAddr())
	store := raft.NewInmemStore()
	n, err := cluster.Start(cluster.Config{Member: r.member(name), Bootstrap: bootstrap, Replicas: 2,
		Logs: store, Stable: store, Snapshots: raft.NewInmemSnapshotStore(), Transport: tr,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { n.Close(); tr.Close() })
	r.nodes[name], r.trans[name] = n, tr
	return n
}

// kill stops a node and its transport.
func (r *rig) kill(name string) {
	r.nodes[name].Close()
	r.trans[name].Close()
	delete(r.nodes, name)
}

// leader waits for a leader among the live nodes.
func (r *rig) leader() *cluster.Node {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range r.nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("no leader within 10 s")
	return nil
}

// until waits for every live node's view to satisfy ok.
func (r *rig) until(what string, ok func(cluster.View) bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, n := range r.nodes {
			if v, _ := n.View(); !ok(v) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handoff has every serving member report its handoff for the current
// epoch, through the leader.
func (r *rig) handoff() {
	r.t.Helper()
	ctx := context.Background()
	l := r.leader()
	v, _ := l.View()
	for _, name := range v.Serving() {
		if err := l.Handoff(ctx, name, v.Epoch); err != nil {
			r.t.Fatalf("handoff of %s: %v", name, err)
		}
	}
}

// TestMembership: a bootstrapped node initialises the cluster; members
// join through the leader and own nothing until the serving members
// handed off; then the change takes effect on every node. A non-leader
// names the leader. Killing the leader elects another among the rest,
// which goes on placing: a member leaves, and its repositories go to the
// others.
func TestMembership(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	n1 := r.start("n1", true)
	if err := n1.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n2", "n3", "n4"} {
		r.start(name, false)
		if err := r.leader().Join(ctx, r.member(name)); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
	}
	v, _ := r.leader().View()
	if got := v.Serving(); !slices.Equal(got, []string{"n1"}) || !slices.Equal(v.Next(), []string{"n1", "n2", "n3", "n4"}) {
		t.Fatalf("before the handoff: serving %v, next %v", got, v.Next())
	}
	if v.OwnersNow("/data/a")[0] != "n1" {
		t.Fatalf("owners before the handoff: %v", v.OwnersNow("/data/a"))
	}
	r.handoff()
	r.until("the joins take effect", func(v cluster.View) bool { return len(v.Serving()) == 4 && !v.Pending() })

	// A follower says who leads.
	l := r.leader()
	for name, n := range r.nodes {
		if n != l {
			err := n.Join(ctx, cluster.Member{Name: "x", URL: "http://x.test", Raft: "127.0.0.1:1"})
			var nl *cluster.NotLeaderError
			if !errors.As(err, &nl) || !nl.Known || nl.Leader.URL == "" {
				t.Fatalf("join on follower %s: %v, want NotLeaderError naming the leader", name, err)
			}
			break
		}
	}

	// Kill the leader: another is elected, and placement goes on.
	old, _ := r.leader().Leader()
	r.kill(old.Name)
	l = r.leader()
	if lm, _ := l.Leader(); lm.Name == old.Name {
		t.Fatal("the killed node still leads")
	}
	if err := l.Leave(ctx, old.Name); err != nil {
		t.Fatalf("leave of the dead leader: %v", err)
	}
	// The dead member cannot hand off; the others hand its repositories'
	// copies on, and the leader activates once the serving members
	// reported (an operator reports for a dead one, as here).
	r.handoff()
	r.until("the dead member leaves", func(v cluster.View) bool {
		_, ok := v.Members[old.Name]
		return !ok && len(v.Serving()) == 3 && !v.Pending()
	})
	v, _ = l.View()
	for i := range 100 {
		rp := fmt.Sprintf("/data/r%d", i)
		if slices.Contains(v.OwnersNow(rp), old.Name) || len(v.OwnersNow(rp)) != 2 {
			t.Fatalf("%s owned by %v after %s left", rp, v.OwnersNow(rp), old.Name)
		}
	}
}

// TestStaleHandoff: a handoff for an old epoch is refused, and the change
// does not take effect without every serving member's.
func TestStaleHandoff(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	n1 := r.start("n1", true)
	if err := n1.Init(ctx); err != nil {
		t.Fatal(err)
	}
	r.start("n2", false)
	if err := n1.Join(ctx, r.member("n2")); err != nil {
		t.Fatal(err)
	}
	v, _ := n1.View()
	if err := n1.Handoff(ctx, "n1", v.Epoch-1); !errors.Is(err, cluster.ErrStaleEpoch) {
		t.Fatalf("stale handoff: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if v, _ := n1.View(); !v.Pending() {
		t.Fatal("the join took effect without a handoff")
	}
}

// TestVoters: past five members, a joining member follows the raft log
// without a vote; when a voter leaves, an active follower is promoted,
// so the group keeps five voters.
func TestVoters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a raft group of seven nodes")
	}
	ctx := context.Background()
	r := newRig(t)
	n1 := r.start("n1", true)
	if err := n1.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 7; i++ {
		name := fmt.Sprintf("n%d", i)
		r.start(name, false)
		if err := r.leader().Join(ctx, r.member(name)); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		r.handoff()
		r.until(name+" serves", func(v cluster.View) bool { return len(v.Serving()) == i && !v.Pending() })
	}
	if got := r.leader().Voters(); got != cluster.MaxVoters {
		t.Fatalf("seven members, %d voters; want %d", got, cluster.MaxVoters)
	}
	l := r.leader()
	lm, _ := l.Leader()
	victim := "n2"
	if lm.Name == victim {
		victim = "n3"
	}
	if err := l.Leave(ctx, victim); err != nil {
		t.Fatal(err)
	}
	r.handoff()
	r.until(victim+" leaves", func(v cluster.View) bool { _, ok := v.Members[victim]; return !ok })
	deadline := time.Now().Add(10 * time.Second)
	for r.leader().Voters() != cluster.MaxVoters {
		if time.Now().After(deadline) {
			t.Fatalf("after %s left, %d voters; want %d (a follower promoted)", victim, r.leader().Voters(), cluster.MaxVoters)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
