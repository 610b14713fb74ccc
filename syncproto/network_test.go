package syncproto_test

// The network simulation: 3 to 5 peers, each a signed repository with its
// own key that serves the others (a Responder) and syncs with them (a
// Syncer per peer), write random concurrent histories on a few shared
// items while syncing over links that lose, duplicate, reorder and delay
// messages and are cut by partitions. After the network heals and writes
// stop, a few rounds of syncs over clean links must leave every peer with
// the same commit ids and the same value for every item.
//
// Every run logs its seed and the command that replays it,
// go test ./syncproto -run '^TestNetwork$' -seed N (the interleaving of
// goroutines still varies); -long runs many more seeds.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

func TestNetwork(t *testing.T) {
	for _, seed := range dbtest.Seeds(20, 500) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			dbtest.LogSeed(t, seed)
			newNetSim(t, seed).run()
		})
	}
}

// netSim is the simulated network.
type netSim struct {
	t     *testing.T
	seed  uint64
	peers []*netPeer

	mu     sync.Mutex // guards rng, cut and faulty
	rng    *rand.Rand
	cut    map[[2]int]bool // links down, by (client, server)
	faulty bool            // faults apply (false once healed)

	faults [5]int // lost requests, lost responses, duplicates, stale requests, stale responses
	syncs  [3]int // converged, out of rounds, failed by a fault
}

type netPeer struct {
	i       int
	r       *repo.Repo
	resp    *syncproto.Responder
	syncers map[int]*syncproto.Syncer // by server peer
}

var errLinkDown = errors.New("link down")

func newNetSim(t *testing.T, seed uint64) *netSim {
	s := &netSim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), cut: map[[2]int]bool{}, faulty: true}
	n := 3 + s.rng.IntN(3)
	for i := range n {
		r := openPeer(t, i)
		// Peers of one mesh trust each other: each relays commits it holds
		// as pending, which a server refuses from untrusted clients.
		p := &netPeer{i: i, r: r, resp: serve(t, r, &syncproto.ResponderOptions{KeepPending: true}), syncers: map[int]*syncproto.Syncer{}}
		s.peers = append(s.peers, p)
	}
	for _, c := range s.peers {
		for _, sv := range s.peers {
			if c != sv {
				l := &netLink{net: s, from: c.i, to: sv.i, inner: syncproto.Loopback(sv.resp)}
				c.syncers[sv.i] = newSyncer(t, l, &syncproto.SyncerOptions{MaxRounds: 6})
			}
		}
	}
	t.Logf("%d peers", n)
	return s
}

func (s *netSim) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faulty && s.rng.Float64() < p
}

func (s *netSim) down(from, to int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cut[[2]int{from, to}]
}

func (s *netSim) delay() {
	s.mu.Lock()
	d := time.Duration(0)
	if s.faulty && s.rng.IntN(4) == 0 {
		d = time.Duration(s.rng.IntN(500)) * time.Microsecond
	}
	s.mu.Unlock()
	time.Sleep(d)
}

func (s *netSim) tally(i int) {
	s.mu.Lock()
	s.syncs[i]++
	s.mu.Unlock()
}

func (s *netSim) count(i int) {
	s.mu.Lock()
	s.faults[i]++
	s.mu.Unlock()
}

// netLink is a faulty link from one peer (client) to another (server).
type netLink struct {
	net      *netSim
	from, to int
	inner    syncproto.Transport

	mu       sync.Mutex // guards the old messages
	oldReqs  [][]byte
	oldResps [][]byte
}

func (l *netLink) old(reqs bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := l.oldResps
	if reqs {
		list = l.oldReqs
	}
	if len(list) == 0 {
		return nil
	}
	l.net.mu.Lock()
	i := l.net.rng.IntN(len(list))
	l.net.mu.Unlock()
	return list[i]
}

func (l *netLink) keep(req, resp []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.oldReqs) < 16 {
		l.oldReqs, l.oldResps = append(l.oldReqs, req), append(l.oldResps, resp)
	}
}

func (l *netLink) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	s := l.net
	if s.down(l.from, l.to) {
		return nil, errLinkDown
	}
	s.delay()
	if s.chance(0.1) {
		s.count(0)
		return nil, errors.New("request lost")
	}
	if old := l.old(true); old != nil && s.chance(0.1) {
		s.count(3)
		l.inner.RoundTrip(ctx, old) // an old request arrives late
	}
	resp, err := l.inner.RoundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	if s.chance(0.1) {
		s.count(2)
		l.inner.RoundTrip(ctx, req) // delivered twice
	}
	l.keep(req, resp)
	s.delay()
	switch {
	case s.down(l.from, l.to) || s.chance(0.1):
		s.count(1)
		return nil, errors.New("response lost")
	case s.chance(0.05):
		if old := l.old(false); old != nil {
			s.count(4)
			return old, nil // a stale response overtakes the fresh one
		}
	}
	return resp, nil
}

