package query_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// exchange sends every commit of from to to, which merges what it must.
func exchange(t testing.TB, from, to *repo.Repo) {
	t.Helper()
	var encs [][]byte
	for _, k := range from.Keys(true) {
		for _, h := range from.History(k) {
			encs = append(encs, h.Commit.Encode())
		}
	}
	if _, rej, err := to.Receive(encs); err != nil || len(rej) > 0 {
		t.Fatal(err, rej)
	}
}

// randomUpdate writes or deletes a random one of 24 keys.
func randomUpdate(rng *rand.Rand) repo.Update {
	key := fmt.Sprintf("k%02d", rng.IntN(24))
	if rng.IntN(6) == 0 {
		return del(key)
	}
	fields := map[string]item.Value{}
	switch rng.IntN(5) {
	case 0:
		fields["n"] = item.Value{} // remove
	case 1:
		fields["n"] = item.Int(int64(rng.IntN(100)))
	default:
		fields["n"] = item.Number(float64(rng.IntN(100)))
	}
	if rng.IntN(2) == 0 {
		fields["tags"] = item.StringSet(fmt.Sprintf("tag%d", rng.IntN(3)))
	}
	ns := ""
	if rng.IntN(4) == 0 {
		ns = []string{"task", "note"}[rng.IntN(2)]
	}
	return put(key, ns, fields)
}

type liveQuery struct {
	name       string
	q          *query.Query
	spec       query.Spec
	oracle     oracle
	up         *liveQuery
	mirror     *mirror
	subscribed bool
}

func (l *liveQuery) expected(r *repo.Repo) []string {
	items := repoItems(r)
	if l.up != nil {
		keep := map[string]bool{}
		for _, line := range l.up.expected(r) {
			k, _, _ := strings.Cut(line, " ")
			keep[k] = true
		}
		items = slices.DeleteFunc(items, func(it query.Item) bool { return !keep[it.Key] })
	}
	return l.oracle.results(items)
}

func randomSpec(rng *rand.Rand) (query.Spec, oracle) {
	threshold := float64(rng.IntN(80))
	tag := fmt.Sprintf("tag%d", rng.IntN(3))
	var o oracle
	switch rng.IntN(3) {
	case 0:
		o.where = func(it query.Item) bool { v, ok := it.Value.Get("n"); return ok && v.Float() > threshold }
	case 1:
		o.where = func(it query.Item) bool { v, ok := it.Value.Get("tags"); return ok && v.Has(item.String(tag)) }
	}
	if rng.IntN(3) > 0 {
		o.sortBy = "n"
	}
	o.desc = rng.IntN(2) == 0
	if rng.IntN(2) == 0 {
		o.limit = 1 + rng.IntN(6)
	}
	if rng.IntN(5) == 0 {
		o.schema = "task"
	}
	return query.Spec{Schema: o.schema, Where: o.where, SortBy: o.sortBy, Desc: o.desc, Limit: o.limit}, o
}

// TestRandom runs random writes, deletes and merges (conflicting commits
// written to two repositories and exchanged) while live queries, chained
// ones among them, are subscribed, and checks after every step that each
// query's results equal a full scan and its subscriber's view equals its
// results.
func TestRandom(t *testing.T) {
	seed := dbtest.ClockSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	steps := 400
	if testing.Short() {
		steps = 100
	}
	dir := t.TempDir()
	a := openRepo(t, filepath.Join(dir, "a.log"))
	b := openRepo(t, filepath.Join(dir, "b.log"))

	var live []*liveQuery
	for i := range 5 {
		spec, o := randomSpec(rng)
		l := &liveQuery{name: fmt.Sprintf("q%d", i), oracle: o, mirror: newMirror()}
		if i >= 3 { // chained to an earlier one
			l.up = live[rng.IntN(i)]
			spec.Up = l.up.q
		} else {
			spec.Source = query.FromRepo(a, nil, nil)
		}
		spec.Name, spec.Chunk = l.name, 1+rng.IntN(8)
		q, err := query.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		l.q, l.spec = q, spec
		defer q.Close()
		if l.subscribed = i < 3 || rng.IntN(2) == 0; l.subscribed {
			q.Subscribe(l.mirror.apply) // runs on the watcher only; read after Wait
		}
		live = append(live, l)
	}
	for step := range steps {
		op := rng.IntN(10)
		switch {
		case op < 4:
			write(t, a, randomUpdate(rng))
		case op < 6:
			write(t, b, randomUpdate(rng))
		case op < 7:
			ups := []repo.Update{randomUpdate(rng), randomUpdate(rng), randomUpdate(rng)}
			slices.SortFunc(ups, func(x, y repo.Update) int { return strings.Compare(x.Key, y.Key) })
			ups = slices.CompactFunc(ups, func(x, y repo.Update) bool { return x.Key == y.Key })
			write(t, a, ups...)
		case op < 9:
			exchange(t, b, a) // conflicting histories: a merges
		default:
			exchange(t, a, b)
		}
		if rng.IntN(4) == 0 { // an update racing the watchers
			if err := live[rng.IntN(len(live))].q.Update(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range live {
			// Queries without subscribers update only when checked, so
			// they fall behind their upstream by several passes.
			if l.subscribed || rng.IntN(3) == 0 {
				checkLive(t, a, l, step)
			}
		}
	}
	// A fresh full scan agrees with every live query at the end.
	for _, l := range live {
		if l.up != nil {
			continue
		}
		spec := l.spec
		spec.Name = "fresh"
		fresh, err := query.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := diffLines(results(l.q), results(fresh)); d != "" {
			t.Errorf("%s differs from a fresh query:\n%s", l.name, d)
		}
		fresh.Close()
	}
}

func checkLive(t *testing.T, r *repo.Repo, l *liveQuery, step int) {
	t.Helper()
	if err := l.q.Wait(t.Context()); err != nil {
		t.Fatalf("step %d: %s: %v", step, l.name, err)
	}
	got := results(l.q)
	if d := diffLines(got, l.expected(r)); d != "" {
		up := ""
		if l.up != nil {
			up = fmt.Sprintf("; upstream %s (%+v, subscribed %v) has\n  %s", l.up.name, l.up.oracle, l.up.subscribed, strings.Join(results(l.up.q), "\n  "))
		}
		t.Fatalf("step %d: %s (%+v, subscribed %v) differs from a full scan%s:\n%s", step, l.name, l.oracle, l.subscribed, up, d)
	}
	if !l.subscribed {
		return
	}
	// Wait returned after the watcher delivered: the mirror is settled
	// until the next write.
	if d := diffLines(l.mirror.sorted(), sortedCopy(got)); d != "" || len(l.mirror.errs) > 0 {
		t.Fatalf("step %d: %s: subscriber's view differs: %v\n%s", step, l.name, l.mirror.errs, d)
	}
}
