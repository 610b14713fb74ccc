package query_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

func count(n int) map[string]item.Value {
	return map[string]item.Value{"count": item.Number(float64(n))}
}

// fill writes items k000..k(n-1) with count i%100.
func fill(t testing.TB, r *repo.Repo, n int) {
	t.Helper()
	var ups []repo.Update
	for i := range n {
		ups = append(ups, put(key(i), "", count(i%100)))
		if len(ups) == 500 || i == n-1 {
			write(t, r, ups...)
			ups = nil
		}
	}
}

func key(i int) string { return fmt.Sprintf("k%03d", i) }

var over50 = func(it query.Item) bool { v, ok := it.Value.Get("count"); return ok && v.Float() > 50 }

type persisted struct {
	t     *testing.T
	dir   string
	log   string
	state string
	r     *repo.Repo
	spec  query.Spec
	o     oracle
}

func newPersisted(t *testing.T) *persisted {
	dir := t.TempDir()
	p := &persisted{t: t, dir: dir, log: filepath.Join(dir, "tasks.log"), state: filepath.Join(dir, "tasks.queries", "q.state")}
	p.r = openRepo(t, p.log)
	p.spec = query.Spec{Name: "q", Where: over50, SortBy: "count", Desc: true, Limit: 7, StateFile: p.state}
	p.o = oracle{where: over50, sortBy: "count", desc: true, limit: 7}
	return p
}

// open opens the query and checks whether it resumed.
func (p *persisted) open(resumed bool) *query.Query {
	p.t.Helper()
	spec := p.spec
	spec.Source = query.FromRepo(p.r, nil, nil)
	q, err := query.New(spec)
	if err != nil {
		p.t.Fatal(err)
	}
	if q.Resumed() != resumed {
		p.t.Fatalf("Resumed() = %v, want %v", q.Resumed(), resumed)
	}
	return q
}

// check updates q and compares it with a full scan.
func (p *persisted) check(q *query.Query) {
	p.t.Helper()
	if err := q.Update(p.t.Context()); err != nil {
		p.t.Fatal(err)
	}
	if d := diffLines(results(q), p.o.results(repoItems(p.r))); d != "" {
		p.t.Fatalf("results differ from a full scan:\n%s", d)
	}
}

func (p *persisted) reopenRepo() {
	p.t.Helper()
	p.r.Close()
	p.r = openRepo(p.t, p.log)
}

func TestResumeAfterMoreWrites(t *testing.T) {
	p := newPersisted(t)
	fill(t, p.r, 300)
	q := p.open(false)
	p.check(q)
	if err := q.Close(); err != nil { // saves
		t.Fatal(err)
	}
	// More writes after the state was saved, then a restart.
	write(t, p.r, put(key(5), "", count(99)), put(key(77), "", count(1)), del(key(99)), put("new", "", count(98)))
	p.reopenRepo()
	q = p.open(true)
	defer q.Close()
	if q.Count() != 7 || q.Total() == 0 {
		t.Fatalf("resumed with %d/%d results", q.Count(), q.Total())
	}
	p.check(q)
	if done, total := q.Progress(); total != 4 || done != 4 {
		t.Errorf("resume evaluated %d of %d items, want the 4 changed since the state", done, total)
	}
}

func TestResumeRejectsStaleState(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(p *persisted)
	}{
		{"damaged", func(p *persisted) {
			data, err := os.ReadFile(p.state)
			if err != nil {
				p.t.Fatal(err)
			}
			data[len(data)/2] ^= 0x40
			os.WriteFile(p.state, data, 0o644)
		}},
		{"truncated", func(p *persisted) {
			data, _ := os.ReadFile(p.state)
			os.WriteFile(p.state, data[:len(data)-9], 0o644)
		}},
		{"not a state file", func(p *persisted) { os.WriteFile(p.state, []byte("hello"), 0o644) }},
		{"definition changed", func(p *persisted) { p.spec.Version = "v2" }},
		{"sort changed", func(p *persisted) { p.spec.Desc = false; p.o.desc = false }},
		{"log replaced", func(p *persisted) {
			// Another log with the same items at the same path: a restore
			// from elsewhere. Positions are comparable, bytes are not.
			p.r.Close()
			os.Remove(p.log)
			p.r = openRepo(p.t, p.log)
			fill(p.t, p.r, 320)
			write(p.t, p.r, put(key(3), "", count(80)))
		}},
		{"log cut", func(p *persisted) {
			// A log shorter than the state's position: restored from an
			// older backup.
			p.r.Close()
			os.Remove(p.log)
			p.r = openRepo(p.t, p.log)
			fill(p.t, p.r, 40)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPersisted(t)
			fill(t, p.r, 300)
			q := p.open(false)
			p.check(q)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p.state); err != nil {
				t.Fatal(err)
			}
			tt.spoil(p)
			q = p.open(false) // rescans
			defer q.Close()
			p.check(q)
			if _, total := q.Progress(); total != len(p.r.Keys(true)) {
				t.Errorf("evaluated %d items, want a full scan of %d", total, len(p.r.Keys(true)))
			}
		})
	}
}

