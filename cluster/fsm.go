package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// MemberState is where a member is in the membership's life.
type MemberState string

// Member states. A joining member owns nothing yet: the repositories it
// will own are handed to it first. A leaving member still owns its
// repositories until they are handed to the others.
const (
	Joining MemberState = "joining"
	Active  MemberState = "active"
	Leaving MemberState = "leaving"
)

// Member is a node of the cluster.
type Member struct {
	Name  string      `json:"name"`  // its node name (node certificate)
	URL   string      `json:"url"`   // where it serves HTTP
	Raft  string      `json:"raft"`  // its raft transport address
	State MemberState `json:"state"` // joining, active or leaving
}

// View is the membership at one point of the raft log: the members, how
// many own each repository, and the epoch, which moves whenever the
// placement about to take effect changes.
type View struct {
	Replicas int               `json:"replicas"`
	Epoch    uint64            `json:"epoch"`
	Members  map[string]Member `json:"members"`
	// Handoffs holds, per member, the last epoch for which it handed the
	// repositories it holds to their owners in the next placement.
	Handoffs map[string]uint64 `json:"handoffs"`
	// Departed holds the members that left, by the epoch they left at:
	// the leader removes them from the raft group. A member joining again
	// leaves this list.
	Departed map[string]uint64 `json:"departed,omitempty"`
}

// Serving returns the members whose placement is in force: the active
// and the leaving ones, sorted.
func (v View) Serving() []string {
	return v.names(func(m Member) bool { return m.State != Joining })
}

// Next returns the members of the placement about to take effect: the
// active and the joining ones, sorted. It equals Serving when no change
// is pending.
func (v View) Next() []string {
	return v.names(func(m Member) bool { return m.State != Leaving })
}

// Pending reports whether a member is joining or leaving.
func (v View) Pending() bool {
	for _, m := range v.Members {
		if m.State != Active {
			return true
		}
	}
	return false
}

// OwnersNow returns the owners of repo in the placement in force.
func (v View) OwnersNow(repo string) []string { return Owners(repo, v.Serving(), v.Replicas) }

// OwnersNext returns the owners of repo once the pending change takes
// effect.
func (v View) OwnersNext(repo string) []string { return Owners(repo, v.Next(), v.Replicas) }

// HandedOff reports whether every serving member has handed off for the
// current epoch: the pending change may take effect.
func (v View) HandedOff() bool {
	for _, name := range v.Serving() {
		if v.Handoffs[name] != v.Epoch {
			return false
		}
	}
	return true
}

