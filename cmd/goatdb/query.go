package main

import (
	"flag"
	"fmt"
	"slices"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/query/filter"
)

var queryCommand = &command{
	name:    "query",
	args:    "REPO",
	summary: "print the items that match an expression, in order, as JSON lines",
	about: `Query prints the live items of the repository that match --where, in order,
one JSON object per line: {"path": ..., "fields": {...}}, fields formatted
as by get. A repository that does not exist exits 1.

--where takes an expression (expr-lang.org syntax) in which the item's
fields are variables; a field the item lacks is nil, sets are arrays, dates
compare with date("2025-01-01"). For example:

  count > 50
  30 < count && count < 70 && "tag50" in tags
  30 < count < 70
  title startsWith "Write" || not done

Ints and numbers compare by value: n == 1 and n > 0.5 match the int 1 and
the number 1.0 alike. Ordering comparisons (< <= > >=) with a missing
field, or of a number with a string, are false. An item on which the
expression fails otherwise is left out, and a warning on standard error
says how many were. A bad expression exits 2 and names its column.

--sort orders by a field (items without it first; --desc reverses); the
default order is by path. --limit prints the first N (all of them when
fewer match).`,
	setup: func(fs *flag.FlagSet) runFunc {
		where := fs.String("where", "", "keep the items for which `EXPR` is true (default: all)")
		sortBy := fs.String("sort", "", "order by `FIELD` (default: by path)")
		desc := fs.Bool("desc", false, "reverse the order of --sort")
		limit := fs.Int("limit", 0, "print at most `N` items (0: all)")
		ns := fs.String("schema", "", "keep only the items of schema namespace `NS`")
		return func(e *env, args []string) error {
			return queryItems(e, args, queryFlags{*where, *sortBy, *desc, *limit, *ns})
		}
	},
}

type queryFlags struct {
	where, sortBy string
	desc          bool
	limit         int
	schema        string
}

func queryItems(e *env, args []string, fl queryFlags) error {
	if len(args) != 1 {
		return usagef("query", "query takes one REPO")
	}
	rp := args[0]
	if goatdb.CheckRepoPath(rp) != nil {
		return invalidPath(rp, "/type/repo")
	}
	if fl.limit < 0 {
		return usagef("query", "--limit %d is negative", fl.limit)
	}
	spec := goatdb.QuerySpec{Repo: rp, Schema: fl.schema, SortBy: fl.sortBy, Desc: fl.desc, Limit: fl.limit}
	var failed evalFailures
	if fl.where != "" {
		f, err := filter.Compile(fl.where)
		if err != nil {
			return final(fmt.Errorf("query: bad --where expression %q: %w", fl.where, err))
		}
		spec.Where = func(it goatdb.Item) bool {
			ok, err := f.Match(it.Data())
			if err != nil {
				failed.add(it.Path(), err)
			}
			return ok
		}
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		repos, err := db.Repos()
		if err != nil {
			return err
		}
		if !slices.Contains(repos, rp) {
			return failf("repository %s not found ('goatdb ls' lists the repositories)", rp)
		}
		items, err := db.QueryOnce(e.ctx, spec)
		if err != nil {
			return err
		}
		for _, it := range items {
			err := writeJSON(e.stdout, struct {
				Path   string         `json:"path"`
				Fields map[string]any `json:"fields"`
			}{it.Path(), itemJSON(it.Data())})
			if err != nil {
				return err
			}
		}
		failed.warn(e)
		return nil
	})
}

// evalFailures counts the items the expression failed on. Where runs on
// one goroutine at a time, and the count is read after the query ran.
type evalFailures struct {
	n     int
	first error
}

func (f *evalFailures) add(path string, err error) {
	if f.n++; f.first == nil {
		f.first = fmt.Errorf("%s: %w", path, err)
	}
}

func (f *evalFailures) warn(e *env) {
	if f.n == 0 {
		return
	}
	items := "items, which were"
	if f.n == 1 {
		items = "item, which was"
	}
	fmt.Fprintf(e.stderr, "goatdb: warning: --where failed on %d %s left out (first: %s)\n", f.n, items, oneLine(f.first.Error()))
}
