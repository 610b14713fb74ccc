package query_test

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// openRepo opens (creating) a trusted repository log at path (relative:
// in a new temporary directory), checked when the test ends unless the
// test closed it.
func openRepo(t testing.TB, path string) *repo.Repo {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return dbtest.OpenRepo(t, path, &repo.Options{Key: key, Trusted: true, Durability: repo.Async})
}

func newRepo(t testing.TB) *repo.Repo {
	t.Helper()
	return openRepo(t, "r.log")
}

// put returns an update setting key's fields (nil removes one), its
// schema namespace (ns, if not "") and undeleting it.
func put(key, ns string, fields map[string]item.Value) repo.Update {
	return repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		v := c.Value.WithDeleted(false)
		for name, f := range fields {
			if f.Type() == item.TypeInvalid {
				v = v.Without(name)
			} else {
				v = v.With(name, f)
			}
		}
		s := c.Schema
		if ns != "" {
			s = commit.Schema{NS: ns, Version: 1}
		}
		return v, s, nil
	}}
}

func del(key string) repo.Update {
	return repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.WithDeleted(true), c.Schema, nil
	}}
}

func write(t testing.TB, r *repo.Repo, ups ...repo.Update) {
	t.Helper()
	if _, err := r.Write(ups...); err != nil {
		t.Fatal(err)
	}
}

// oracle is an independent full scan: the results a query of spec must
// have, as "key item" lines.
type oracle struct {
	schema string
	where  func(query.Item) bool
	sortBy string
	desc   bool
	limit  int
}

func (o oracle) results(items []query.Item) []string {
	var out []query.Item
	for _, it := range items {
		if it.Value.Deleted() || o.schema != "" && it.Schema.NS != o.schema || o.where != nil && !o.where(it) {
			continue
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b query.Item) int {
		if o.sortBy != "" {
			av, _ := a.Value.Get(o.sortBy)
			bv, _ := b.Value.Get(o.sortBy)
			c := oracleCompare(av, bv)
			if o.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(a.Key, b.Key)
	})
	if o.limit > 0 && len(out) > o.limit {
		out = out[:o.limit]
	}
	return lines(out)
}

// oracleCompare: absent first; ints and numbers by exact value (as
// big.Float, which holds any int64 and float64); else item.Compare.
func oracleCompare(a, b item.Value) int {
	switch {
	case a.Type() == item.TypeInvalid || b.Type() == item.TypeInvalid:
		return cmp.Compare(a.Type(), b.Type()) // TypeInvalid (absent) is 0
	case isNum(a) && isNum(b):
		if c := bigNum(a).Cmp(bigNum(b)); c != 0 {
			return c
		}
	}
	return item.Compare(a, b)
}

func bigNum(v item.Value) *big.Float {
	if v.Type() == item.TypeInt {
		return new(big.Float).SetInt64(v.Int64())
	}
	return big.NewFloat(v.Float())
}

func isNum(v item.Value) bool { return v.Type() == item.TypeInt || v.Type() == item.TypeNumber }

// repoItems reads every item of r (deleted included).
func repoItems(r *repo.Repo) []query.Item {
	var out []query.Item
	for e := range r.All() {
		out = append(out, query.Item{Key: e.Key, Value: e.Value, Schema: e.Schema, Head: e.Head})
	}
	return out
}

func lines(items []query.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Key + " " + it.Value.String()
	}
	return out
}

func results(q *query.Query) []string {
	var out []query.Item
	for it := range q.Results() {
		out = append(out, it)
	}
	return lines(out)
}

// mirror applies a subscriber's events, checking they make sense.
type mirror struct {
	items map[string]query.Item
	errs  []string
}

func newMirror() *mirror { return &mirror{items: map[string]query.Item{}} }

func (m *mirror) apply(ev query.Event) {
	k := ev.Item.Key
	_, have := m.items[k]
	switch ev.Kind {
	case query.Added:
		if have {
			m.errs = append(m.errs, "added twice: "+k)
		}
		m.items[k] = ev.Item
	case query.Removed:
		if !have {
			m.errs = append(m.errs, "removed but absent: "+k)
		}
		delete(m.items, k)
	case query.Changed:
		if !have || m.items[k].Head != ev.Old.Head {
			m.errs = append(m.errs, "changed from a value not held: "+k)
		}
		m.items[k] = ev.Item
	case query.Failed:
		m.errs = append(m.errs, "failed: "+ev.Err.Error())
	}
}

// sorted returns the mirror's items as lines in key order.
func (m *mirror) sorted() []string {
	var out []query.Item
	for _, it := range m.items {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b query.Item) int { return strings.Compare(a.Key, b.Key) })
	return lines(out)
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func diffLines(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	return fmt.Sprintf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
}
