package syncproto_test

import (
	"context"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// putV writes field v of item key.
func putV(t *testing.T, r *repo.Repo, key, v string) {
	t.Helper()
	_, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		return cur.Value.With("v", item.String(v)), testSchema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func noticeSince(t *testing.T, s *syncproto.Responder, r *repo.Repo, from syncproto.Point, max int) (syncproto.Point, []string) {
	t.Helper()
	n, cs, err := s.NoticeSince(context.Background(), testPath, r, from, max)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range cs {
		keys = append(keys, c.Key())
	}
	return syncproto.Point{Epoch: n.Epoch, Seq: n.Seq}, keys
}

// TestNoticeSinceAll: with read access to everything, the commits since a
// log position, bounded; none from another epoch, the present, or over
// the bound.
func TestNoticeSinceAll(t *testing.T) {
	r := openPeer(t, 0)
	s, err := syncproto.NewResponder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	putV(t, r, "a", "1")
	at, keys := noticeSince(t, s, r, syncproto.Point{Epoch: r.Epoch()}, 1<<20)
	if at != (syncproto.Point{Epoch: r.Epoch(), Seq: r.Seq()}) || strings.Join(keys, ",") != "a" {
		t.Fatalf("at %+v, keys %v", at, keys)
	}
	putV(t, r, "b", "1")
	putV(t, r, "a", "2")
	if _, keys := noticeSince(t, s, r, at, 1<<20); strings.Join(keys, ",") != "b,a" {
		t.Errorf("keys %v, want b,a", keys)
	}
	now := syncproto.Point{Epoch: r.Epoch(), Seq: r.Seq()}
	for name, from := range map[string]syncproto.Point{
		"present": now, "other epoch": {Epoch: r.Epoch() + 1, Seq: at.Seq}, "future": {Epoch: r.Epoch(), Seq: now.Seq + 1},
	} {
		if got, keys := noticeSince(t, s, r, from, 1<<20); got != now || keys != nil {
			t.Errorf("%s: at %+v keys %v; want %+v and none", name, got, keys, now)
		}
	}
	if _, keys := noticeSince(t, s, r, at, 100); keys != nil {
		t.Errorf("over the bound: keys %v", keys)
	}
}

// TestNoticeSinceView: a view gets only the commits it may read, and none
// once an item entered or left it since the position.
func TestNoticeSinceView(t *testing.T) {
	r := openPeer(t, 0)
	p := newRulePolicy(func(key string, v item.Item) bool {
		s, _ := v.Get("v")
		return key == "pub" || s.Str() == "shared"
	})
	s, err := syncproto.NewResponder(nil, &syncproto.ResponderOptions{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	putV(t, r, "pub", "0")
	putV(t, r, "secret", "0")
	at, _ := noticeSince(t, s, r, syncproto.Point{}, 1<<20)
	putV(t, r, "secret", "1")
	putV(t, r, "pub", "1")
	next, keys := noticeSince(t, s, r, at, 1<<20)
	if strings.Join(keys, ",") != "pub" || next.Seq != at.Seq+1 {
		t.Fatalf("at %+v keys %v; want %d and pub only", next, keys, at.Seq+1)
	}
	putV(t, r, "secret", "2")
	if again, keys := noticeSince(t, s, r, next, 1<<20); again != next || keys != nil {
		t.Errorf("a write outside the view: at %+v keys %v", again, keys)
	}
	// secret enters the view: its history is not in an event.
	putV(t, r, "secret", "shared")
	putV(t, r, "pub", "2")
	later, keys := noticeSince(t, s, r, next, 1<<20)
	if keys != nil || later == next {
		t.Errorf("an item entered: at %+v keys %v; want a new position and no commits", later, keys)
	}
	// and leaves it.
	putV(t, r, "secret", "3")
	if _, keys := noticeSince(t, s, r, later, 1<<20); keys != nil {
		t.Errorf("an item left: keys %v", keys)
	}
}
