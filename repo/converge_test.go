package repo_test

// Convergence: the property that matters most (DESIGN.md §4) is that peers
// holding the same commits hold the same value for every item, whatever
// order the commits arrived in. These tests build random concurrent
// histories on several replicas, exchange commits between them in random
// orders (partial, shuffled, duplicated, held back so that commits arrive
// before their parents), and check that everything converges. They also
// check that forged commits are refused with a reason.
//
// Every run logs its seed and the command that replays it, such as
// go test ./repo -run '^TestConverge$' -seed N; -long runs many more seeds.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

func TestConverge(t *testing.T) {
	for _, seed := range dbtest.Seeds(50, 1000) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			dbtest.LogSeed(t, seed)
			s := newConvSim(t, seed)
			s.run(40 + s.rng.IntN(60))
			s.settle()
			s.requireConverged()
			t.Logf("%d deliveries left pending commits", s.pendingSeen)
		})
	}
}

// convSim is a set of replicas with a random workload.
type convSim struct {
	t       *testing.T
	seed    uint64
	rng     *rand.Rand
	trusted bool
	reps    []*convReplica
	clock   int64 // global time, Unix ms; replicas' clocks are skewed from it
	keys    []string

	pendingSeen int // deliveries after which the receiver held pending commits
}

type convReplica struct {
	name string
	r    *repo.Repo
	fs   *vfs.MemFS // where its log is
	opts repo.Options
	path string
	now  int64    // the replica's clock
	held [][]byte // commits sent to this replica but held back for later
}

func convKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "goatdb converge replica %d", i))
	return ed25519.NewKeyFromSeed(seed[:])
}

func newConvSim(t *testing.T, seed uint64) *convSim {
	rng := rand.New(rand.NewPCG(seed, 0x60a7db))
	s := &convSim{t: t, seed: seed, rng: rng, trusted: seed%2 == 0, clock: 1_700_000_000_000}
	n := 3 + rng.IntN(3)
	for i := range n {
		s.reps = append(s.reps, s.open(fmt.Sprintf("r%d", i), convKey(i)))
	}
	for i := range 2 + rng.IntN(3) {
		s.keys = append(s.keys, fmt.Sprintf("item%d", i))
	}
	t.Logf("%d replicas, %d items, trusted=%v", n, len(s.keys), s.trusted)
	return s
}

// open opens a replica on its own in-memory filesystem, checked when the
// test ends; key may be nil for a replica that only receives.
func (s *convSim) open(name string, key ed25519.PrivateKey) *convReplica {
	rep := &convReplica{name: name, fs: vfs.NewMem(), path: "/data/" + name + ".log"}
	path := rep.path
	opts := &repo.Options{
		FS: rep.fs, Key: key, Trusted: s.trusted, Schemas: goldUpgrader{},
		Now: func() time.Time { return time.UnixMilli(rep.now) },
		// The replicas' clocks are skewed on purpose, by more than a
		// receiver allows by default: convergence must not depend on it.
		MaxSkew: math.MaxInt64,
	}
	rep.opts = *opts
	rep.r = dbtest.OpenRepo(s.t, path, opts)
	return rep
}

// run performs steps random writes and exchanges.
func (s *convSim) run(steps int) {
	for range steps {
		s.clock += int64(s.rng.IntN(3)) // 0: several writes in one millisecond
		if s.rng.IntN(10) < 6 {
			s.write()
		} else {
			s.exchange()
		}
	}
}

// write makes one replica write random changes to one or two items.
func (s *convSim) write() {
	rep := s.reps[s.rng.IntN(len(s.reps))]
	rep.now = max(0, s.clock+int64(s.rng.IntN(7))-3) // skewed, sometimes behind
	var ups []repo.Update
	for range 1 + s.rng.IntN(2) {
		ups = append(ups, s.randomUpdate(s.keys[s.rng.IntN(len(s.keys))]))
	}
	if _, err := rep.r.Write(ups...); err != nil {
		s.t.Fatalf("seed %d: %s writes: %v", s.seed, rep.name, err)
	}
}

