package repo_test

// Golden merge cases. Each file under testdata/merge/ is one situation,
// written as a short script that a reviewer can read without reading Go:
// replicas write, exchange commits, and the script states what every replica
// must hold afterwards. After the last line every replica must hold the same
// head (the same commit id) for every item, one leaf per item, nothing
// missing, and Check must find no problem.
//
// go test ./repo -run GoldenMerge -update rewrites the expect and bases lines
// from the actual results (the rest of a file is kept as it is).
//
// # Script syntax
//
// One command per line. Blank lines and comments (from a # that starts a
// word to the end of the line) are kept as they are.
//
//	replicas NAME... [trusted]
//	    Opens the replicas, each on its own in-memory filesystem, with a fixed
//	    Ed25519 key derived from its name and a clock the script sets. Commits
//	    are signed unless "trusted". Must come first.
//	NAME t=MS put KEY EDIT... [=> LABEL]
//	NAME t=MS delete KEY [EDIT...] [=> LABEL]
//	NAME t=MS undelete KEY [EDIT...] [=> LABEL]
//	NAME t=MS upgrade KEY NS/VERSION [=> LABEL]
//	    Sets the replica's clock to MS (Unix milliseconds) and writes one
//	    commit. delete and undelete set the item's deleted flag; upgrade
//	    converts the item to a newer schema (the test's schema registry knows
//	    one upgrade: task/1 -> task/2 renames field title to name).
//	    "=> LABEL" names the commit, for send and bases. An EDIT is one of:
//	      FIELD=VALUE        set a field
//	      remove FIELD       remove a field
//	      FIELD+=SCALAR      add an element to a set field
//	      FIELD-=SCALAR      remove an element from a set field
//	      FIELD["k"]=VALUE   put a key into a map field
//	      remove FIELD["k"]  delete a key from a map field
//	      schema NS/VERSION  write under this schema (default: the item's)
//	sync A -> B          B receives every commit A holds, in one batch
//	sync A B -> C        C receives every commit of A and of B, in one batch
//	sync A <-> B         both ways, until A and B hold the same commits
//	sync all             each replica in turn receives the commits of all the
//	                     others in one batch, until all hold the same commits
//	send A -> B LABEL... B receives only these commits of A, in this order,
//	                     in one batch
//	bases KEY A B = LABEL...
//	    The lowest common ancestors of A's head and B's head of KEY are these
//	    commits (unlabelled ones print as a short id). Two or more: a
//	    criss-cross history.
//	label NAME = head KEY A
//	    Names A's current head of KEY (a merge, say), for send and bases.
//	head KEY A = LABEL
//	head KEY A = merge LABEL...
//	    A's head of KEY is this commit, or a merge of these commits.
//	ids LABEL < LABEL
//	    The commit ids compare in this order (ties in timestamps go to the
//	    larger id).
//	expect KEY [on A...] [deleted] [schema NS/VERSION] [FIELD=VALUE...]
//	expect KEY [on A...] none
//	    Every replica (or each one named after "on") holds exactly this value
//	    of KEY (or no value).
//
// A VALUE is "text" (Go syntax), 1.5 (number), 7i (int), true, false,
// date(2024-01-02T03:04:05Z), a set {"a", 1}, or a map map{"k": 1}.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

func TestGoldenMerge(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "merge", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in testdata/merge: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runGoldenFile(t, f)
		})
	}
}

// runGoldenFile runs one script, checks its expectations (or rewrites them
// under -update) and checks that the replicas converged.
func runGoldenFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	w := &goldWorld{t: t, reps: map[string]*goldReplica{}, labels: map[string]commit.ID{}, names: map[commit.ID]string{}}
	changed := false
	for i, line := range lines {
		toks, comment, err := goldTokens(line)
		if err == nil && len(toks) > 0 {
			var got string
			got, err = w.exec(toks)
			if err == nil && got != "" {
				if comment != "" {
					got += " " + comment
				}
				if dbtest.Update() {
					changed = changed || got != line
					lines[i] = got
				} else if want, err := goldCanon(toks); err != nil {
					t.Errorf("%s:%d: %s\n\t%v", path, i+1, line, err)
				} else if want != goldMustCanon(t, got) {
					t.Errorf("%s:%d:\n\twant: %s\n\tgot:  %s", path, i+1, line, got)
				}
			}
		}
		if err != nil {
			t.Fatalf("%s:%d: %s\n\t%v", path, i+1, line, err)
		}
	}
	w.checkConverged()
	if changed {
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", path)
	}
}

