package syncproto

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// keyView reads the items in read and owns nothing.
type keyView struct {
	key  string
	read map[string]bool
}

func (v keyView) Key() string             { return v.key }
func (v keyView) MayRead(key string) bool { return v.read[key] }
func (keyView) Own(*commit.Commit) bool   { return false }

func openMem(t *testing.T) *repo.Repo {
	t.Helper()
	r, err := repo.Open("/r.log", &repo.Options{FS: vfs.NewMem(), Key: ed25519.NewKeyFromSeed(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func write(t *testing.T, r *repo.Repo, key string, n int) {
	t.Helper()
	if _, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		return cur.Value.With("n", item.Int(int64(n))), commit.Schema{NS: "t", Version: 1}, nil
	}}); err != nil {
		t.Fatal(err)
	}
}

// TestViewStatesBounded: the cache keeps at most MaxViews states, the
// least recently used out.
func TestViewStatesBounded(t *testing.T) {
	r := openMem(t)
	write(t, r, "a", 1)
	var w views
	w.init(4, nil)
	first := w.of(r, "v0")
	for i := range 10 {
		vs := w.of(r, fmt.Sprint("v", i))
		vs.update(r, keyView{key: fmt.Sprint("v", i)})
		w.of(r, "v9") // the most recent stays
		if n := w.lru.Len(); n > 4 || len(w.m) != n {
			t.Fatalf("%d states (%d in the map), at most 4", n, len(w.m))
		}
	}
	if _, ok := w.m[viewID{r, "v9"}]; !ok {
		t.Fatal("the most recently used state was evicted")
	}
	if w.of(r, "v0") == first {
		t.Fatal("the least recently used state was kept")
	}
}

// TestPositionsBounded: a view state remembers at most maxMarks
// positions; older ones no longer resolve (no resume), recent ones do,
// and positions from a state built elsewhere do not.
func TestPositionsBounded(t *testing.T) {
	r := openMem(t)
	var w views
	w.init(4, []byte("a secret"))
	w.bounds.marks = 64 // the bound's logic, not its size, is tested
	maxMarks := w.bounds.marks
	v := keyView{key: "k", read: map[string]bool{"a": true}}
	vs := w.of(r, "k")
	first := vs.update(r, v)
	for i := range maxMarks + 10 {
		write(t, r, "a", i)
		write(t, r, "b", i) // outside the view: no new position
		vs.update(r, v)
	}
	last := vs.update(r, v)
	if last.Seq != first.Seq+uint64(maxMarks)+10 || last.Epoch != first.Epoch {
		t.Fatalf("position %d/%x after %d changes from %d/%x", last.Seq, last.Epoch, maxMarks+10, first.Seq, first.Epoch)
	}
	if n := len(vs.marks); n > maxMarks {
		t.Fatalf("%d positions remembered, at most %d", n, maxMarks)
	}
	if _, _, ok := vs.resolve(Point{first.Epoch, first.Seq}); ok {
		t.Fatal("the first position still resolves")
	}
	seq, _, ok := vs.resolve(Point{last.Epoch, last.Seq - 1})
	if since, _ := r.CommitsSince(seq); !ok || len(since) != 2 {
		t.Fatalf("the previous position resolves to %d (%v): %d commits since, want 2", seq, ok, len(since))
	}
	// The same secret, another view state built at the same place: the
	// same epoch; another secret: another epoch.
	var same, other views
	same.init(4, []byte("a secret"))
	other.init(4, []byte("another"))
	if st := same.of(r, "k").update(r, v); st.Epoch != first.Epoch && st.Seq == 0 {
		// Built later than first: a new epoch is right.
		if st2 := same.of(r, "k").update(r, v); st2 != st {
			t.Fatalf("an unchanged view moved: %+v then %+v", st, st2)
		}
	}
	a := (&viewState{key: "k", hkey: &same.key}).pointEpoch(r.Epoch(), 7)
	b := (&viewState{key: "k", hkey: &w.key}).pointEpoch(r.Epoch(), 7)
	c := (&viewState{key: "k", hkey: &other.key}).pointEpoch(r.Epoch(), 7)
	d := (&viewState{key: "k2", hkey: &w.key}).pointEpoch(r.Epoch(), 7)
	if a != b || b == c || b == d || b == r.Epoch() {
		t.Fatalf("epochs %x %x %x %x for log epoch %x: want equal for one secret and key, else different", a, b, c, d, r.Epoch())
	}
}

// TestEnteredBounded: items entering the view are remembered up to
// maxEntered; positions before the forgotten ones no longer resolve.
func TestEnteredBounded(t *testing.T) {
	r := openMem(t)
	var w views
	w.init(4, nil)
	w.bounds.entered = 64 // the bound's logic, not its size, is tested
	maxEntered := w.bounds.entered
	read := map[string]bool{}
	v := keyView{key: "k", read: read}
	vs := w.of(r, "k")
	n := maxEntered + 100
	for i := range n {
		write(t, r, fmt.Sprint("i", i), 0) // seen, unreadable
	}
	first := vs.update(r, v)
	for i := range n {
		read[fmt.Sprint("i", i)] = true
		write(t, r, fmt.Sprint("i", i), 1)
		vs.update(r, v)
	}
	if len(vs.entered) > maxEntered {
		t.Fatalf("%d entered items remembered, at most %d", len(vs.entered), maxEntered)
	}
	if _, _, ok := vs.resolve(Point{first.Epoch, first.Seq}); ok {
		t.Fatal("a position before forgotten entries resolves")
	}
	last := vs.update(r, v)
	_, in, ok := vs.resolve(Point{last.Epoch, last.Seq - 1})
	if !ok || len(in) != 1 || !in[fmt.Sprint("i", n-1)] {
		t.Fatalf("the previous position: %v, entered since %v; want the last item", ok, in)
	}
	if last.Count != uint64(2*n) {
		t.Fatalf("count %d, want every commit of the %d items now readable", last.Count, n)
	}
}

// countingRepo counts the commits read from it by id.
type countingRepo struct {
	*repo.Repo
	reads int
}

func (c *countingRepo) Commit(id commit.ID) (*commit.Commit, bool) {
	c.reads++
	return c.Repo.Commit(id)
}

// TestViewBuildReadsUnreadableOnly: building a view's state compares
// stamps; it reads a commit only to ask Own of it, for items the view may
// not read, and counts the same commits as a state built from the
// decoded commits.
func TestViewBuildReadsUnreadableOnly(t *testing.T) {
	r := openMem(t)
	for i := range 20 {
		write(t, r, fmt.Sprint("k", i%5), i)
	}
	cr := &countingRepo{Repo: r}
	var w views
	w.init(4, nil)
	all := keyView{key: "all", read: map[string]bool{"k0": true, "k1": true, "k2": true, "k3": true, "k4": true}}
	st := w.of(cr, "all").update(cr, all)
	if cr.reads != 0 || st.Count != 20 {
		t.Fatalf("a view that reads every item read %d commits and counted %d, want 0 and 20", cr.reads, st.Count)
	}
	some := keyView{key: "some", read: map[string]bool{"k0": true}}
	st = w.of(cr, "some").update(cr, some)
	if cr.reads != 16 || st.Count != 4 {
		t.Fatalf("a view that reads one item of five read %d commits and counted %d, want 16 and 4", cr.reads, st.Count)
	}
}