// convStep is one random change of an item and its schema. Its random
// choices are drawn when it is made, so it is a pure function of its input
// (exists: the item had a commit before this write).
type convStep func(it item.Item, sc commit.Schema, exists bool) (item.Item, commit.Schema)

func (s *convSim) randomUpdate(key string) repo.Update {
	var steps []convStep
	for range 1 + s.rng.IntN(3) {
		steps = append(steps, s.randomStep())
	}
	return repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		it, sc := cur.Value, cur.Schema
		for _, st := range steps {
			it, sc = st(it, sc, cur.Exists)
		}
		return it, sc, nil
	}}
}

var convFields = []string{"f0", "f1", "f2", "f3", "title", "name"}

func (s *convSim) randomStep() convStep {
	rng := s.rng
	field := convFields[rng.IntN(len(convFields))]
	r := rng.IntN(1 << 20)
	switch k := rng.IntN(24); {
	case k >= 20:
		return s.randomListOrCounterStep(field, r)
	case k < 7: // a scalar of any type
		v := s.randomScalar()
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) { return it.With(field, v), sc }
	case k < 8: // a whole set or map
		v := s.randomSet()
		if rng.IntN(2) == 0 {
			v = s.randomMap(1)
		}
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) { return it.With(field, v), sc }
	case k < 9:
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) { return it.Without(field), sc }
	case k < 11: // set add
		e := s.randomScalar()
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			cur, _ := it.Get(field)
			elems := []item.Value{e}
			if cur.Type() == item.TypeSet {
				elems = append(elems, cur.Elems()...)
			}
			set, _ := item.Set(elems...)
			return it.With(field, set), sc
		}
	case k < 13: // set remove
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			cur, _ := it.Get(field)
			if cur.Type() != item.TypeSet || cur.Len() == 0 {
				return it, sc
			}
			elems := slices.Delete(slices.Clone(cur.Elems()), r%cur.Len(), r%cur.Len()+1)
			set, _ := item.Set(elems...)
			return it.With(field, set), sc
		}
	case k < 15: // map put
		key, v := fmt.Sprintf("k%d", rng.IntN(4)), s.randomScalar()
		if rng.IntN(6) == 0 {
			v = s.randomMap(2)
		}
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			m := convMap(it, field)
			m[key] = v
			return it.With(field, item.Map(m)), sc
		}
	case k < 17: // map delete
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			cur, _ := it.Get(field)
			if cur.Type() != item.TypeMap || cur.Len() == 0 {
				return it, sc
			}
			m := convMap(it, field)
			delete(m, cur.Keys()[r%cur.Len()])
			return it.With(field, item.Map(m)), sc
		}
	case k < 18:
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			return it.WithDeleted(true), sc
		}
	case k < 19:
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			return it.WithDeleted(false), sc
		}
	default: // schema: new items may start as task/1; task/1 upgrades to task/2
		return func(it item.Item, sc commit.Schema, exists bool) (item.Item, commit.Schema) {
			switch {
			case !exists && sc.NS == "":
				return it, commit.Schema{NS: "task", Version: 1}
			case sc == commit.Schema{NS: "task", Version: 1}:
				up, _ := goldUpgrader{}.Upgrade(it, sc, 2)
				return up, commit.Schema{NS: "task", Version: 2}
			}
			return it, sc
		}
	}
}