func goldMustCanon(t *testing.T, line string) string {
	toks, _, err := goldTokens(line)
	if err != nil {
		t.Fatal(err)
	}
	c, err := goldCanon(toks)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldCanon returns an expect or bases line in canonical form, so that
// expectations compare by meaning: fields in any order, labels in any order,
// 1.0 the same as 1.
func goldCanon(toks []string) (string, error) {
	if toks[0] == "bases" {
		if len(toks) < 5 || toks[4] != "=" {
			return "", errors.New("bases KEY A B = LABEL...")
		}
		names := slices.Clone(toks[5:])
		slices.Sort(names)
		return strings.Join(append(toks[:5:5], names...), " "), nil
	}
	if toks[0] == "ids" {
		return strings.Join(toks, " "), nil
	}
	if toks[0] == "head" {
		if len(toks) > 5 && toks[4] == "merge" {
			names := slices.Clone(toks[5:])
			slices.Sort(names)
			return strings.Join(append(toks[:5:5], names...), " "), nil
		}
		return strings.Join(toks, " "), nil
	}
	key, on := toks[1], goldOn(toks)
	args := toks[2:]
	if len(on) > 0 {
		args = args[1+len(on):]
	}
	if len(args) == 1 && args[0] == "none" {
		return formatGoldExpect(key, on, item.Item{}, commit.Schema{}, false), nil
	}
	deleted := len(args) > 0 && args[0] == "deleted"
	if deleted {
		args = args[1:]
	}
	var s commit.Schema
	if len(args) > 1 && args[0] == "schema" {
		var err error
		if s, err = parseGoldSchema(args[1]); err != nil {
			return "", err
		}
		args = args[2:]
	}
	fields := map[string]item.Value{}
	for _, a := range args {
		name, rest := goldFieldName(a)
		if name == "" || !strings.HasPrefix(rest, "=") {
			return "", fmt.Errorf("expect: want FIELD=VALUE, not %q", a)
		}
		v, err := parseGoldValue(rest[1:])
		if err != nil {
			return "", err
		}
		fields[name] = v
	}
	return formatGoldExpect(key, on, item.New(fields).WithDeleted(deleted), s, true), nil
}

type goldWorld struct {
	t      *testing.T
	order  []string // replica names in the order given
	reps   map[string]*goldReplica
	labels map[string]commit.ID
	names  map[commit.ID]string // label of a commit
}

type goldReplica struct {
	name string
	r    *repo.Repo
	now  int64 // the replica's clock, Unix ms
}

// goldKey returns the fixed session key of a replica.
func goldKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goatdb golden merge replica " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// goldUpgrader is the schema registry of the golden cases: from version 1
// to 2 of namespace "task", field title is renamed name.
type goldUpgrader struct{}

func (goldUpgrader) Upgrade(it item.Item, from commit.Schema, to uint32) (item.Item, error) {
	if from.NS != "task" || from.Version > to {
		return it, fmt.Errorf("no upgrade from %s to version %d", from, to)
	}
	if from.Version < 2 && to >= 2 {
		if v, ok := it.Get("title"); ok {
			it = it.Without("title").With("name", v)
		}
	}
	return it, nil
}

// exec runs one command. For expect and bases it returns the line as it
// should read given the actual state.
func (w *goldWorld) exec(toks []string) (string, error) {
	if toks[0] != "replicas" && len(w.reps) == 0 {
		return "", errors.New("the first command must be replicas")
	}
	switch toks[0] {
	case "replicas":
		return "", w.open(toks[1:])
	case "sync":
		return "", w.sync(toks[1:])
	case "send":
		return "", w.send(toks[1:])
	case "expect":
		if len(toks) < 2 {
			return "", errors.New("expect KEY ...")
		}
		return w.expect(toks[1], goldOn(toks))
	case "ids":
		if len(toks) != 4 || toks[2] != "<" {
			return "", errors.New("ids LABEL < LABEL")
		}
		a, okA := w.labels[toks[1]]
		b, okB := w.labels[toks[3]]
		if !okA || !okB {
			return "", errors.New("ids: unknown label")
		}
		if commit.CompareIDs(a, b) > 0 {
			toks[1], toks[3] = toks[3], toks[1]
		}
		return strings.Join(toks, " "), nil
	case "label":
		return "", w.label(toks[1:])
	case "head":
		if len(toks) < 4 {
			return "", errors.New("head KEY A = ...")
		}
		return w.head(toks[1], toks[2])
	case "bases":
		if len(toks) < 4 {
			return "", errors.New("bases KEY A B = LABEL...")
		}
		return w.bases(toks[1], toks[2], toks[3])
	}
	if rep := w.reps[toks[0]]; rep != nil {
		return "", w.write(rep, toks[1:])
	}
	return "", fmt.Errorf("unknown command or replica %q", toks[0])
}

func (w *goldWorld) open(args []string) error {
	trusted := false
	if len(args) > 0 && args[len(args)-1] == "trusted" {
		trusted, args = true, args[:len(args)-1]
	}
	if len(w.reps) > 0 || len(args) == 0 {
		return errors.New("replicas NAME... [trusted], once")
	}
	for _, name := range args {
		rep := &goldReplica{name: name}
		rep.r = dbtest.OpenRepo(w.t, "/data/"+name+".log", &repo.Options{
			FS: vfs.NewMem(), Key: goldKey(name), Trusted: trusted, Schemas: goldUpgrader{},
			Now: func() time.Time { return time.UnixMilli(rep.now) },
		})
		w.reps[name] = rep
		w.order = append(w.order, name)
	}
	return nil
}

// write runs "t=MS VERB KEY ARGS... [=> LABEL]".
func (w *goldWorld) write(rep *goldReplica, args []string) error {
	label := ""
	if n := len(args); n >= 2 && args[n-2] == "=>" {
		label, args = args[n-1], args[:n-2]
	}
	if len(args) < 3 || !strings.HasPrefix(args[0], "t=") {
		return errors.New("NAME t=MS put|delete|undelete|upgrade KEY ...")
	}
	ms, err := strconv.ParseInt(args[0][2:], 10, 64)
	if err != nil {
		return err
	}
	verb, key := args[1], args[2]
	var edits []goldEdit
	if verb != "upgrade" {
		if edits, err = parseGoldEdits(args[3:]); err != nil {
			return err
		}
	}
	switch verb {
	case "put":
	case "delete", "undelete":
		del := verb == "delete"
		edits = append(edits, func(it item.Item, s commit.Schema) (item.Item, commit.Schema, error) {
			return it.WithDeleted(del), s, nil
		})
	case "upgrade":
		if len(args) != 4 {
			return errors.New("upgrade KEY NS/VERSION")
		}
		to, err := parseGoldSchema(args[3])
		if err != nil {
			return err
		}
		edits = []goldEdit{func(it item.Item, s commit.Schema) (item.Item, commit.Schema, error) {
			it, err := goldUpgrader{}.Upgrade(it, s, to.Version)
			return it, to, err
		}}
	default:
		return fmt.Errorf("unknown verb %q", verb)
	}
	rep.now = ms
	cs, err := rep.r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		it, s := cur.Value, cur.Schema
		for _, e := range edits {
			var err error
			if it, s, err = e(it, s); err != nil {
				return it, s, err
			}
		}
		return it, s, nil
	}})
	if err != nil {
		return err
	}
	if label != "" {
		if len(cs) != 1 {
			return fmt.Errorf("label %s: the write made %d commits, not 1", label, len(cs))
		}
		if _, dup := w.labels[label]; dup {
			return fmt.Errorf("label %s used twice", label)
		}
		w.labels[label], w.names[cs[0].ID()] = cs[0].ID(), label
	}
	return nil
}

