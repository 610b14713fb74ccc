package repo_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// TestCrossRepositoryReplayRefused: a signed commit written in /sys/users
// names that repository in what its signature covers, so replayed into
// /sys/admins it is refused with a reason, and a commit that names no
// repository (version 1) is refused by a named one.
func TestCrossRepositoryReplayRefused(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	users := dbtest.OpenRepo(t, "users.log", &repo.Options{Key: key, Name: "/sys/users"})
	admins := dbtest.OpenRepo(t, "admins.log", &repo.Options{Key: key, Name: "/sys/admins"})
	cs, err := users.Write(set("mallory", "role", item.String("admin")))
	if err != nil {
		t.Fatal(err)
	}
	if cs[0].Repo() != "/sys/users" || cs[0].Version() != commit.Version {
		t.Fatalf("commit names %q (version %d)", cs[0].Repo(), cs[0].Version())
	}
	stored, rej, err := admins.Receive([][]byte{cs[0].Encode()})
	if err != nil || len(stored) != 0 || len(rej) != 1 || !strings.Contains(rej[0].Reason, "belongs to repository /sys/users") {
		t.Fatalf("replay into /sys/admins: stored %v, rejected %v, %v", stored, rej, err)
	}
	if _, _, ok := admins.Get("mallory"); ok {
		t.Fatal("the replayed commit is readable in /sys/admins")
	}

	var s commit.SessionID
	copy(s[:], key.Public().(ed25519.PublicKey))
	v1, err := commit.New(commit.Fields{Key: "mallory", Time: 1, Session: s, Full: true,
		Value: item.Item{}.With("role", item.String("admin"))}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, rej, _ := admins.Receive([][]byte{v1.Encode()}); len(rej) != 1 || !strings.Contains(rej[0].Reason, "names no repository") {
		t.Fatalf("a version 1 commit into a named repository: rejected %v", rej)
	}
}

// TestFutureCommitRefused: a commit stamped further in the future than the
// allowed skew (2^62 ms wins every last-writer-wins merge for ever) is
// refused with a reason; one within the skew is taken.
func TestFutureCommitRefused(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	var s commit.SessionID
	copy(s[:], key.Public().(ed25519.PublicKey))
	now := time.UnixMilli(1_700_000_000_000)
	r := dbtest.OpenRepo(t, "r.log", &repo.Options{Key: key, Name: "/data/t", Now: func() time.Time { return now }})
	for _, tc := range []struct {
		name string
		at   int64
		ok   bool
	}{
		{"now", now.UnixMilli(), true},
		{"within the skew", now.Add(repo.DefaultMaxSkew).UnixMilli(), true},
		{"just past the skew", now.Add(repo.DefaultMaxSkew).UnixMilli() + 1, false},
		{"two_to_the_62", 1 << 62, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := commit.New(commit.Fields{Repo: "/data/t", Key: strings.ReplaceAll(tc.name, " ", "_"), Time: tc.at,
				Session: s, Full: true, Value: item.Item{}.With("v", item.Int(1))}, key)
			if err != nil {
				t.Fatal(err)
			}
			stored, rej, err := r.Receive([][]byte{c.Encode()})
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok != (len(stored) == 1) || !tc.ok && (len(rej) != 1 || !strings.Contains(rej[0].Reason, "after this peer's clock")) {
				t.Fatalf("stamped %d: stored %v, rejected %v", tc.at, stored, rej)
			}
		})
	}
}
