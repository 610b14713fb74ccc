package goatdb_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// TestSignedByAndAdmit: a write signed by another session's key is that
// session's commit (its signature verifies against it); Admit sees the
// item before and after and its refusal writes nothing; a Txn refuses
// both options.
func TestSignedByAndAdmit(t *testing.T) {
	db, err := goatdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pub, key, _ := ed25519.GenerateKey(nil)
	var web commit.SessionID
	copy(web[:], pub)

	var seen []string
	admit := goatdb.Admit(func(c *commit.Commit, before, after item.Item) error {
		b, _ := before.Get("v")
		a, _ := after.Get("v")
		seen = append(seen, valueString(b)+"→"+valueString(a))
		if c.Session() != web {
			t.Errorf("Admit saw a commit by %s, want %s", c.Session(), web)
		}
		if s, _ := after.Get("v"); s.Any() == "refused" {
			return errors.New("the rules refuse it")
		}
		return nil
	})
	id, err := db.Put("/data/notes/a", goatdb.Fields{"v": "one"}, goatdb.SignedBy(key), admit)
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Repo("/data/notes")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.Commit(id)
	if !ok || c.Session() != web || c.Session() == db.Session() {
		t.Fatalf("commit %v (found %v) by %s; want the web session %s", id, ok, c.Session(), web)
	}
	if err := c.VerifySignature(true); err != nil {
		t.Fatalf("signature of the web session's commit: %v", err)
	}
	if _, err := db.Update(context.Background(), "/data/notes/a", func(goatdb.Item) (goatdb.Fields, error) {
		return goatdb.Fields{"v": "refused"}, nil
	}, goatdb.SignedBy(key), admit); err == nil || err.Error() == "" {
		t.Fatalf("Update refused by Admit: err %v, want the refusal", err)
	}
	it, err := db.Get("/data/notes/a")
	if err != nil || it.Head() != id {
		t.Fatalf("after a refused write: head %v (%v), want %v unchanged", it.Head(), err, id)
	}
	if want := []string{"→one", "one→refused"}; len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("Admit saw %q, want %q", seen, want)
	}
	if _, err := db.Put("/data/notes/b", goatdb.Fields{"v": 1}, goatdb.SignedBy(key[:10])); err == nil {
		t.Fatal("a signer of 10 bytes was taken")
	}
	err = db.Txn(context.Background(), "/data/notes", func(tx *goatdb.Tx) error {
		return tx.Put("/data/notes/c", goatdb.Fields{"v": 1}, goatdb.SignedBy(key))
	})
	if err == nil {
		t.Fatal("a Txn took SignedBy")
	}
}

func valueString(v item.Value) string {
	if s, ok := v.Any().(string); ok {
		return s
	}
	return ""
}