// goldEdit changes an item and its schema.
type goldEdit func(item.Item, commit.Schema) (item.Item, commit.Schema, error)

func parseGoldEdits(args []string) ([]goldEdit, error) {
	var edits []goldEdit
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "remove" || a == "schema" {
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s what?", a)
			}
			i++
		}
		var e goldEdit
		var err error
		switch a {
		case "remove":
			e, err = parseGoldRemove(args[i])
		case "schema":
			var s commit.Schema
			s, err = parseGoldSchema(args[i])
			e = func(it item.Item, _ commit.Schema) (item.Item, commit.Schema, error) { return it, s, nil }
		default:
			e, err = parseGoldAssign(a)
		}
		if err != nil {
			return nil, fmt.Errorf("edit %q: %w", args[i], err)
		}
		edits = append(edits, e)
	}
	return edits, nil
}

// goldFieldName splits a leading field name off s.
func goldFieldName(s string) (string, string) {
	n := strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if n < 0 {
		n = len(s)
	}
	return s[:n], s[n:]
}

// goldMapKey parses `["k"]` at the start of s.
func goldMapKey(s string) (string, string, error) {
	if !strings.HasPrefix(s, "[") {
		return "", s, errors.New(`want ["key"]`)
	}
	q, err := strconv.QuotedPrefix(s[1:])
	if err != nil || !strings.HasPrefix(s[1+len(q):], "]") {
		return "", s, errors.New(`want ["key"]`)
	}
	k, _ := strconv.Unquote(q)
	return k, s[1+len(q)+1:], nil
}

