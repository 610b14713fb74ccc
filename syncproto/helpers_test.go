package syncproto_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// testPath is the repository path peers sync in most tests.
const testPath = "/data/tasks"

// peerKey returns a deterministic session key for peer i.
func peerKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "goatdb syncproto peer %d", i))
	return ed25519.NewKeyFromSeed(seed[:])
}

func sessionOf(key ed25519.PrivateKey) commit.SessionID {
	var s commit.SessionID
	copy(s[:], key.Public().(ed25519.PublicKey))
	return s
}

// openPeer opens a signed repository on its own in-memory filesystem,
// checked when the test ends.
func openPeer(t testing.TB, i int) *repo.Repo {
	t.Helper()
	return dbtest.OpenRepo(t, "/peer.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(i)})
}

var testSchema = commit.Schema{NS: "task", Version: 1}

// writeRandom writes n random field updates to a few shared item keys.
func writeRandom(t testing.TB, r *repo.Repo, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		key := fmt.Sprintf("item%d", rng.IntN(4))
		field := []string{"title", "count", "done", "tags"}[rng.IntN(4)]
		v := randomValue(rng, field)
		_, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With(field, v), testSchema, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func randomValue(rng *rand.Rand, field string) item.Value {
	switch field {
	case "title":
		return item.String(fmt.Sprint("t", rng.IntN(1000)))
	case "count":
		return item.Int(int64(rng.IntN(100)))
	case "done":
		return item.Bool(rng.IntN(2) == 0)
	}
	return item.StringSet(fmt.Sprint("tag", rng.IntN(5)), fmt.Sprint("tag", rng.IntN(5)))
}

// writeItems writes n new items, batch at a time.
func writeItems(t testing.TB, r *repo.Repo, prefix string, n, batch int) {
	t.Helper()
	for start := 0; start < n; start += batch {
		var ups []repo.Update
		for i := start; i < min(n, start+batch); i++ {
			v := item.New(map[string]item.Value{
				"title": item.String(fmt.Sprint("Item ", prefix, i)), "count": item.Int(int64(i)),
				"tags": item.StringSet("tag", fmt.Sprint("category", i%5)),
			})
			ups = append(ups, repo.Update{Key: fmt.Sprintf("%s%09d", prefix, i), Fn: func(repo.Current) (item.Item, commit.Schema, error) {
				return v, testSchema, nil
			}})
		}
		if _, err := r.Write(ups...); err != nil {
			t.Fatal(err)
		}
	}
}

// serve returns a Responder serving one repository at testPath.
func serve(t testing.TB, r syncproto.Repo, opts *syncproto.ResponderOptions) *syncproto.Responder {
	t.Helper()
	s, err := syncproto.NewResponder(single(testPath, r), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// single serves one repository.
func single(path string, r syncproto.Repo) syncproto.Repos {
	return syncproto.ReposFunc(func(_ context.Context, _ commit.SessionID, p string, _ bool) (syncproto.Repo, error) {
		if p != path {
			return nil, fmt.Errorf("%w: %s", syncproto.ErrUnknownRepo, p)
		}
		return r, nil
	})
}

func newSyncer(t testing.TB, tr syncproto.Transport, opts *syncproto.SyncerOptions) *syncproto.Syncer {
	t.Helper()
	s, err := syncproto.NewSyncer(tr, sessionOf(peerKey(99)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncOnce runs one Sync of r at testPath and fails the test on error.
func syncOnce(t testing.TB, s *syncproto.Syncer, r syncproto.Repo) syncproto.Stats {
	t.Helper()
	st, err := s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: r})
	if err != nil {
		t.Fatalf("sync: %v (stats %+v)", err, st)
	}
	return st
}

// ids returns a repository's commit ids, sorted.
func ids(r *repo.Repo) []commit.ID {
	out := r.IDs()
	slices.SortFunc(out, commit.CompareIDs)
	return out
}

// requireSame fails unless the repositories hold the same commits and the
// same value for every item.
func requireSame(t testing.TB, a, b *repo.Repo) {
	t.Helper()
	ia, ib := ids(a), ids(b)
	if !slices.Equal(ia, ib) {
		t.Fatalf("commit sets differ: %d vs %d commits", len(ia), len(ib))
	}
	keys := a.Keys(true)
	slices.Sort(keys)
	kb := b.Keys(true)
	slices.Sort(kb)
	if !slices.Equal(keys, kb) {
		t.Fatalf("item keys differ: %v vs %v", keys, kb)
	}
	for _, k := range keys {
		va, _, _ := a.Get(k)
		vb, _, _ := b.Get(k)
		if !item.ItemsEqual(va, vb) {
			t.Fatalf("item %s differs: %v vs %v", k, va, vb)
		}
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