// randomListOrCounterStep inserts a run into a list, deletes one of its
// elements, or adds to a counter; the list elements kept keep their ids and
// the new ones get theirs when the repository writes the item.
func (s *convSim) randomListOrCounterStep(field string, r int) convStep {
	rng := s.rng
	switch rng.IntN(3) {
	case 0:
		run := make([]item.ListElem, 1+rng.IntN(3))
		for i := range run {
			run[i].Value = s.randomScalar()
		}
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			cur, _ := it.Get(field)
			elems := cur.ListElems()
			at := r % (len(elems) + 1)
			l, err := item.ListOf(slices.Insert(elems, at, run...))
			if err != nil {
				panic(err)
			}
			return it.With(field, l), sc
		}
	case 1:
		return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
			cur, _ := it.Get(field)
			elems := cur.ListElems()
			if len(elems) == 0 {
				return it, sc
			}
			l, err := item.ListOf(slices.Delete(elems, r%len(elems), r%len(elems)+1))
			if err != nil {
				panic(err)
			}
			return it.With(field, l), sc
		}
	}
	n := int64(rng.IntN(11) - 5)
	return func(it item.Item, sc commit.Schema, _ bool) (item.Item, commit.Schema) {
		cur, _ := it.Get(field)
		if cur.Type() != item.TypeCounter {
			cur = item.Counter(0)
		}
		return it.With(field, item.Counter(cur.Int64()+n)), sc
	}
}

func convMap(it item.Item, field string) map[string]item.Value {
	m := map[string]item.Value{}
	if cur, _ := it.Get(field); cur.Type() == item.TypeMap {
		for i, k := range cur.Keys() {
			m[k] = cur.Elems()[i]
		}
	}
	return m
}

// randomScalar returns a value from a small domain, so that replicas often
// write equal values.
func (s *convSim) randomScalar() item.Value {
	rng := s.rng
	switch rng.IntN(5) {
	case 0:
		return item.String([]string{"a", "b", "c", "d"}[rng.IntN(4)])
	case 1:
		return item.Number([]float64{0, 1.5, -2, 1e300}[rng.IntN(4)])
	case 2:
		return item.Int(int64(rng.IntN(7) - 3))
	case 3:
		return item.Bool(rng.IntN(2) == 0)
	default:
		return item.DateMillis(1_700_000_000_000 + int64(rng.IntN(3))*86_400_000)
	}
}

func (s *convSim) randomSet() item.Value {
	var elems []item.Value
	for range s.rng.IntN(4) {
		elems = append(elems, s.randomScalar())
	}
	v, err := item.Set(elems...)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

func (s *convSim) randomMap(depth int) item.Value {
	m := map[string]item.Value{}
	for range s.rng.IntN(3) {
		v := s.randomScalar()
		if depth > 1 && s.rng.IntN(3) == 0 {
			v = s.randomMap(depth - 1)
		}
		m[fmt.Sprintf("k%d", s.rng.IntN(4))] = v
	}
	return item.Map(m)
}

// exchange sends a random part of one replica's commits to another:
// shuffled, some twice, some held back for a later exchange (so that their
// children arrive first), plus some commits held back earlier, in one to
// three batches.
func (s *convSim) exchange() {
	rng := s.rng
	from := s.reps[rng.IntN(len(s.reps))]
	to := s.reps[rng.IntN(len(s.reps))]
	if from == to {
		return
	}
	p := 0.2 + 0.8*rng.Float64()
	var batch [][]byte
	for _, enc := range convEncodings(from.r) {
		switch {
		case rng.Float64() > p:
		case rng.IntN(5) == 0:
			to.held = append(to.held, enc)
		default:
			batch = append(batch, enc)
			if rng.IntN(8) == 0 {
				batch = append(batch, enc)
			}
		}
	}
	keep := to.held[:0]
	for _, enc := range to.held {
		if rng.IntN(2) == 0 {
			batch = append(batch, enc)
		} else {
			keep = append(keep, enc)
		}
	}
	to.held = keep
	rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for len(batch) > 0 {
		n := 1 + rng.IntN(len(batch))
		s.receive(to, batch[:n])
		batch = batch[n:]
	}
}

// receive delivers commits; honest commits must never be rejected.
func (s *convSim) receive(to *convReplica, encs [][]byte) {
	s.t.Helper()
	_, rej, err := to.r.Receive(encs)
	if err != nil {
		s.t.Fatalf("seed %d: %s receives: %v", s.seed, to.name, err)
	}
	if len(rej) > 0 {
		s.t.Fatalf("seed %d: %s rejects honest commits: %v", s.seed, to.name, rej)
	}
	if to.r.Stats().Pending > 0 {
		s.pendingSeen++
	}
}

// convEncodings returns the encodings of every commit a replica holds,
// pending ones included.
func convEncodings(r *repo.Repo) [][]byte {
	cs := allCommits(r)
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Encode()
	}
	return out
}