func parseGoldRemove(s string) (goldEdit, error) {
	name, rest := goldFieldName(s)
	if name == "" {
		return nil, errors.New("no field name")
	}
	if rest == "" {
		return func(it item.Item, sc commit.Schema) (item.Item, commit.Schema, error) {
			return it.Without(name), sc, nil
		}, nil
	}
	k, rest, err := goldMapKey(rest)
	if err != nil || rest != "" {
		return nil, fmt.Errorf(`want FIELD or FIELD["key"]`)
	}
	return func(it item.Item, sc commit.Schema) (item.Item, commit.Schema, error) {
		m, err := goldMapOf(it, name)
		delete(m, k)
		return it.With(name, item.Map(m)), sc, err
	}, nil
}

func goldMapOf(it item.Item, name string) (map[string]item.Value, error) {
	m := map[string]item.Value{}
	v, ok := it.Get(name)
	if ok && v.Type() != item.TypeMap {
		return m, fmt.Errorf("field %s is a %s, not a map", name, v.Type())
	}
	for i, k := range v.Keys() {
		m[k] = v.Elems()[i]
	}
	return m, nil
}

func parseGoldAssign(s string) (goldEdit, error) {
	name, rest := goldFieldName(s)
	if name == "" {
		return nil, errors.New("no field name")
	}
	var op, key string
	switch {
	case strings.HasPrefix(rest, "+="), strings.HasPrefix(rest, "-="):
		op, rest = rest[:2], rest[2:]
	case strings.HasPrefix(rest, "="):
		op, rest = "=", rest[1:]
	case strings.HasPrefix(rest, "["):
		var err error
		if key, rest, err = goldMapKey(rest); err != nil || !strings.HasPrefix(rest, "=") {
			return nil, errors.New(`want FIELD["key"]=VALUE`)
		}
		op, rest = "[]=", rest[1:]
	default:
		return nil, errors.New("want FIELD=VALUE, FIELD+=V, FIELD-=V or FIELD[\"key\"]=VALUE")
	}
	v, err := parseGoldValue(rest)
	if err != nil {
		return nil, err
	}
	return func(it item.Item, sc commit.Schema) (item.Item, commit.Schema, error) {
		switch op {
		case "=":
			return it.With(name, v), sc, nil
		case "[]=":
			m, err := goldMapOf(it, name)
			m[key] = v
			return it.With(name, item.Map(m)), sc, err
		}
		cur, ok := it.Get(name)
		if ok && cur.Type() != item.TypeSet {
			return it, sc, fmt.Errorf("field %s is a %s, not a set", name, cur.Type())
		}
		elems := slices.Clone(cur.Elems())
		if op == "+=" {
			elems = append(elems, v)
		} else {
			elems = slices.DeleteFunc(elems, func(e item.Value) bool { return item.Equal(e, v) })
		}
		set, err := item.Set(elems...)
		return it.With(name, set), sc, err
	}, nil
}

