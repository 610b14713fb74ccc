package repo_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// TestReceiveCheckedSeesBeforeAfter: the admit function sees each
// non-merge commit's value before (at its parents) and after; a commit it
// refuses is refused with its reason and never stored, not even after the
// log is opened again, and a commit of the same batch that builds on it is
// refused as missing its parents.
func TestReceiveCheckedSeesBeforeAfter(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	src := dbtest.OpenRepo(t, "src.log", &repo.Options{Key: key, Name: "/data/t"})
	var cs []*commit.Commit
	for _, u := range []repo.Update{
		set("task", "owner", item.String("alice")),
		set("task", "title", item.String("a")),
		set("task", "owner", item.String("mallory")), // the change to refuse
		set("task", "title", item.String("b")),       // builds on it
	} {
		c, err := src.Write(u)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c...)
	}
	encs := make([][]byte, len(cs))
	for i, c := range cs {
		encs[i] = c.Encode()
	}

	dst := dbtest.OpenRepo(t, "dst.log", &repo.Options{Name: "/data/t"})
	var seen []string
	admit := func(c *commit.Commit, before, after item.Item) error {
		b, a := owner(before), owner(after)
		seen = append(seen, b+">"+a)
		if before.Len() > 0 && b != a {
			return errors.New("the owner may not change")
		}
		return nil
	}
	stored, rej, err := dst.ReceiveChecked(encs, admit)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0] != cs[0].ID() || stored[1] != cs[1].ID() {
		t.Fatalf("stored %v, want the first two commits", stored)
	}
	if len(rej) != 2 || rej[0].ID != cs[2].ID() || !strings.Contains(rej[0].Reason, "not allowed: the owner may not change") ||
		rej[1].ID != cs[3].ID() || !strings.HasPrefix(rej[1].Reason, repo.MissingParents) {
		t.Fatalf("rejected %v", rej)
	}
	if want := []string{">alice", "alice>alice", "alice>mallory"}; strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("admit saw %v, want %v", seen, want)
	}
	if v, _, _ := dst.Get("task"); owner(v) != "alice" {
		t.Fatalf("owner %v after the refusal", v)
	}

	path := dst.Path()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	again := dbtest.OpenRepo(t, path, &repo.Options{Name: "/data/t"})
	if again.Has(cs[2].ID()) || again.Has(cs[3].ID()) {
		t.Fatal("a refused commit is in the log after it is opened again")
	}
	if v, _, _ := again.Get("task"); owner(v) != "alice" {
		t.Fatalf("owner %v after reopening", v)
	}
}

func owner(it item.Item) string {
	v, _ := it.Get("owner")
	if v.Type() != item.TypeString {
		return ""
	}
	return v.Str()
}
