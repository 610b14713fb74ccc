package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config configures a Node.
type Config struct {
	// Member is this node: its name (as its node certificate names it),
	// HTTP URL and raft address (Raft, which Transport listens on).
	Member Member
	// Bootstrap starts a new cluster with this node as its only member,
	// Replicas owners per repository. A node that holds raft state
	// already ignores it. The other nodes join through the leader
	// (Node.Join).
	Bootstrap bool
	Replicas  int
	// Raft's storage and transport: its log, stable store, snapshots and
	// network. All required.
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	Transport raft.Transport
	// HeartbeatTimeout and ElectionTimeout tune raft (0: raft's defaults,
	// 1 s each); tests shorten them.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// Logger receives raft's warnings and the node's decisions; nil
	// discards.
	Logger *slog.Logger
}

// Node is one member's view of the cluster's membership, kept by a raft
// group of the members (3 or 5 voters in production). It decides nothing
// about data: commits replicate by the sync protocol, and need no
// consensus. Raft keeps only what must be unique: who the members are,
// how many own each repository, and when a change of placement takes
// effect.
//
// A change (a member joining or leaving) moves the epoch and leaves the
// placement in force (View.Serving) as it was; each serving member then
// hands the repositories it holds to their owners in the next placement
// (View.Next) by syncing them, and reports it (Handoff). Once every
// serving member has, the leader activates the change: the new owners
// own, and an old owner may drop its copy, since its successors
// confirmed they hold it.
type Node struct {
	cfg  Config
	raft *raft.Raft
	fsm  *fsm
	log  *slog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// ErrNotLeader is returned by the calls that must run on the leader;
// NotLeaderError says which member leads, if one does.
var ErrNotLeader = errors.New("cluster: not the leader")

// NotLeaderError is ErrNotLeader with the leader's member, if known.
type NotLeaderError struct {
	Leader Member
	Known  bool
}

func (e *NotLeaderError) Error() string {
	if !e.Known {
		return "cluster: not the leader, and no leader is known now; retry shortly"
	}
	return fmt.Sprintf("cluster: not the leader; the leader is %s (%s)", e.Leader.Name, e.Leader.URL)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// MaxVoters is how many members vote in the raft group: up to 5, which
// survives two failures; the others follow the log without a vote, and
// one is promoted when a voter leaves.
const MaxVoters = 5

// Voters counts the raft group's voters now, as this node knows the
// group's configuration.
func (n *Node) Voters() int { return n.voters() }

// voters counts the raft group's voters now.
func (n *Node) voters() int {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// applyTimeout bounds one proposal.
const applyTimeout = 10 * time.Second

// Start starts the node's raft member. With Config.Bootstrap and no raft
// state yet, it starts a cluster of itself.
func Start(cfg Config) (*Node, error) {
	switch {
	case cfg.Member.Name == "" || cfg.Member.Raft == "" || cfg.Member.URL == "":
		return nil, fmt.Errorf("%w: a member needs a name, a URL and a raft address", ErrMember)
	case cfg.Logs == nil || cfg.Stable == nil || cfg.Snapshots == nil || cfg.Transport == nil:
		return nil, errors.New("cluster: Config needs Logs, Stable, Snapshots and Transport")
	case cfg.Bootstrap && cfg.Replicas < 1:
		return nil, errors.New("cluster: bootstrapping needs Replicas ≥ 1")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(cfg.Member.Name)
	if cfg.HeartbeatTimeout > 0 {
		conf.HeartbeatTimeout = cfg.HeartbeatTimeout
		conf.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	}
	if cfg.ElectionTimeout > 0 {
		conf.ElectionTimeout = cfg.ElectionTimeout
	}
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: &slogWriter{log: logger}})
	n := &Node{cfg: cfg, fsm: newFSM(), log: logger, stop: make(chan struct{})}
	r, err := raft.NewRaft(conf, n.fsm, cfg.Logs, cfg.Stable, cfg.Snapshots, cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(cfg.Logs, cfg.Stable, cfg.Snapshots)
		if err != nil {
			return nil, errors.Join(err, n.Close())
		}
		if !has {
			f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: raft.ServerAddress(cfg.Member.Raft)}}})
			if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				return nil, errors.Join(fmt.Errorf("cluster: bootstrap: %w", err), n.Close())
			}
		}
	}
	n.wg.Go(n.lead)
	return n, nil
}

// View returns the membership as this node knows it, and a channel closed
// when it changes.
func (n *Node) View() (View, <-chan struct{}) { return n.fsm.current() }

// Leader returns the leader's member, if a leader is known and is a
// member.
func (n *Node) Leader() (Member, bool) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return Member{}, false
	}
	v, _ := n.fsm.current()
	m, ok := v.Members[string(id)]
	return m, ok
}