func parseGoldSchema(s string) (commit.Schema, error) {
	ns, v, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(v, 10, 32)
	if !ok || ns == "" || err != nil {
		return commit.Schema{}, fmt.Errorf("schema %q: want NS/VERSION", s)
	}
	return commit.Schema{NS: ns, Version: uint32(n)}, nil
}

// allCommits returns every commit a replica holds, pending ones included,
// parents before children where the replica knows both.
func allCommits(r *repo.Repo) []*commit.Commit {
	keys, _ := r.Since(0)
	var out []*commit.Commit
	for _, k := range keys {
		h := r.History(k)
		for i := len(h) - 1; i >= 0; i-- {
			out = append(out, h[i].Commit)
		}
	}
	return out
}

func commitIDs(r *repo.Repo) []commit.ID {
	var ids []commit.ID
	for _, c := range allCommits(r) {
		ids = append(ids, c.ID())
	}
	slices.SortFunc(ids, commit.CompareIDs)
	return ids
}

// deliver has rep receive commits in one batch; every one must be accepted.
func (w *goldWorld) deliver(rep *goldReplica, cs []*commit.Commit) error {
	encs := make([][]byte, len(cs))
	for i, c := range cs {
		encs[i] = c.Encode()
	}
	_, rej, err := rep.r.Receive(encs)
	if err != nil {
		return fmt.Errorf("%s receives: %w", rep.name, err)
	}
	if len(rej) > 0 {
		return fmt.Errorf("%s rejects %v", rep.name, rej)
	}
	return nil
}

func (w *goldWorld) replicas(names []string) ([]*goldReplica, error) {
	var out []*goldReplica
	for _, n := range names {
		rep := w.reps[n]
		if rep == nil {
			return nil, fmt.Errorf("no replica %q", n)
		}
		out = append(out, rep)
	}
	return out, nil
}

func (w *goldWorld) sync(args []string) error {
	if len(args) == 1 && args[0] == "all" {
		reps, _ := w.replicas(w.order)
		return w.syncUntilSame(reps, func() error {
			for _, to := range reps {
				var cs []*commit.Commit
				for _, from := range reps {
					if from != to {
						cs = append(cs, allCommits(from.r)...)
					}
				}
				if err := w.deliver(to, cs); err != nil {
					return err
				}
			}
			return nil
		})
	}
	i := slices.IndexFunc(args, func(s string) bool { return s == "->" || s == "<->" })
	if i < 1 || i != len(args)-2 {
		return errors.New("sync A [B...] -> C, sync A <-> B or sync all")
	}
	from, err := w.replicas(args[:i])
	if err != nil {
		return err
	}
	to, err := w.replicas(args[i+1:])
	if err != nil {
		return err
	}
	if args[i] == "<->" {
		if len(from) != 1 {
			return errors.New("sync A <-> B")
		}
		a, b := from[0], to[0]
		return w.syncUntilSame([]*goldReplica{a, b}, func() error {
			if err := w.deliver(b, allCommits(a.r)); err != nil {
				return err
			}
			return w.deliver(a, allCommits(b.r))
		})
	}
	var cs []*commit.Commit
	for _, f := range from {
		cs = append(cs, allCommits(f.r)...)
	}
	return w.deliver(to[0], cs)
}

