package repo_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

func set(key, field string, v item.Value) repo.Update {
	return repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.With(field, v), c.Schema, nil
	}}
}

func TestSmoke(t *testing.T) {
	_, k1, _ := ed25519.GenerateKey(nil)
	_, k2, _ := ed25519.GenerateKey(nil)
	a := dbtest.OpenRepo(t, "a.log", &repo.Options{Key: k1})
	b := dbtest.OpenRepo(t, "b.log", &repo.Options{Key: k2})
	if _, err := a.Write(set("x", "title", item.String("hello")), set("x", "count", item.Number(1))); err != nil {
		t.Fatal(err)
	}
	sync := func(from, to *repo.Repo) {
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
	sync(a, b)
	a.Write(set("x", "title", item.String("from a")))
	b.Write(set("x", "count", item.Number(7)))
	sync(a, b)
	sync(b, a)
	va, _, _ := a.Get("x")
	vb, _, _ := b.Get("x")
	t.Log(va, vb)
	ha, _ := a.Head("x")
	hb, _ := b.Head("x")
	if ha != hb || !item.ItemsEqual(va, vb) {
		t.Fatalf("diverged: %v %v", va, vb)
	}
	for _, h := range a.History("x") {
		t.Log(h.Commit.ID().Short(), h.Commit.IsFull(), h.Commit.IsMerge(), h.Commit.Size())
	}
	dbtest.RequireClean(t, a)
	a.Close()
	a2 := dbtest.OpenRepo(t, a.Path(), &repo.Options{Key: k1})
	v2, _, _ := a2.Get("x")
	if !item.ItemsEqual(v2, va) {
		t.Fatal(v2, va)
	}
	dbtest.RequireClean(t, a2)
}

func TestSyncReads(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	r := dbtest.OpenRepo(t, "a.log", &repo.Options{Key: k})
	r2 := dbtest.OpenRepo(t, "b.log", &repo.Options{Key: k})
	if r.Epoch() == r2.Epoch() {
		t.Fatal("two new logs share an epoch")
	}
	r.Write(set("x", "n", item.Int(1)))
	mid := r.Seq()
	r.Write(set("x", "n", item.Int(2)), set("y", "n", item.Int(3)))
	all, cur := r.CommitsSince(0)
	later, cur2 := r.CommitsSince(mid)
	if len(all) != 3 || len(later) != 2 || cur != cur2 || cur != r.Seq() {
		t.Fatalf("CommitsSince: %d, %d commits; seq %d %d %d", len(all), len(later), cur, cur2, r.Seq())
	}
	ids := r.IDs()
	if len(ids) != 3 || ids[0] != all[0].ID() || ids[2] != all[2].ID() {
		t.Fatalf("IDs %v", ids)
	}
	epoch := r.Epoch()
	r.Close()
	r = dbtest.OpenRepo(t, r.Path(), &repo.Options{Key: k})
	if r.Epoch() != epoch {
		t.Fatal("epoch changed on reopen")
	}
	if again, _ := r.CommitsSince(mid); len(again) != 2 || again[0].ID() != later[0].ID() {
		t.Fatal("sequence numbers changed on reopen")
	}
}

// TestForgedMergeWithItsParents sends a forged merge in the same batch as
// both of its parents: it must be recomputed, rejected with a reason, and
// never become the item's value.
func TestForgedMergeWithItsParents(t *testing.T) {
	_, ka, _ := ed25519.GenerateKey(nil)
	_, kb, _ := ed25519.GenerateKey(nil)
	a := dbtest.OpenRepo(t, "a.log", &repo.Options{Key: ka})
	b := dbtest.OpenRepo(t, "b.log", &repo.Options{Key: kb})
	victim := dbtest.OpenRepo(t, "v.log", &repo.Options{Key: ka})
	base, _ := a.Write(set("x", "t", item.String("base")))
	if _, rej, _ := b.Receive([][]byte{base[0].Encode()}); len(rej) > 0 {
		t.Fatal(rej)
	}
	if _, rej, _ := victim.Receive([][]byte{base[0].Encode()}); len(rej) > 0 {
		t.Fatal(rej)
	}
	la, _ := a.Write(set("x", "t", item.String("from a")))
	lb, _ := b.Write(set("x", "u", item.String("from b")))
	forged, err := commit.NewMerge("x", []*commit.Commit{la[0], lb[0]}, commit.Fields{Full: true,
		Value: item.New(map[string]item.Value{"t": item.String("forged")})})
	if err != nil {
		t.Fatal(err)
	}
	stored, rej, err := victim.Receive([][]byte{la[0].Encode(), lb[0].Encode(), forged.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || len(rej) != 1 || rej[0].ID != forged.ID() {
		t.Fatalf("stored %d, rejected %v; want the forged merge rejected", len(stored), rej)
	}
	v, _, _ := victim.Get("x")
	if got, _ := v.Get("t"); got.Str() != "from a" {
		t.Fatalf("item is %v", v)
	}
}

// TestLookupMatchesHead checks that Lookup's value is the one its head
// commit holds while another goroutine keeps writing.
func TestLookupMatchesHead(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	r := dbtest.OpenRepo(t, "a.log", &repo.Options{Key: k, Durability: repo.Async})
	r.Write(set("x", "n", item.Int(0)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 300; i++ {
			r.Write(set("x", "n", item.Int(int64(i))))
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		e, ok := r.Lookup("x")
		if !ok {
			t.Fatal("x missing")
		}
		at, _, err := r.ValueAt(e.Head)
		if err != nil || !item.ItemsEqual(at, e.Value) {
			t.Fatalf("Lookup value %v, head %s holds %v (%v)", e.Value, e.Head.Short(), at, err)
		}
	}
}
