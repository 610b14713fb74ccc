package query_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/query/filter"
	"github.com/goatdb/goatdb/repo"
)

// TestGolden runs the cases in testdata/*.txt. A case file is a sequence
// of blocks: a command line, its input lines, "----", and the expected
// output up to a blank line; lines starting with # before a block are
// comments. Commands:
//
//	put                   lines "KEY [NS] {JSON}": one atomic write; JSON
//	                      null removes a field; "@int N" and "@date RFC3339"
//	                      strings make ints and dates
//	delete                lines "KEY": one atomic write
//	query NAME [on UP]    option lines "where: EXPR" (query/filter),
//	                      "sort: FIELD", "desc", "limit: N", "schema: NS";
//	                      opens the query (chained to UP), subscribes and
//	                      prints its results
//	show NAME...          waits for each query, prints its events since
//	                      the last show ("+ key", "- key", "~ key"), its
//	                      results and "(count/total)"
//
// Every write waits for every query to deliver its events. Every show
// also checks each query against an independent full scan and
// its subscriber's mirror against its results. go test -update rewrites
// the expected outputs.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatal("no golden files", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runGolden(t, file)
		})
	}
}

type goldenBlock struct {
	pre, cmd, want []string
}

func parseGolden(t *testing.T, file string) []goldenBlock {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []goldenBlock
	var b goldenBlock
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := 0; i < len(ls); i++ {
		l := ls[i]
		if len(b.cmd) == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			b.pre = append(b.pre, l)
			continue
		}
		if l != "----" {
			b.cmd = append(b.cmd, l)
			continue
		}
		for i++; i < len(ls) && ls[i] != ""; i++ {
			b.want = append(b.want, ls[i])
		}
		blocks = append(blocks, b)
		b = goldenBlock{}
	}
	if len(b.cmd) > 0 {
		t.Fatalf("%s: block %q has no ----", file, b.cmd[0])
	}
	return blocks
}

type goldenQuery struct {
	name   string
	q      *query.Query
	oracle oracle
	up     *goldenQuery
	mu     sync.Mutex
	events []string
	mirror *mirror
}

