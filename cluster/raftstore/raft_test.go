package raftstore_test

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/vfs"
)

// listFSM is a raft.FSM that records the data of each command applied.
type listFSM struct {
	mu      sync.Mutex // guards applied
	applied []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return nil
}

func (f *listFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not supported") }
func (f *listFSM) Restore(io.ReadCloser) error         { return fmt.Errorf("not supported") }

// raftNode is one member of the test cluster.
type raftNode struct {
	id    raft.ServerID
	dir   string
	store *raftstore.Store
	trans *raft.InmemTransport
	fsm   *listFSM
	raft  *raft.Raft
}

func raftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.LogOutput = io.Discard
	return c
}

// start opens the node's store and starts raft on it, with a new
// transport connected to the others.
func (n *raftNode) start(t *testing.T, others []*raftNode) {
	t.Helper()
	var err error
	if n.store, err = raftstore.Open(vfs.OS, n.dir); err != nil {
		t.Fatal(err)
	}
	_, n.trans = raft.NewInmemTransport(raft.ServerAddress(n.id))
	for _, o := range others {
		if o != n && o.trans != nil {
			n.trans.Connect(o.trans.LocalAddr(), o.trans)
			o.trans.Connect(n.trans.LocalAddr(), n.trans)
		}
	}
	n.fsm = &listFSM{}
	n.raft, err = raft.NewRaft(raftConfig(n.id), n.fsm, n.store, n.store, raft.NewDiscardSnapshotStore(), n.trans)
	if err != nil {
		t.Fatal(err)
	}
}

// stop shuts raft down and closes the store.
func (n *raftNode) stop(t *testing.T) {
	t.Helper()
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Error(err)
	}
	if err := n.store.Close(); err != nil {
		t.Error(err)
	}
	n.raft = nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func leader(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var l *raftNode
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func apply(t *testing.T, l *raftNode, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.raft.Apply(fmt.Appendf(nil, "cmd %d", i), time.Second).Error(); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
}

// TestRaftCluster runs three raft nodes on Stores, applies commands,
// restarts a follower from its store while the others go on, and checks
// that it catches up.
func TestRaftCluster(t *testing.T) {
	root := t.TempDir()
	nodes := make([]*raftNode, 3)
	var servers []raft.Server
	for i := range nodes {
		id := raft.ServerID(fmt.Sprintf("node%d", i))
		nodes[i] = &raftNode{id: id, dir: filepath.Join(root, string(id))}
		servers = append(servers, raft.Server{ID: id, Address: raft.ServerAddress(id)})
	}
	for _, n := range nodes {
		n.start(t, nodes)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.raft != nil {
				n.stop(t)
			}
		}
	})
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	l := leader(t, nodes)
	apply(t, l, 0, 20)

	f := nodes[0]
	if f == l {
		f = nodes[1]
	}
	waitFor(t, "the follower to apply 20 commands", func() bool { return len(f.fsm.list()) == 20 })
	lastBefore, _ := f.store.LastIndex()
	f.stop(t)
	apply(t, l, 20, 40)

	f.start(t, nodes)
	if has, err := raft.HasExistingState(f.store, f.store, raft.NewDiscardSnapshotStore()); err != nil || !has {
		t.Fatalf("HasExistingState after restart = %v, %v", has, err)
	}
	if last, _ := f.store.LastIndex(); last < lastBefore {
		t.Fatalf("the restarted store's last index is %d, was %d", last, lastBefore)
	}
	l = leader(t, nodes)
	apply(t, l, 40, 45)
	want := l.fsm.list()
	if len(want) != 45 {
		t.Fatalf("the leader applied %d commands, want 45", len(want))
	}
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("%s to apply 45 commands", n.id), func() bool { return len(n.fsm.list()) == 45 })
		if got := n.fsm.list(); !slices.Equal(got, want) {
			t.Fatalf("%s applied %q, want %q", n.id, got, want)
		}
		term, err := n.store.GetUint64([]byte("CurrentTerm"))
		if err != nil || term == 0 {
			t.Fatalf("%s: CurrentTerm = %d, %v", n.id, term, err)
		}
	}
}