// settle delivers everything everywhere, round after round, until no
// replica misses a commit, all hold the same commits and no head changes.
// Like the sync protocol, it sends a replica only commits it lacks (and
// whatever was held back for it, duplicates included).
func (s *convSim) settle() {
	prev := ""
	for round := range 10 {
		for _, to := range s.reps {
			batch := to.held
			to.held = nil
			for _, from := range s.reps {
				if from == to {
					continue
				}
				for _, c := range allCommits(from.r) {
					if !to.r.Has(c.ID()) {
						batch = append(batch, c.Encode())
					}
				}
			}
			s.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			s.receive(to, batch)
		}
		state := s.state()
		if state == prev && s.sameCommits() {
			s.t.Logf("settled after %d rounds", round+1)
			return
		}
		prev = state
	}
	s.t.Fatalf("seed %d: replicas did not settle in 10 rounds", s.seed)
}

// state summarises every replica's missing ids and heads.
func (s *convSim) state() string {
	var b strings.Builder
	for _, rep := range s.reps {
		fmt.Fprintf(&b, "%s missing %d:", rep.name, len(rep.r.Missing()))
		for _, k := range s.keys {
			h, _ := rep.r.Head(k)
			fmt.Fprintf(&b, " %s", h.Short())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (s *convSim) sameCommits() bool {
	first := commitIDs(s.reps[0].r)
	for _, rep := range s.reps[1:] {
		if !slices.Equal(first, commitIDs(rep.r)) {
			return false
		}
	}
	return true
}

// requireConverged checks that every replica holds the same commits, the
// same head and value for every item, one leaf per item, nothing missing,
// and passes Check.
func (s *convSim) requireConverged() {
	s.t.Helper()
	requireSameState(s.t, s.seed, s.reps)
}

func requireSameState(t *testing.T, seed uint64, reps []*convReplica) {
	t.Helper()
	first := reps[0]
	ids := commitIDs(first.r)
	keys, _ := first.r.Since(0)
	for _, rep := range reps {
		if got := commitIDs(rep.r); !slices.Equal(got, ids) {
			t.Errorf("seed %d: %s holds %d commits, %s %d (or others)", seed, rep.name, len(got), first.name, len(ids))
		}
		if m := rep.r.Missing(); len(m) > 0 {
			t.Errorf("seed %d: %s misses %d commits", seed, rep.name, len(m))
		}
		for _, p := range rep.r.Check() {
			t.Errorf("seed %d: %s: Check: %s", seed, rep.name, p)
		}
		for _, k := range keys {
			h0, _ := first.r.Head(k)
			v0, s0, _ := first.r.Get(k)
			h, _ := rep.r.Head(k)
			v, sc, _ := rep.r.Get(k)
			if h != h0 || sc != s0 || !item.ItemsEqual(v, v0) {
				t.Errorf("seed %d: item %s: %s has %s %s %v, %s has %s %s %v", seed, k,
					first.name, h0.Short(), s0, v0, rep.name, h.Short(), sc, v)
			}
			if n := len(rep.r.Leaves(k)); n != 1 {
				t.Errorf("seed %d: item %s: %s has %d leaves", seed, k, rep.name, n)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestConvergeOrderIndependent delivers one set of commits to fresh
// replicas in different orders (shuffled, children before parents, sorted
// by id, with duplicates) and requires identical heads, values and commit
// sets. The set is taken in the middle of a random history, so it usually
// holds items with several leaves, commits whose parents are absent and
// merges that the fresh replicas recompute.
func TestConvergeOrderIndependent(t *testing.T) {
	for _, seed := range dbtest.Seeds(20, 300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			dbtest.LogSeed(t, seed)
			s := newConvSim(t, seed)
			s.run(30 + s.rng.IntN(40))
			union := convUnion(s.reps)
			orders := []struct {
				name string
				encs [][]byte
			}{
				{"as-sent", union},
				{"shuffled", convShuffled(s.rng, union)},
				{"reversed", convReversed(union)},
				{"by-id", convByID(union)},
				{"duplicated", convShuffled(s.rng, append(slices.Clone(union), union[:len(union)/2]...))},
			}
			var fresh []*convReplica
			for _, o := range orders {
				rep := s.open(o.name, nil)
				s.receive(rep, o.encs)
				fresh = append(fresh, rep)
			}
			requireSameState(t, seed, fresh)
		})
	}
}

// TestConvergeBatchedOrders delivers a converged history to fresh
// replicas. One that receives it in a single batch, in any order, must end
// with exactly the original replicas' commits and heads: the history is
// closed, nothing is left to merge. Ones that receive it in random batches
// may merge leaves the others never merged together. Scalar fields come out
// the same (last writer is judged per field; see late_joiner.txt), but set
// and map element merges (add beats remove, put beats delete) are not
// associative across different merge groupings, so such a replica may hold
// other set or map elements until it syncs: that is logged, not failed.
// All must converge once they exchange their commits with everyone.
func TestConvergeBatchedOrders(t *testing.T) {
	for _, seed := range dbtest.Seeds(10, 300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			dbtest.LogSeed(t, seed)
			s := newConvSim(t, seed)
			s.run(30 + s.rng.IntN(40))
			s.settle()
			union := convUnion(s.reps)
			whole := s.open("whole", nil)
			s.receive(whole, convShuffled(s.rng, union))
			requireSameState(t, seed, append(slices.Clone(s.reps), whole))

			drifted := 0
			for i := range 2 {
				rep := s.open(fmt.Sprintf("batched%d", i), nil)
				batch := convShuffled(s.rng, union)
				for len(batch) > 0 {
					n := 1 + s.rng.IntN(len(batch))
					s.receive(rep, batch[:n])
					batch = batch[n:]
				}
				for _, k := range s.keys {
					want, _, _ := whole.r.Get(k)
					if got, _, _ := rep.r.Get(k); !item.ItemsEqual(got, want) {
						drifted++
						t.Logf("%s: item %s is %v on %s, %v on whole", "drift", k, got, rep.name, want)
					}
				}
				s.reps = append(s.reps, rep)
			}
			t.Logf("%d item values differ on batched replicas before they sync", drifted)
			s.reps = append(s.reps, whole)
			s.settle()
			s.requireConverged()
		})
	}
}

// convUnion returns every commit any replica holds, once each, parents
// before children where a replica knows both.
func convUnion(reps []*convReplica) [][]byte {
	seen := map[commit.ID]bool{}
	var out [][]byte
	for _, rep := range reps {
		for _, c := range allCommits(rep.r) {
			if !seen[c.ID()] {
				seen[c.ID()] = true
				out = append(out, c.Encode())
			}
		}
	}
	return out
}

func convShuffled(rng *rand.Rand, encs [][]byte) [][]byte {
	out := slices.Clone(encs)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func convReversed(encs [][]byte) [][]byte {
	out := slices.Clone(encs)
	slices.Reverse(out)
	return out
}

func convByID(encs [][]byte) [][]byte {
	out := slices.Clone(encs)
	slices.SortFunc(out, func(a, b []byte) int {
		ca, _ := commit.Decode(a)
		cb, _ := commit.Decode(b)
		return commit.CompareIDs(ca.ID(), cb.ID())
	})
	return out
}

// forgeryFixture is a small signed history of item x: A1 (a full snapshot
// by a), then concurrently A2 (by a) and B2 (by b), both deltas on A1, and
// F, a full snapshot by b on A1 that is concurrent with A2.
type forgeryFixture struct {
	ka, kb        ed25519.PrivateKey
	a1, a2, b2, f *commit.Commit
	merge         commit.ID // the honest merge of A2 and B2
}

func newForgeryFixture(t *testing.T) *forgeryFixture {
	s := &convSim{t: t, rng: rand.New(rand.NewPCG(1, 2))}
	fx := &forgeryFixture{ka: convKey(100), kb: convKey(101)}
	a, b := s.open("a", fx.ka), s.open("b", fx.kb)
	write := func(rep *convReplica, now int64, field string, v item.Value) *commit.Commit {
		rep.now = now
		cs, err := rep.r.Write(repo.Update{Key: "x", Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With(field, v), cur.Schema, nil
		}})
		if err != nil || len(cs) != 1 {
			t.Fatal(cs, err)
		}
		return cs[0]
	}
	fx.a1 = write(a, 1, "body", item.String(strings.Repeat("long enough for deltas ", 10))) // deltas pay
	s.receive(b, [][]byte{fx.a1.Encode()})
	fx.a2 = write(a, 2, "title", item.String("from a"))
	fx.b2 = write(b, 2, "n", item.Int(2))
	if fx.a2.IsFull() || fx.b2.IsFull() {
		t.Fatal("A2 and B2 should be deltas")
	}
	s.receive(a, [][]byte{fx.b2.Encode()})
	fx.merge, _ = a.r.Head("x")
	var err error
	fx.f, err = commit.New(commit.Fields{Key: "x", Parents: []commit.ID{fx.a1.ID()}, Time: 3,
		Session: convSession(fx.kb), Full: true, Value: item.New(map[string]item.Value{"title": item.String("f")})}, fx.kb)
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

func convSession(k ed25519.PrivateKey) commit.SessionID {
	var s commit.SessionID
	copy(s[:], k.Public().(ed25519.PublicKey))
	return s
}

// TestReceiveRejectsForgeries sends commits that must be refused, each to
// a fresh replica that holds the listed history, and requires a rejection
// naming the commit with a reason; the forged commit must not be stored.
func TestReceiveRejectsForgeries(t *testing.T) {
	fx := newForgeryFixture(t)
	mustNew := func(f commit.Fields, key ed25519.PrivateKey) *commit.Commit {
		c, err := commit.New(f, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	forgedMerge, err := commit.NewMerge("x", []*commit.Commit{fx.a2, fx.b2}, commit.Fields{Full: true,
		Value: item.New(map[string]item.Value{"title": item.String("forged"), "n": item.Int(2)})})
	if err != nil {
		t.Fatal(err)
	}
	edit := item.Delta{Edits: []item.Edit{{Field: "n", Op: item.OpSet, Value: item.Int(9)}}}
	cases := []struct {
		name    string
		history []*commit.Commit
		forged  []byte
		id      commit.ID // the id the rejection names
		reason  string
	}{{
		name:    "merge whose contents differ from the recomputed merge",
		history: []*commit.Commit{fx.a1, fx.a2, fx.b2},
		forged:  forgedMerge.Encode(), id: forgedMerge.ID(),
		reason: "merge differs from its recomputation",
	}, {
		name:    "signature by another key",
		history: []*commit.Commit{fx.a1},
		forged:  append(slices.Clone(fx.a2.Body()), ed25519.Sign(fx.kb, convIDBytes(fx.a2.ID()))...), id: fx.a2.ID(),
		reason: "does not verify against session",
	}, {
		name:    "unsigned commit where signatures are required",
		history: []*commit.Commit{fx.a1},
		forged:  slices.Clone(fx.a2.Body()), id: fx.a2.ID(),
		reason: "is not signed",
	}, func() (c struct {
		name    string
		history []*commit.Commit
		forged  []byte
		id      commit.ID
		reason  string
	}) {
		d := mustNew(commit.Fields{Key: "x", Parents: []commit.ID{fx.a2.ID()}, Time: 4, Session: convSession(fx.ka),
			Base: fx.f.ID(), Delta: edit}, fx.ka)
		c.name, c.history, c.forged, c.id = "delta whose base is not an ancestor", []*commit.Commit{fx.a1, fx.a2, fx.f}, d.Encode(), d.ID()
		c.reason = "is not an ancestor"
		return c
	}(), func() (c struct {
		name    string
		history []*commit.Commit
		forged  []byte
		id      commit.ID
		reason  string
	}) {
		d := mustNew(commit.Fields{Key: "x", Parents: []commit.ID{fx.a2.ID()}, Time: 4, Session: convSession(fx.ka),
			Base: fx.a2.ID(), Delta: edit}, fx.ka)
		c.name, c.history, c.forged, c.id = "delta whose base is a delta", []*commit.Commit{fx.a1, fx.a2}, d.Encode(), d.ID()
		c.reason = "is not a full snapshot"
		return c
	}(), func() (c struct {
		name    string
		history []*commit.Commit
		forged  []byte
		id      commit.ID
		reason  string
	}) {
		d := mustNew(commit.Fields{Key: "x", Parents: []commit.ID{fx.a2.ID()}, Time: 1, Session: convSession(fx.ka),
			Base: fx.a1.ID(), Delta: edit}, fx.ka)
		c.name, c.history, c.forged, c.id = "timestamp before its parent's", []*commit.Commit{fx.a1, fx.a2}, d.Encode(), d.ID()
		c.reason = "is before parent"
		return c
	}(), func() (c struct {
		name    string
		history []*commit.Commit
		forged  []byte
		id      commit.ID
		reason  string
	}) {
		d := mustNew(commit.Fields{Key: "y", Parents: []commit.ID{fx.a1.ID()}, Time: 4, Session: convSession(fx.ka),
			Full: true, Value: item.New(nil)}, fx.ka)
		c.name, c.history, c.forged, c.id = "parent from another item", []*commit.Commit{fx.a1}, d.Encode(), d.ID()
		c.reason = "belongs to item x"
		return c
	}()}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &convSim{t: t, rng: rand.New(rand.NewPCG(1, 2))}
			v := s.open("victim", convKey(102))
			for _, c := range tc.history {
				s.receive(v, [][]byte{c.Encode()})
			}
			before := commitIDs(v.r)
			stored, rej, err := v.r.Receive([][]byte{tc.forged})
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != 0 || len(rej) != 1 {
				t.Fatalf("stored %d, rejected %v; want one rejection", len(stored), rej)
			}
			if rej[0].ID != tc.id || !strings.Contains(rej[0].Reason, tc.reason) {
				t.Errorf("rejection %v; want commit %s, reason containing %q", rej[0], tc.id.Short(), tc.reason)
			}
			if !slices.Equal(before, commitIDs(v.r)) || v.r.Has(tc.id) {
				t.Error("the forged commit was stored")
			}
			for _, p := range v.r.Check() {
				t.Errorf("Check: %s", p)
			}
		})
	}
}

func convIDBytes(id commit.ID) []byte { return id[:] }

// TestReceiveForgeryBeforeItsParents sends a forged commit before the
// history it builds on: it is stored as pending, but once its parents
// arrive it must be found invalid and never become a leaf or the head.
func TestReceiveForgeryBeforeItsParents(t *testing.T) {
	fx := newForgeryFixture(t)
	forgedMerge, err := commit.NewMerge("x", []*commit.Commit{fx.a2, fx.b2}, commit.Fields{Full: true,
		Value: item.New(map[string]item.Value{"title": item.String("forged"), "n": item.Int(2)})})
	if err != nil {
		t.Fatal(err)
	}
	badBase, err := commit.New(commit.Fields{Key: "x", Parents: []commit.ID{fx.a2.ID()}, Time: 4, Session: convSession(fx.ka),
		Base: fx.f.ID(), Delta: item.Delta{Deleted: item.FlagSet}}, fx.ka)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		forged  *commit.Commit
		history []*commit.Commit
		head    commit.ID
	}{
		{"merge whose contents differ from the recomputed merge", forgedMerge, []*commit.Commit{fx.a1, fx.a2, fx.b2}, fx.merge},
		{"delta whose base is not an ancestor", badBase, []*commit.Commit{fx.a1, fx.a2, fx.f}, commit.ID{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &convSim{t: t, rng: rand.New(rand.NewPCG(1, 2))}
			v := s.open("victim", convKey(102))
			s.receive(v, [][]byte{tc.forged.Encode()})
			for _, c := range tc.history {
				s.receive(v, [][]byte{c.Encode()})
			}
			if slices.Contains(v.r.Leaves("x"), tc.forged.ID()) {
				t.Fatalf("the forged commit is a leaf")
			}
			head, _ := v.r.Head("x")
			if head == tc.forged.ID() || (!tc.head.IsZero() && head != tc.head) {
				t.Errorf("head is %s; want the honest %s", head.Short(), tc.head.Short())
			}
			for _, info := range v.r.History("x") {
				if info.Commit.ID() == tc.forged.ID() && info.Bad == "" {
					t.Errorf("the forged commit is not marked invalid (pending %v)", info.Pending)
				}
			}
			// Never offered to a peer; Check (when the test ends) does not
			// count it against the repository.
			all, _ := v.r.CommitsSince(0)
			if _, ok := v.r.Commit(tc.forged.ID()); ok || slices.Contains(v.r.IDs(), tc.forged.ID()) ||
				slices.ContainsFunc(all, func(c *commit.Commit) bool { return c.ID() == tc.forged.ID() }) {
				t.Errorf("the forged commit is offered to peers")
			}
		})
	}
}

// TestMergeManyLeaves merges many concurrent leaves at once (more than one
// merge commit can join): a field removed by one leaf and left alone by all
// the others must stay removed, which only holds if the merge finds the
// common ancestor.
func TestMergeManyLeaves(t *testing.T) {
	for _, n := range []int{2, 63, 64, 65, 130} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := &convSim{t: t, rng: rand.New(rand.NewPCG(1, 2))}
			base := s.open("base", convKey(0))
			base.now = 1
			cs, err := base.r.Write(repo.Update{Key: "x", Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
				return item.New(map[string]item.Value{"gone": item.Int(1), "kept": item.Int(1)}), commit.Schema{}, nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			sink := s.open("sink", nil)
			batch := [][]byte{cs[0].Encode()}
			for i := range n {
				w := s.open(fmt.Sprint("w", i), convKey(i+1))
				s.receive(w, [][]byte{cs[0].Encode()})
				w.now = int64(2 + i)
				out, err := w.r.Write(repo.Update{Key: "x", Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
					if i == 0 {
						return cur.Value.Without("gone"), cur.Schema, nil
					}
					return cur.Value.With(fmt.Sprint("f", i), item.Int(int64(i))), cur.Schema, nil
				}})
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, out[0].Encode())
			}
			s.receive(sink, batch)
			v, _, _ := sink.r.Get("x")
			if _, ok := v.Get("gone"); ok || v.Len() != n {
				t.Errorf("merge of %d leaves: %d fields, gone present %v; want gone removed and %d fields", n, v.Len(), ok, n)
			}
			if l := sink.r.Leaves("x"); len(l) != 1 {
				t.Errorf("%d leaves after the merge", len(l))
			}
			for _, p := range sink.r.Check() {
				t.Errorf("Check: %s", p)
			}
		})
	}
}