// IsLeader reports whether this node leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

func (n *Node) notLeader() error {
	m, ok := n.Leader()
	return &NotLeaderError{Leader: m, Known: ok}
}

// propose applies c through the raft log; it must run on the leader.
func (n *Node) propose(ctx context.Context, c command) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	timeout := applyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	f := n.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.notLeader()
		}
		return fmt.Errorf("cluster: %s: %w", c.Op, err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// Init makes a bootstrapped cluster's first membership: this node, with
// replicas owners per repository. It waits until this node leads.
func (n *Node) Init(ctx context.Context) error {
	for !n.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: init: %w: %w", ErrNotLeader, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if v, _ := n.View(); len(v.Members) > 0 {
		return nil
	}
	m := n.cfg.Member
	return n.propose(ctx, command{Op: "init", Member: &m, Replicas: n.cfg.Replicas})
}

// Join adds m to the cluster, as a voter of the raft group and a joining
// member: it owns repositories once the serving members handed them to
// it and the leader activated the change. It runs on the leader.
func (n *Node) Join(ctx context.Context, m Member) error {
	if m.Name == "" || m.Raft == "" || m.URL == "" || strings.ContainsAny(m.Name, "\x00\n") {
		return fmt.Errorf("%w: a member needs a name, a URL and a raft address", ErrMember)
	}
	if !n.IsLeader() {
		return n.notLeader()
	}
	add := n.raft.AddVoter
	if n.voters() >= MaxVoters {
		add = n.raft.AddNonvoter // it follows the log; it votes once a voter leaves
	}
	if err := add(raft.ServerID(m.Name), raft.ServerAddress(m.Raft), 0, applyTimeout).Error(); err != nil {
		return fmt.Errorf("cluster: add %s to the raft group: %w", m.Name, err)
	}
	return n.propose(ctx, command{Op: "join", Member: &m})
}

// Leave starts the departure of member name: once the repositories it
// owns are handed to the others, it leaves the placement and the raft
// group. It runs on the leader.
func (n *Node) Leave(ctx context.Context, name string) error {
	return n.propose(ctx, command{Op: "leave", Name: name})
}

// Handoff reports that member name handed the repositories it holds to
// their owners in the next placement of epoch. It runs on the leader.
func (n *Node) Handoff(ctx context.Context, name string, epoch uint64) error {
	return n.propose(ctx, command{Op: "handoff", Name: name, Epoch: epoch})
}

// lead runs on every node; while this node leads, it activates a pending
// change once every serving member handed off, and keeps the raft group's
// voters equal to the members.
func (n *Node) lead() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		v, changed := n.View()
		if n.IsLeader() {
			n.settle(v)
		}
		select {
		case <-n.stop:
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

func (n *Node) settle(v View) {
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	if v.Pending() && v.HandedOff() {
		if err := n.propose(ctx, command{Op: "activate", Epoch: v.Epoch}); err != nil && !errors.Is(err, ErrStaleEpoch) {
			n.log.Warn("cluster: activate", "epoch", v.Epoch, "err", err)
		} else if err == nil {
			n.log.Info("cluster: placement changed", "epoch", v.Epoch+1)
		}
		return
	}
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	voters := 0
	var promote []raft.Server
	for _, s := range cf.Configuration().Servers {
		// Only members that departed leave the raft group: a server not
		// in the View yet may be joining (Join adds it before its join is
		// applied).
		if _, gone := v.Departed[string(s.ID)]; gone && s.ID != raft.ServerID(n.cfg.Member.Name) {
			if err := n.raft.RemoveServer(s.ID, 0, applyTimeout).Error(); err != nil {
				n.log.Warn("cluster: remove a departed member from the raft group", "member", s.ID, "err", err)
			}
			continue
		}
		switch {
		case s.Suffrage == raft.Voter:
			voters++
		case v.Members[string(s.ID)].State == Active:
			promote = append(promote, s)
		}
	}
	for _, s := range promote {
		if voters >= MaxVoters {
			break
		}
		if err := n.raft.AddVoter(s.ID, s.Address, 0, applyTimeout).Error(); err != nil {
			n.log.Warn("cluster: promote a member to voter", "member", s.ID, "err", err)
			break
		}
		voters++
	}
}

// Close stops the node's raft member.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		close(n.stop)
		n.wg.Wait()
		err = n.raft.Shutdown().Error()
	})
	return err
}

// slogWriter passes raft's log lines to a slog.Logger at Warn.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(b []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) > 0 {
			w.log.Warn(string(line))
		}
	}
	return len(b), nil
}

var _ io.Writer = (*slogWriter)(nil)
