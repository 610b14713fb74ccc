package syncproto_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb/syncproto"
)

func TestInSyncOneRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeRandom(t, srv, rng, 30)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	syncOnce(t, s, cli)
	requireSame(t, srv, cli)

	// With a resume point: a few dozen bytes each way.
	st := syncOnce(t, s, cli)
	if st.Rounds != 1 || st.CommitsSent != 0 || st.CommitsReceived != 0 {
		t.Fatalf("in-sync sync: %+v, want one round trip and no commits", st)
	}
	if n := st.BytesSent + st.BytesReceived; n > 200 {
		t.Fatalf("in-sync sync: %d bytes on the wire, want <= 200", n)
	}
	t.Logf("in sync, resuming: %d + %d bytes", st.BytesSent, st.BytesReceived)

	// A new Syncer has no resume point: it sends a filter (first contact),
	// but equal digests still end the sync in one round trip.
	fresh := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	st = syncOnce(t, fresh, cli)
	if st.Rounds != 1 || st.CommitsSent != 0 || st.CommitsReceived != 0 || st.BytesReceived > 100 {
		t.Fatalf("in-sync first contact: %+v, want one round trip, no commits, a short answer", st)
	}
	t.Logf("in sync, first contact: %d + %d bytes", st.BytesSent, st.BytesReceived)
}

func TestEmptyClientCatchesUpInBulk(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "a", 500, 100)
	writeRandom(t, srv, rand.New(rand.NewPCG(3, 4)), 50)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	st := syncOnce(t, s, cli)
	if st.Rounds != 1 || st.CommitsReceived != len(srv.IDs()) || st.CommitsSent != 0 {
		t.Fatalf("bulk: %+v, want one round trip receiving all %d commits", st, len(srv.IDs()))
	}
	requireSame(t, srv, cli)
}

func TestEmptyServerGetsEverything(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, cli, "a", 300, 100)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	st := syncOnce(t, s, cli)
	if st.Rounds > 2 || st.CommitsSent != len(cli.IDs()) {
		t.Fatalf("push to empty server: %+v, want <= 2 round trips sending all %d commits once", st, len(cli.IDs()))
	}
	requireSame(t, srv, cli)
}

func TestResumeSendsOnlyNew(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "a", 1000, 250)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	syncOnce(t, s, cli)
	oneRT := 0
	const syncs = 100
	for i := range syncs {
		// Both sides write to the same few items: each sync merges.
		writeRandom(t, srv, rng, 1+rng.IntN(5))
		writeRandom(t, cli, rng, 1+rng.IntN(5))
		st := syncOnce(t, s, cli)
		if st.CommitsSent+st.CommitsReceived > 40 {
			t.Fatalf("sync %d: %+v, want only the new commits", i, st)
		}
		if st.Rounds == 1 {
			oneRT++
		}
		requireSame(t, srv, cli)
	}
	t.Logf("%d of %d syncs in one round trip", oneRT, syncs)
	if oneRT < syncs*97/100 {
		t.Fatalf("%d of %d syncs in one round trip, want 97%%", oneRT, syncs)
	}
}

// TestBloomPathWithoutResume: a sync without a resume point costs about
// the difference, in at most three round trips but when a false positive
// hid a commit: a follow-up round, which the filters are sized to need in
// about 2% of rounds (syncproto doc), so in few of the trials.
func TestBloomPathWithoutResume(t *testing.T) {
	for _, n := range []int{1, 10, 200} {
		const trials = 8
		followUps := 0
		for trial := range trials {
			rng := rand.New(rand.NewPCG(uint64(n), uint64(7+trial)))
			srv, cli := openPeer(t, 0), openPeer(t, 1)
			writeItems(t, srv, "a", 1000, 500)
			syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), cli)
			writeRandom(t, srv, rng, n)
			writeItems(t, cli, "c", n, 50)
			// A new syncer has no resume point: the Bloom path.
			st := syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), cli)
			requireSame(t, srv, cli)
			if st.Rounds > 3 {
				followUps++
			}
			if st.Rounds > 5 {
				t.Fatalf("%d new on each side: %d rounds", n, st.Rounds)
			}
			if st.CommitsSent > 2*n || st.CommitsReceived > 2*n {
				t.Fatalf("%d new on each side: %+v, want about the difference", n, st)
			}
			if trial == 0 {
				t.Logf("%d new on each side: %+v", n, st)
			}
		}
		if followUps > 2 {
			t.Fatalf("%d new on each side: %d of %d syncs needed more than 3 rounds", n, followUps, trials)
		}
	}
}

func TestEpochChange(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "a", 100, 100)
	resumes := &syncproto.MemResumes{}
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes})
	syncOnce(t, s, cli)
	// The server's log was rewritten (compaction): same commits, new epoch.
	srv2 := openPeer(t, 0)
	syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), srv2)
	writeItems(t, srv2, "b", 5, 5)
	s2 := newSyncer(t, syncproto.Loopback(serve(t, srv2, nil)), &syncproto.SyncerOptions{Resumes: resumes})
	st := syncOnce(t, s2, cli)
	requireSame(t, srv2, cli)
	if st.CommitsReceived != 5 {
		t.Fatalf("after epoch change: %+v, want the 5 new commits", st)
	}
	r, _ := resumes.LoadResume(testPath)
	if r.ServerEpoch != srv2.Epoch() {
		t.Fatalf("resume point epoch %x, want the new log's %x", r.ServerEpoch, srv2.Epoch())
	}
}

func TestUnknownRepository(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	_, err := s.Sync(context.Background(), syncproto.Local{Path: "/data/other", Repo: cli})
	if err == nil || !errorsIs(err, syncproto.ErrUnknownRepo) {
		t.Fatalf("sync of unknown repository: %v, want ErrUnknownRepo", err)
	}
}