// syncUntilSame repeats a round until the replicas hold the same commits.
func (w *goldWorld) syncUntilSame(reps []*goldReplica, round func() error) error {
	for range 5 {
		if err := round(); err != nil {
			return err
		}
		same := true
		first := commitIDs(reps[0].r)
		for _, rep := range reps[1:] {
			same = same && slices.Equal(first, commitIDs(rep.r))
		}
		if same {
			return nil
		}
	}
	return errors.New("replicas still differ after 5 rounds")
}

// send delivers labelled commits: "A -> B LABEL...".
func (w *goldWorld) send(args []string) error {
	if len(args) < 4 || args[1] != "->" {
		return errors.New("send A -> B LABEL...")
	}
	reps, err := w.replicas([]string{args[0], args[2]})
	if err != nil {
		return err
	}
	var cs []*commit.Commit
	for _, l := range args[3:] {
		id, ok := w.labels[l]
		c, has := reps[0].r.Commit(id)
		if !ok || !has {
			return fmt.Errorf("%s holds no commit labelled %s", args[0], l)
		}
		cs = append(cs, c)
	}
	return w.deliver(reps[1], cs)
}

// goldOn returns the replica names after "on" in an expect line.
func goldOn(toks []string) []string {
	if len(toks) < 3 || toks[2] != "on" {
		return nil
	}
	var on []string
	for _, tok := range toks[3:] {
		if tok == "none" || tok == "deleted" || tok == "schema" || strings.Contains(tok, "=") {
			break
		}
		on = append(on, tok)
	}
	return on
}

// expect returns the expect line for key as the replicas named by on (nil:
// all) hold it; they must agree.
func (w *goldWorld) expect(key string, on []string) (string, error) {
	names := on
	if len(on) == 0 {
		names = w.order
	}
	reps, err := w.replicas(names)
	if err != nil {
		return "", err
	}
	var first string
	for i, rep := range reps {
		v, s, ok := rep.r.Get(key)
		got := formatGoldExpect(key, on, v, s, ok)
		if i == 0 {
			first = got
		} else if got != first {
			return "", fmt.Errorf("replicas disagree on %s:\n\t%s\n\t%s", key, first, got)
		}
	}
	return first, nil
}

func formatGoldExpect(key string, on []string, v item.Item, s commit.Schema, ok bool) string {
	parts := []string{"expect", key}
	if len(on) > 0 {
		parts = append(append(parts, "on"), on...)
	}
	if !ok {
		return strings.Join(append(parts, "none"), " ")
	}
	if v.Deleted() {
		parts = append(parts, "deleted")
	}
	if s.NS != "" {
		parts = append(parts, "schema", s.String())
	}
	for name, val := range v.All() {
		parts = append(parts, name+"="+formatGoldValue(val))
	}
	return strings.Join(parts, " ")
}

// bases returns the bases line for key and replicas a and b: the lowest
// common ancestors of their heads, computed from their histories.
func (w *goldWorld) bases(key, a, b string) (string, error) {
	reps, err := w.replicas([]string{a, b})
	if err != nil {
		return "", err
	}
	parents := map[commit.ID][]commit.ID{}
	var heads []commit.ID
	for _, rep := range reps {
		for _, info := range rep.r.History(key) {
			parents[info.Commit.ID()] = info.Commit.Parents()
		}
		h, ok := rep.r.Head(key)
		if !ok {
			return "", fmt.Errorf("%s has no head for %s", rep.name, key)
		}
		heads = append(heads, h)
	}
	ancestors := func(id commit.ID) map[commit.ID]bool { // inclusive
		seen := map[commit.ID]bool{}
		stack := []commit.ID{id}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !seen[x] {
				seen[x] = true
				stack = append(stack, parents[x]...)
			}
		}
		return seen
	}
	ancA, ancB := ancestors(heads[0]), ancestors(heads[1])
	var common []commit.ID
	for id := range ancA {
		if ancB[id] {
			common = append(common, id)
		}
	}
	var names []string
	for _, c := range common {
		lowest := true
		for _, d := range common {
			lowest = lowest && (d == c || !ancestors(d)[c])
		}
		if lowest {
			names = append(names, w.name(c))
		}
	}
	slices.Sort(names)
	return strings.Join(append([]string{"bases", key, a, b, "="}, names...), " "), nil
}