// TestResumeChained resumes a chain whose upstream has a limit: items
// cross the upstream's limit without commits of their own.
func TestResumeChained(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "r.log")
	r := openRepo(t, log)
	fill(t, r, 200)
	open := func(r *repo.Repo, resumed bool) (up, down *query.Query) {
		t.Helper()
		var err error
		up, err = query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Name: "up", SortBy: "count", Desc: true, Limit: 20,
			StateFile: filepath.Join(dir, "up.state")})
		if err != nil {
			t.Fatal(err)
		}
		even := func(it query.Item) bool { v, _ := it.Value.Get("count"); return int(v.Float())%2 == 0 }
		down, err = query.New(query.Spec{Up: up, Name: "down", Where: even, StateFile: filepath.Join(dir, "down.state")})
		if err != nil {
			t.Fatal(err)
		}
		if up.Resumed() != resumed || down.Resumed() != resumed {
			t.Fatalf("resumed %v %v, want %v", up.Resumed(), down.Resumed(), resumed)
		}
		if err := down.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		o := oracle{sortBy: "count", desc: true, limit: 20}
		keep := map[string]bool{}
		for _, l := range o.results(repoItems(r)) {
			k, _, _ := strings.Cut(l, " ")
			keep[k] = true
		}
		var items []query.Item
		for _, it := range repoItems(r) {
			if keep[it.Key] {
				items = append(items, it)
			}
		}
		if d := diffLines(results(down), oracle{where: even}.results(items)); d != "" {
			t.Fatalf("chained results differ from a full scan:\n%s", d)
		}
		return up, down
	}
	up, down := open(r, false)
	down.Close()
	up.Close()
	// Delete the top items: others cross the upstream's limit.
	var ups []repo.Update
	for _, l := range (oracle{sortBy: "count", desc: true, limit: 6}).results(repoItems(r)) {
		k, _, _ := strings.Cut(l, " ")
		ups = append(ups, del(k))
	}
	write(t, r, ups...)
	r.Close()
	r = openRepo(t, log)
	up, down = open(r, true)
	down.Close()
	up.Close()
}

// TestResumeLess resumes a query ordered by a comparator: the saved order
// is trusted, and new items are placed by the comparator.
func TestResumeLess(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "r.log")
	r := openRepo(t, log)
	fill(t, r, 150)
	byCount := func(a, b query.Item) bool {
		x, _ := a.Value.Get("count")
		y, _ := b.Value.Get("count")
		return x.Float() < y.Float()
	}
	spec := query.Spec{Name: "less", Less: byCount, Limit: 40, StateFile: filepath.Join(dir, "less.state")}
	o := oracle{sortBy: "count", limit: 40}
	run := func(resumed bool) {
		t.Helper()
		s := spec
		s.Source = query.FromRepo(r, nil, nil)
		q, err := query.New(s)
		if err != nil {
			t.Fatal(err)
		}
		if q.Resumed() != resumed {
			t.Fatalf("resumed %v", q.Resumed())
		}
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := diffLines(results(q), o.results(repoItems(r))); d != "" {
			t.Fatalf("differs from a full scan:\n%s", d)
		}
		q.Close()
	}
	run(false)
	write(t, r, put("a-new", "", count(0)), put(key(7), "", count(0)), put(key(100), "", count(-1)))
	r.Close()
	r = openRepo(t, log)
	run(true)
}

// TestSaveWithoutStateFile: only queries with a state file save.
func TestSaveWithoutStateFile(t *testing.T) {
	r := newRepo(t)
	q, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Save(); err != query.ErrNotPersistent {
		t.Errorf("Save = %v, want ErrNotPersistent", err)
	}
}