func (v View) names(keep func(Member) bool) []string {
	var out []string
	for name, m := range v.Members {
		if keep(m) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (v View) clone() View {
	c := v
	c.Members = maps.Clone(v.Members)
	c.Handoffs = maps.Clone(v.Handoffs)
	c.Departed = maps.Clone(v.Departed)
	if c.Departed == nil {
		c.Departed = map[string]uint64{}
	}
	if c.Members == nil {
		c.Members = map[string]Member{}
	}
	if c.Handoffs == nil {
		c.Handoffs = map[string]uint64{}
	}
	return c
}

// command is one entry of the raft log.
type command struct {
	Op       string  `json:"op"` // init, join, leave, handoff, activate
	Member   *Member `json:"member,omitempty"`
	Name     string  `json:"name,omitempty"`
	Epoch    uint64  `json:"epoch,omitempty"`
	Replicas int     `json:"replicas,omitempty"`
}

// Errors of commands, returned by Apply through the raft future.
var (
	ErrStaleEpoch = errors.New("cluster: the epoch moved on")
	ErrNotReady   = errors.New("cluster: not every serving member handed off")
	ErrMember     = errors.New("cluster: bad member")
)

// maxCommand bounds a log entry's data.
const maxCommand = 64 << 10

// fsm applies the raft log to the View. Apply runs on one goroutine at a
// time (raft's); readers take a copy under mu.
type fsm struct {
	mu      sync.Mutex
	view    View
	changed chan struct{} // closed and replaced on every applied change
}

func newFSM() *fsm {
	return &fsm{view: View{}.clone(), changed: make(chan struct{})}
}

func (f *fsm) current() (View, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view.clone(), f.changed
}

// Apply applies one log entry; it returns nil or an error (which the
// proposer gets from its future).
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) > maxCommand {
		return fmt.Errorf("%w: a command of %d bytes", ErrMember, len(l.Data))
	}
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("cluster: undecodable command: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.view.clone()
	if err := apply(&v, c); err != nil {
		return err
	}
	f.view = v
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// apply changes v by c, or returns why c does not apply.
func apply(v *View, c command) error {
	switch c.Op {
	case "init":
		if len(v.Members) > 0 {
			return fmt.Errorf("%w: the cluster is initialised already", ErrMember)
		}
		if c.Member == nil || c.Replicas < 1 {
			return fmt.Errorf("%w: init needs a member and replicas ≥ 1", ErrMember)
		}
		m := *c.Member
		m.State = Active
		v.Members[m.Name], v.Replicas, v.Epoch = m, c.Replicas, 1
		v.Handoffs[m.Name] = 1
	case "join":
		if c.Member == nil || c.Member.Name == "" {
			return fmt.Errorf("%w: join needs a member", ErrMember)
		}
		if old, ok := v.Members[c.Member.Name]; ok {
			if old.URL == c.Member.URL && old.Raft == c.Member.Raft && old.State != Leaving {
				return nil // joined already
			}
			return fmt.Errorf("%w: %s is a member already (%s)", ErrMember, c.Member.Name, old.State)
		}
		m := *c.Member
		m.State = Joining
		v.Members[m.Name] = m
		delete(v.Departed, m.Name)
		v.Epoch++
	case "leave":
		m, ok := v.Members[c.Name]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is not a member", ErrMember, c.Name)
		case m.State == Leaving:
			return nil
		case m.State == Joining:
			delete(v.Members, c.Name) // it owned nothing yet
			delete(v.Handoffs, c.Name)
			v.Departed[c.Name] = v.Epoch
		case len(v.Next()) <= 1:
			return fmt.Errorf("%w: %s is the last member", ErrMember, c.Name)
		default:
			m.State = Leaving
			v.Members[c.Name] = m
		}
		v.Epoch++
	case "handoff":
		if c.Epoch != v.Epoch {
			return fmt.Errorf("%w: handoff for epoch %d, the cluster is at %d", ErrStaleEpoch, c.Epoch, v.Epoch)
		}
		if _, ok := v.Members[c.Name]; !ok {
			return fmt.Errorf("%w: %s is not a member", ErrMember, c.Name)
		}
		v.Handoffs[c.Name] = c.Epoch
	case "activate":
		if c.Epoch != v.Epoch {
			return fmt.Errorf("%w: activate epoch %d, the cluster is at %d", ErrStaleEpoch, c.Epoch, v.Epoch)
		}
		if !v.HandedOff() {
			return ErrNotReady
		}
		if !v.Pending() {
			return nil
		}
		for name, m := range v.Members {
			switch m.State {
			case Joining:
				m.State = Active
				v.Members[name] = m
			case Leaving:
				delete(v.Members, name)
				delete(v.Handoffs, name)
				v.Departed[name] = v.Epoch
			}
		}
		v.Epoch++
		for _, name := range v.Serving() {
			v.Handoffs[name] = v.Epoch // nothing to hand off in a settled placement
		}
	default:
		return fmt.Errorf("cluster: unknown command %q", c.Op)
	}
	return nil
}

// Snapshot and Restore keep the View in raft snapshots (JSON).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	v, _ := f.current()
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return err
	}
	var v View
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("cluster: undecodable snapshot: %w", err)
	}
	f.mu.Lock()
	f.view = v.clone()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
