package repo_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// TestManyItemWrite: a write of many items (built on several cores) makes
// one commit per item, each signed by the session, for its item, built on
// the item's head; a second such write builds on the first's commits.
func TestManyItemWrite(t *testing.T) {
	key := ctKey("many")
	r := dbtest.OpenRepo(t, "/data/many.log", &repo.Options{FS: vfs.NewMem(), Key: key})
	var session commit.SessionID
	copy(session[:], key.Public().(ed25519.PublicKey))
	write := func(round int) []*commit.Commit {
		var ups []repo.Update
		for i := range 64 {
			ups = append(ups, repo.Update{Key: fmt.Sprintf("k%02d", i), Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
				return cur.Value.With("v", item.Int(int64(round*100+i))), cur.Schema, nil
			}})
		}
		cs, err := r.Write(ups...)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 64 {
			t.Fatalf("round %d: %d commits for 64 items", round, len(cs))
		}
		return cs
	}
	first := write(1)
	byKey := map[string]commit.ID{}
	for _, c := range first {
		byKey[c.Key()] = c.ID()
	}
	for _, c := range write(2) {
		if c.Session() != session || c.VerifySignature(true) != nil {
			t.Fatalf("%s: session %s, signature %v", c.Key(), c.Session(), c.VerifySignature(true))
		}
		if ps := c.Parents(); len(ps) != 1 || ps[0] != byKey[c.Key()] {
			t.Fatalf("%s: parents %v, want its first commit %s", c.Key(), ps, byKey[c.Key()].Short())
		}
		v, _, ok := r.Get(c.Key())
		if got, _ := v.Get("v"); !ok || got.Any() != int64(200+atoi(c.Key()[1:])) {
			t.Fatalf("%s reads %v", c.Key(), got.Any())
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, ch := range s {
		n = n*10 + int(ch-'0')
	}
	return n
}
