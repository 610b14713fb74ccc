package syncproto_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// refuseKey is a Policy that refuses the commits of one item while on,
// and lets everything else through.
type refuseKey struct {
	key string
	on  atomic.Bool
}

func (p *refuseKey) AcceptCommit(_ context.Context, _ string, c *commit.Commit) error {
	if p.on.Load() && c.Key() == p.key {
		return errors.New("not allowed: " + p.key + " is read-only")
	}
	return nil
}

func (p *refuseKey) AdmitCommit(ctx context.Context, path string, c *commit.Commit, _, _ item.Item) error {
	return p.AcceptCommit(ctx, path, c)
}

func (p *refuseKey) View(context.Context, string, syncproto.Repo) (syncproto.View, error) {
	return nil, nil
}

// TestConvergesAfterExcludeAndRestore: the Syncer's digest of a client
// repository follows commits that leave it (repo.Exclude) and come back
// (Restore), although their sequence numbers are behind its cache: after
// the client quarantines a commit the server refused, the next sync
// agrees at once and sends nothing; after the client restores it (the
// server now takes it), the next sync sends it and both hold the same
// commits.
func TestConvergesAfterExcludeAndRestore(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, cli, "ok", 3, 3)
	policy := &refuseKey{key: "bad"}
	policy.on.Store(true)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, &syncproto.ResponderOptions{Policy: policy})),
		&syncproto.SyncerOptions{MaxRounds: 4})
	syncOnce(t, s, cli)
	bad, err := cli.Write(repo.Update{Key: "bad", Fn: func(repo.Current) (item.Item, commit.Schema, error) {
		return item.New(map[string]item.Value{"v": item.Int(1)}), testSchema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	st := syncOnce(t, s, cli) // the Syncer's digest now counts bad
	if len(st.Rejected) != 1 || st.Rejected[0].ID != bad[0].ID() {
		t.Fatalf("rejected %v, want %s", st.Rejected, bad[0].ID().Short())
	}

	if err := cli.Exclude([]commit.ID{bad[0].ID()}, repo.ExcludeQuarantined, st.Rejected[0].Reason); err != nil {
		t.Fatal(err)
	}
	st, err = s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	if err != nil || st.Rounds != 1 || st.CommitsSent != 0 || len(st.Rejected) != 0 || st.Converged != 1 {
		t.Fatalf("sync after excluding: %v, %+v; want one round, nothing sent", err, st)
	}
	requireSame(t, srv, cli)

	policy.on.Store(false)
	if err := cli.Restore([]commit.ID{bad[0].ID()}); err != nil {
		t.Fatal(err)
	}
	st, err = s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	if err != nil || st.CommitsSent != 1 || len(st.Rejected) != 0 {
		t.Fatalf("sync after restoring: %v, %+v; want the restored commit sent", err, st)
	}
	if !srv.Has(bad[0].ID()) {
		t.Fatal("the server lacks the restored commit")
	}
	requireSame(t, srv, cli)
	st = syncOnce(t, s, cli)
	if st.Rounds != 1 || st.CommitsSent+st.CommitsReceived != 0 {
		t.Fatalf("sync once agreed: %+v, want one round and no commits", st)
	}
}

// TestConvergesHoldingExcludedServerCommits: a client that excluded
// commits the server holds and sends it (commits of an item it forgot that
// are its own, say) counts them as refused here, with the reason
// HeldOutside, and agrees with the server; the server keeps them.
func TestConvergesHoldingExcludedServerCommits(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "a", 3, 3)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{MaxRounds: 4})
	syncOnce(t, s, cli)
	h := mustHead(t, cli, "a000000001")
	if err := cli.Exclude([]commit.ID{h}, repo.ExcludeForgotten, "no longer readable"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		st := syncOnce(t, s, cli)
		if st.Converged != 1 || len(st.Refused) != 1 || st.Refused[0].ID != h || st.Refused[0].Reason != syncproto.HeldOutside {
			t.Fatalf("sync: %+v, want agreement with %s refused as held outside", st, h.Short())
		}
	}
	if _, _, ok := cli.Get("a000000001"); ok || !srv.Has(h) {
		t.Fatal("the excluded item came back, or the server lost it")
	}
}

// inFlight is a client repository whose Receive passes over one commit as
// another sync would that is storing it at that moment: neither stored nor
// refused, and not in the graph yet.
type inFlight struct {
	*repo.Repo
	skip commit.ID
}

func (r inFlight) Receive(encs [][]byte) ([]commit.ID, []repo.Rejection, error) {
	keep := encs[:0:0]
	for _, b := range encs {
		if c, err := commit.Decode(b); err == nil && c.ID() == r.skip {
			continue
		}
		keep = append(keep, b)
	}
	return r.Repo.Receive(keep)
}

// TestInFlightCommitNotHeldOutside: a commit that another sync is storing
// while this one receives it is not counted as held outside the synced set
// (which would leave it out of every later agreement with the server).
func TestInFlightCommitNotHeldOutside(t *testing.T) {
	srv := openPeer(t, 1)
	writeItems(t, srv, "a", 3, 1)
	cli := openPeer(t, 2)
	cs, _ := srv.CommitsSince(0)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	st, _ := s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: inFlight{cli, cs[0].ID()}})
	for _, rj := range st.Refused {
		if rj.Reason == syncproto.HeldOutside {
			t.Fatalf("a commit in flight counted as held outside: %+v", st.Refused)
		}
	}
}