func runGolden(t *testing.T, file string) {
	blocks := parseGolden(t, file)
	r := newRepo(t)
	queries := map[string]*goldenQuery{}
	t.Cleanup(func() {
		for _, g := range queries {
			g.q.Close()
		}
	})
	var out bytes.Buffer
	for _, b := range blocks {
		got := runGoldenBlock(t, r, queries, b.cmd)
		if !dbtest.Update() && !slices.Equal(got, b.want) {
			t.Errorf("%s: %s:\n%s", file, b.cmd[0], diffLines(got, b.want))
		}
		for _, l := range b.pre {
			out.WriteString(l + "\n")
		}
		for _, l := range b.cmd {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		out.WriteString("\n")
	}
	if dbtest.Update() {
		if err := os.WriteFile(file, append(bytes.TrimRight(out.Bytes(), "\n"), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runGoldenBlock(t *testing.T, r *repo.Repo, queries map[string]*goldenQuery, cmd []string) []string {
	args := strings.Fields(cmd[0])
	switch args[0] {
	case "put", "delete":
		var ups []repo.Update
		for _, l := range cmd[1:] {
			if args[0] == "delete" {
				ups = append(ups, del(l))
				continue
			}
			ups = append(ups, parsePut(t, l))
		}
		write(t, r, ups...)
		for _, g := range queries { // one delivery per write: deterministic events
			if err := g.q.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	case "query":
		g := openGolden(t, r, queries, args, cmd[1:])
		queries[args[1]] = g
		return showGolden(t, r, g)
	case "show":
		var out []string
		for _, name := range args[1:] {
			g := queries[name]
			if g == nil {
				t.Fatalf("no query %s", name)
			}
			if len(args) > 2 {
				out = append(out, name+":")
			}
			out = append(out, showGolden(t, r, g)...)
		}
		return out
	}
	t.Fatalf("unknown command %q", cmd[0])
	return nil
}

func parsePut(t *testing.T, l string) repo.Update {
	key, rest, _ := strings.Cut(l, " ")
	ns := ""
	if !strings.HasPrefix(rest, "{") {
		ns, rest, _ = strings.Cut(rest, " ")
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(rest))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("put %q: %v", l, err)
	}
	fields := map[string]item.Value{}
	for name, x := range m {
		fields[name] = goldenValue(t, x)
	}
	return put(key, ns, fields)
}

func goldenValue(t *testing.T, x any) item.Value {
	switch x := x.(type) {
	case nil:
		return item.Value{}
	case json.Number:
		f, _ := x.Float64()
		return item.Number(f)
	case string:
		switch {
		case strings.HasPrefix(x, "@int "):
			n, _ := strconv.ParseInt(x[5:], 10, 64)
			return item.Int(n)
		case strings.HasPrefix(x, "@date "):
			d, err := time.Parse(time.RFC3339, x[6:])
			if err != nil {
				t.Fatal(err)
			}
			return item.Date(d)
		}
	case []any:
		var elems []item.Value
		for _, e := range x {
			elems = append(elems, goldenValue(t, e))
		}
		v, err := item.Set(elems...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v, err := item.FromAny(x)
	if err != nil {
		t.Fatalf("value %v: %v", x, err)
	}
	return v
}

func openGolden(t *testing.T, r *repo.Repo, queries map[string]*goldenQuery, args, opts []string) *goldenQuery {
	g := &goldenQuery{name: args[1], mirror: newMirror()}
	spec := query.Spec{Name: args[1], Source: query.FromRepo(r, nil, nil)}
	if len(args) == 4 && args[2] == "on" {
		g.up = queries[args[3]]
		spec.Source, spec.Up = nil, g.up.q
	}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "where":
			f, err := filter.Compile(v)
			if err != nil {
				t.Fatalf("where %q: %v", v, err)
			}
			spec.Where = func(it query.Item) bool { ok, _ := f.Match(it.Value); return ok }
		case "sort":
			spec.SortBy = v
		case "desc":
			spec.Desc = true
		case "limit":
			spec.Limit, _ = strconv.Atoi(v)
		case "schema":
			spec.Schema = v
		default:
			t.Fatalf("unknown query option %q", o)
		}
	}
	g.oracle = oracle{schema: spec.Schema, where: spec.Where, sortBy: spec.SortBy, desc: spec.Desc, limit: spec.Limit}
	q, err := query.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	g.q = q
	q.Subscribe(func(ev query.Event) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.mirror.apply(ev)
		sign := map[query.Kind]string{query.Added: "+", query.Removed: "-", query.Changed: "~", query.Failed: "!"}[ev.Kind]
		g.events = append(g.events, sign+" "+ev.Item.Key)
	})
	return g
}

// expected is the oracle's answer, through the upstream's for a chain.
func (g *goldenQuery) expected(r *repo.Repo) []string {
	items := repoItems(r)
	if g.up != nil {
		keep := map[string]bool{}
		for _, l := range g.up.expected(r) {
			k, _, _ := strings.Cut(l, " ")
			keep[k] = true
		}
		items = slices.DeleteFunc(items, func(it query.Item) bool { return !keep[it.Key] })
	}
	return g.oracle.results(items)
}

func showGolden(t *testing.T, r *repo.Repo, g *goldenQuery) []string {
	t.Helper()
	if err := g.q.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := results(g.q)
	if d := diffLines(got, g.expected(r)); d != "" {
		t.Errorf("query %s differs from a full scan:\n%s", g.name, d)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := diffLines(g.mirror.sorted(), sortedCopy(got)); d != "" || len(g.mirror.errs) > 0 {
		t.Errorf("subscriber's view differs from the results: %v\n%s", g.mirror.errs, d)
	}
	out := append(g.events, got...)
	out = append(out, fmt.Sprintf("(%d/%d)", g.q.Count(), g.q.Total()))
	g.events = nil
	return out
}