// label runs "NAME = head KEY A".
func (w *goldWorld) label(args []string) error {
	if len(args) != 5 || args[1] != "=" || args[2] != "head" {
		return errors.New("label NAME = head KEY A")
	}
	reps, err := w.replicas(args[4:])
	if err != nil {
		return err
	}
	id, ok := reps[0].r.Head(args[3])
	if !ok {
		return fmt.Errorf("%s has no head for %s", args[4], args[3])
	}
	if _, dup := w.labels[args[0]]; dup {
		return fmt.Errorf("label %s used twice", args[0])
	}
	w.labels[args[0]], w.names[id] = id, args[0]
	return nil
}

// head returns the head line for key on replica a.
func (w *goldWorld) head(key, a string) (string, error) {
	reps, err := w.replicas([]string{a})
	if err != nil {
		return "", err
	}
	id, ok := reps[0].r.Head(key)
	c, _ := reps[0].r.Commit(id)
	if !ok || c == nil {
		return "", fmt.Errorf("%s has no head for %s", a, key)
	}
	parts := []string{"head", key, a, "="}
	if !c.IsMerge() {
		return strings.Join(append(parts, w.name(id)), " "), nil
	}
	var names []string
	for _, p := range c.Parents() {
		names = append(names, w.name(p))
	}
	slices.Sort(names)
	return strings.Join(append(append(parts, "merge"), names...), " "), nil
}

func (w *goldWorld) name(id commit.ID) string {
	if l, ok := w.names[id]; ok {
		return l
	}
	return id.Short()
}

// checkConverged checks what every case must end with: the same head for
// every item on every replica, one leaf, nothing missing, Check clean.
func (w *goldWorld) checkConverged() {
	t := w.t
	t.Helper()
	keys := map[string]bool{}
	for _, rep := range w.reps {
		ks, _ := rep.r.Since(0)
		for _, k := range ks {
			keys[k] = true
		}
	}
	first := w.reps[w.order[0]]
	for k := range keys {
		h0, _ := first.r.Head(k)
		for _, name := range w.order {
			rep := w.reps[name]
			if h, ok := rep.r.Head(k); !ok || h != h0 {
				t.Errorf("item %s: head on %s is %s, on %s %s: the case must end with the replicas in sync", k, first.name, h0.Short(), name, h.Short())
			}
			if n := len(rep.r.Leaves(k)); n != 1 {
				t.Errorf("item %s: %s has %d leaves", k, name, n)
			}
		}
	}
	for _, name := range w.order {
		rep := w.reps[name]
		if m := rep.r.Missing(); len(m) > 0 {
			t.Errorf("%s misses %d commits", name, len(m))
		}
		for _, p := range rep.r.Check() {
			t.Errorf("%s: Check: %s", name, p)
		}
	}
}

// goldTokens splits a line into words at spaces outside quotes and
// brackets, and returns the trailing comment (from a # that starts a word).
func goldTokens(line string) (toks []string, comment string, err error) {
	var cur strings.Builder
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			q, err := strconv.QuotedPrefix(line[i:])
			if err != nil {
				return nil, "", fmt.Errorf("bad string at column %d", i+1)
			}
			cur.WriteString(q)
			i += len(q) - 1
		case c == '#' && depth == 0 && cur.Len() == 0:
			return toks, line[i:], nil
		case c == '{' || c == '[' || c == '(':
			depth++
			cur.WriteByte(c)
		case c == '}' || c == ']' || c == ')':
			depth--
			cur.WriteByte(c)
		case (c == ' ' || c == '\t' || c == '\r') && depth == 0:
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if depth != 0 {
		return nil, "", errors.New("unbalanced brackets")
	}
	flush()
	return toks, "", nil
}