func (s *netSim) run() {
	var wg sync.WaitGroup
	steps := 25
	seeds := make([]uint64, len(s.peers))
	for i := range seeds {
		seeds[i] = s.rng.Uint64()
	}
	stop := make(chan struct{})
	var partWG sync.WaitGroup
	partWG.Go(func() { s.partitions(stop) })
	errs := make(chan error, len(s.peers))
	for i, p := range s.peers {
		wg.Go(func() {
			if err := s.peerLoop(p, rand.New(rand.NewPCG(seeds[i], 1)), steps); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(stop)
	partWG.Wait()
	close(errs)
	for err := range errs {
		s.t.Fatalf("seed %d: %v", s.seed, err)
	}
	s.t.Logf("syncs while faulty: %d converged, %d out of rounds, %d cut short by faults", s.syncs[0], s.syncs[1], s.syncs[2])
	s.heal()
	s.t.Logf("faults: %d lost requests, %d lost responses, %d duplicates, %d stale requests, %d stale responses",
		s.faults[0], s.faults[1], s.faults[2], s.faults[3], s.faults[4])
}

// peerLoop writes and syncs at random.
func (s *netSim) peerLoop(p *netPeer, rng *rand.Rand, steps int) error {
	for range steps {
		if rng.IntN(2) == 0 {
			if err := writeRandomErr(p.r, rng, 1+rng.IntN(3)); err != nil {
				return err
			}
			continue
		}
		to := rng.IntN(len(s.peers) - 1)
		if to >= p.i {
			to++
		}
		st, err := p.syncers[to].Sync(context.Background(), syncproto.Local{Path: testPath, Repo: p.r})
		if len(st.Rejected) > 0 || len(st.Refused) > 0 {
			return fmt.Errorf("peer %d syncing with %d: honest commits refused: %v %v", p.i, to, st.Rejected, st.Refused)
		}
		switch {
		case err == nil:
			s.tally(0)
		case errors.Is(err, syncproto.ErrNotConverged):
			s.tally(1)
		case isFault(err):
			s.tally(2)
		default:
			return fmt.Errorf("peer %d syncing with %d: %v", p.i, to, err)
		}
	}
	return nil
}

func isFault(err error) bool {
	s := err.Error()
	for _, f := range []string{"link down", "request lost", "response lost"} {
		if strings.Contains(s, f) {
			return true
		}
	}
	return errors.Is(err, syncproto.ErrMismatch)
}

// partitions cuts random sets of links for a while, then restores them,
// until stopped.
func (s *netSim) partitions(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
		s.mu.Lock()
		if s.rng.IntN(3) == 0 {
			clear(s.cut)
			// Split the peers in two groups; links across are down.
			side := make([]bool, len(s.peers))
			for i := range side {
				side[i] = s.rng.IntN(2) == 0
			}
			for a := range side {
				for b := range side {
					if side[a] != side[b] {
						s.cut[[2]int{a, b}] = true
					}
				}
			}
		} else if s.rng.IntN(2) == 0 {
			clear(s.cut)
		}
		s.mu.Unlock()
	}
}

// heal restores every link, stops faults, and syncs around the ring until
// every peer holds the same commits; then checks the items' values.
func (s *netSim) heal() {
	s.mu.Lock()
	clear(s.cut)
	s.faulty = false
	s.mu.Unlock()
	n := len(s.peers)
	for pass := range 3 {
		for i, p := range s.peers {
			to := (i + 1) % n
			st, err := p.syncers[to].Sync(context.Background(), syncproto.Local{Path: testPath, Repo: p.r})
			if err != nil {
				s.t.Fatalf("seed %d: healed sync %d→%d: %v (%+v)", s.seed, i, to, err, st)
			}
		}
		if s.same() {
			s.t.Logf("converged after %d healed passes; %d commits", pass+1, len(s.peers[0].r.IDs()))
			for _, p := range s.peers[1:] {
				requireSame(s.t, s.peers[0].r, p.r)
			}
			for _, p := range s.peers {
				if m := p.r.Missing(); len(m) > 0 {
					s.t.Fatalf("seed %d: peer %d still misses %d commits", s.seed, p.i, len(m))
				}
			}
			return
		}
	}
	s.t.Fatalf("seed %d: peers hold different commits after healing", s.seed)
}

func (s *netSim) same() bool {
	first := ids(s.peers[0].r)
	for _, p := range s.peers[1:] {
		if !slices.Equal(first, ids(p.r)) {
			return false
		}
	}
	return true
}

// writeRandomErr is writeRandom for goroutines other than the test's.
func writeRandomErr(r *repo.Repo, rng *rand.Rand, n int) error {
	for range n {
		key := fmt.Sprintf("item%d", rng.IntN(4))
		field := []string{"title", "count", "done", "tags"}[rng.IntN(4)]
		v := randomValue(rng, field)
		del := rng.IntN(20) == 0
		_, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With(field, v).WithDeleted(del), testSchema, nil
		}})
		if err != nil {
			return err
		}
	}
	return nil
}