// parseGoldValue parses a VALUE (see the syntax above).
func parseGoldValue(s string) (item.Value, error) {
	p := &goldParser{s: s}
	v, err := p.value()
	if err == nil && p.i != len(p.s) {
		err = fmt.Errorf("unexpected %q after the value", p.s[p.i:])
	}
	if err != nil {
		return item.Value{}, fmt.Errorf("value %q: %w", s, err)
	}
	return v, nil
}

type goldParser struct {
	s string
	i int
}

func (p *goldParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// eat skips spaces and then tok, if it is next.
func (p *goldParser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *goldParser) str() (string, error) {
	p.space()
	q, err := strconv.QuotedPrefix(p.s[p.i:])
	if err != nil {
		return "", errors.New("want a quoted string")
	}
	p.i += len(q)
	return strconv.Unquote(q)
}

func (p *goldParser) value() (item.Value, error) {
	p.space()
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, `"`):
		s, err := p.str()
		return item.String(s), err
	case p.eat("true"):
		return item.Bool(true), nil
	case p.eat("false"):
		return item.Bool(false), nil
	case p.eat("date("):
		end := strings.IndexByte(p.s[p.i:], ')')
		if end < 0 {
			return item.Value{}, errors.New("date( without )")
		}
		tm, err := time.Parse(time.RFC3339Nano, p.s[p.i:p.i+end])
		p.i += end + 1
		return item.Date(tm), err
	case p.eat("map{"):
		m := map[string]item.Value{}
		for !p.eat("}") {
			if len(m) > 0 && !p.eat(",") {
				return item.Value{}, errors.New("want , or } in map")
			}
			k, err := p.str()
			if err != nil {
				return item.Value{}, err
			}
			if !p.eat(":") {
				return item.Value{}, errors.New("want : after a map key")
			}
			if m[k], err = p.value(); err != nil {
				return item.Value{}, err
			}
		}
		return item.Map(m), nil
	case p.eat("{"):
		var elems []item.Value
		for !p.eat("}") {
			if len(elems) > 0 && !p.eat(",") {
				return item.Value{}, errors.New("want , or } in set")
			}
			e, err := p.value()
			if err != nil {
				return item.Value{}, err
			}
			elems = append(elems, e)
		}
		return item.Set(elems...)
	}
	n := strings.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune("+-0123456789.eE", r) })
	if n < 0 {
		n = len(rest)
	}
	num := rest[:n]
	p.i += n
	if p.eat("i") {
		i, err := strconv.ParseInt(num, 10, 64)
		return item.Int(i), err
	}
	f, err := strconv.ParseFloat(num, 64)
	return item.Number(f), err
}

// formatGoldValue formats a value the way parseGoldValue reads it.
func formatGoldValue(v item.Value) string {
	switch v.Type() {
	case item.TypeString:
		return strconv.Quote(v.Str())
	case item.TypeNumber:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case item.TypeInt:
		return strconv.FormatInt(v.Int64(), 10) + "i"
	case item.TypeBool:
		return strconv.FormatBool(v.Bool())
	case item.TypeDate:
		return "date(" + v.Time().Format(time.RFC3339Nano) + ")"
	case item.TypeSet:
		parts := make([]string, v.Len())
		for i, e := range v.Elems() {
			parts[i] = formatGoldValue(e)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case item.TypeMap:
		parts := make([]string, v.Len())
		for i, k := range v.Keys() {
			parts[i] = strconv.Quote(k) + ": " + formatGoldValue(v.Elems()[i])
		}
		return "map{" + strings.Join(parts, ", ") + "}"
	}
	return "invalid"
}
