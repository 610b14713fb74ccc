package syncproto_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// The tests of this file sync a client that keeps its whole history with a
// server that compacted its log (repo.Repo.Compact) at horizon h.

// compacted returns a server, a client holding the same full history
// (synced before the compaction, its resume points in resumes), their
// clock, and the horizon the server then compacted at: 37 days before
// horizonNow, at midnight UTC, plus offset.
func compacted(t *testing.T, offset time.Duration) (srv, cli *repo.Repo, resumes *syncproto.MemResumes, clk *clock, h int64) {
	t.Helper()
	clk = &clock{}
	srv, other := openTimed(t, 0, clk), openTimed(t, 1, clk)
	cli = openTimed(t, 2, clk)
	history(t, srv, other, clk, horizonNow)
	resumes = &syncproto.MemResumes{}
	syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes}), cli)
	requireSame(t, srv, cli)
	h = horizonNow.Add(-37 * day).Truncate(day).Add(offset).UnixMilli()
	before := len(ids(srv))
	if _, err := srv.Compact(h, nil); err != nil {
		t.Fatal(err)
	}
	if srv.Horizon() != h {
		t.Fatalf("horizon %d after Compact(%d)", srv.Horizon(), h)
	}
	if after := len(ids(srv)); after >= before {
		t.Fatalf("compaction kept %d of %d commits", after, before)
	}
	return srv, cli, resumes, clk, h
}

// sameFrom fails unless a and b hold the same commits from h on, and the
// same value for every item.
func sameFrom(t *testing.T, a, b *repo.Repo, h int64) {
	t.Helper()
	an, ad := aboveHorizon(a, h)
	bn, bd := aboveHorizon(b, h)
	if an != bn || ad != bd {
		t.Fatalf("commits from the horizon on differ: %d vs %d", an, bn)
	}
	sameValues(t, a, b)
}

// sameValues fails unless a and b hold the same items with the same values.
func sameValues(t *testing.T, a, b *repo.Repo) {
	t.Helper()
	ka, kb := a.Keys(true), b.Keys(true)
	slices.Sort(ka)
	slices.Sort(kb)
	if !slices.Equal(ka, kb) {
		t.Fatalf("item keys differ: %v vs %v", ka, kb)
	}
	for _, k := range ka {
		va, _, _ := a.Get(k)
		vb, _, _ := b.Get(k)
		ha, _ := a.Head(k)
		hb, _ := b.Head(k)
		if !item.ItemsEqual(va, vb) || ha != hb {
			t.Fatalf("item %s differs: %v (head %s) vs %v (head %s)", k, va, ha.Short(), vb, hb.Short())
		}
	}
}

// TestHorizonDigestEqual: a client keeping its whole history and a
// compacted server have the same count and digest of commits from the
// horizon on, though the client holds more, and converge in one round
// trip that sends no commit, by resume point (which names the old epoch)
// or by filter, at a horizon at midnight or inside a day.
func TestHorizonDigestEqual(t *testing.T) {
	for _, offset := range []time.Duration{0, 5*time.Hour + 17*time.Millisecond} {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			srv, cli, resumes, _, h := compacted(t, offset)
			if len(ids(cli)) <= len(ids(srv)) {
				t.Fatalf("client holds %d commits, server %d: want more", len(ids(cli)), len(ids(srv)))
			}
			sameFrom(t, srv, cli, h)
			for _, res := range []*syncproto.MemResumes{resumes, nil} {
				opts := &syncproto.SyncerOptions{}
				if res != nil {
					opts.Resumes = res
				}
				s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), opts)
				st := syncOnce(t, s, cli)
				if st.Rounds != 1 || st.CommitsSent != 0 || st.CommitsReceived != 0 || st.Converged != 1 {
					t.Fatalf("resume %v: %+v, want one round trip with no commit", res != nil, st)
				}
				// The next sync names the horizon and resumes.
				if st = syncOnce(t, s, cli); st.Rounds != 1 || st.BytesSent+st.BytesReceived > 250 {
					t.Fatalf("resume %v, again: %+v", res != nil, st)
				}
			}
			// Both sides write; they converge, and agree from the horizon on.
			for i := range 3 {
				write(t, srv, fmt.Sprintf("item%02d", i), "srv", item.Int(1))
				write(t, cli, fmt.Sprintf("item%02d", 10+i), "cli", item.Int(2))
			}
			st := syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes}), cli)
			if st.CommitsSent != 3 || st.CommitsReceived != 3 || len(st.Rejected) != 0 {
				t.Fatalf("%+v, want 3 commits each way", st)
			}
			sameFrom(t, srv, cli, h)
		})
	}
}

func write(t *testing.T, r *repo.Repo, key, field string, v item.Value) *commit.Commit {
	t.Helper()
	cs, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		return cur.Value.With(field, v), testSchema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// TestCollectedNeverResent: after the server compacted, a client with the
// whole history pushes none of the commits it collected, by resume point
// or by filter (repair included); a commit below the horizon pushed
// explicitly is refused "below horizon"; and a commit the client wrote
// since, stamped below the horizon, is refused once and not offered again.
func TestCollectedNeverResent(t *testing.T) {
	srv, cli, resumes, clk, h := compacted(t, 0)
	for _, opts := range []*syncproto.SyncerOptions{{Resumes: resumes}, {}, {RepairEvery: 1}} {
		s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), opts)
		for range 2 {
			if st := syncOnce(t, s, cli); st.CommitsSent != 0 || len(st.Rejected) != 0 {
				t.Fatalf("%+v: %+v, want nothing pushed", opts, st)
			}
		}
	}
	// A collected commit, pushed explicitly.
	var old *commit.Commit
	all, _ := cli.CommitsSince(0)
	for _, c := range all {
		if _, held := srv.Commit(c.ID()); !held {
			old = c
			break
		}
	}
	if old == nil || old.Time() >= h {
		t.Fatal("no collected commit below the horizon")
	}
	resp, err := serve(t, srv, nil).Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{
		Path: testPath, Horizon: h, Count: 1, Commits: [][]byte{old.Encode()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if rj := resp.Repos[0].Rejected; len(rj) != 1 || rj[0].ID != old.ID() || !strings.Contains(rj[0].Reason, "below horizon") {
		t.Fatalf("rejected %+v, want %s below horizon", rj, old.ID().Short())
	}
	if _, held := srv.Commit(old.ID()); held || len(resp.Repos[0].Missing) != 0 {
		t.Fatalf("server stored the collected commit, or misses %v", resp.Repos[0].Missing)
	}
	// A write stamped below the horizon (a clock 40 days behind): refused
	// once with the reason, then not offered again.
	clk.set(horizonNow.Add(-40 * day))
	late := write(t, cli, "late", "title", item.String("written offline"))
	clk.set(horizonNow)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes})
	st := syncOnce(t, s, cli)
	if len(st.Rejected) != 1 || st.Rejected[0].ID != late.ID() || !strings.Contains(st.Rejected[0].Reason, "below horizon") || st.Converged != 1 {
		t.Fatalf("%+v, want %s rejected below horizon", st, late.ID().Short())
	}
	for range 2 {
		if st = syncOnce(t, s, cli); st.CommitsSent != 0 || len(st.Rejected) != 0 || st.Rounds != 1 {
			t.Fatalf("again: %+v, want the refused commit not offered", st)
		}
	}
	// An item written offline below the horizon, then on top of it after:
	// found by filter, the new commit is refused for its missing parent,
	// which the client then sends (no filter looks below the horizon), and
	// which is refused for good. The refusal reported is the parent's: the
	// child is quarantined with it.
	clk.set(horizonNow.Add(-40 * day))
	parent := write(t, cli, "offline", "title", item.String("written offline"))
	clk.set(horizonNow)
	child := write(t, cli, "offline", "title", item.String("and edited since"))
	st = syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), cli)
	reasons := map[commit.ID]string{}
	for _, rj := range st.Rejected {
		reasons[rj.ID] = rj.Reason
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[parent.ID()], repo.BelowHorizon) || st.Converged != 1 {
		t.Fatalf("%+v, want %s (sent after %s) below horizon", st, parent.ID().Short(), child.ID().Short())
	}
}

// afterCompaction builds a server of items items written 60 days before
// horizonNow, half of them updated 10 days before, and a client that
// synced with it (its resume points in the returned store); then the
// server takes behind more updates the client does not have, and compacts
// at 37 days before horizonNow. It returns the two and the store.
func afterCompaction(t testing.TB, items, behind int) (srv, cli *repo.Repo, resumes *syncproto.MemResumes) {
	t.Helper()
	clk := &clock{}
	open := func(i int) *repo.Repo {
		return dbtest.OpenRepo(t, "/peer.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(i), Now: clk.now,
			Trusted: true, Durability: repo.Async})
	}
	srv, cli = open(0), open(1)
	clk.set(horizonNow.Add(-60 * day))
	writeItems(t, srv, "k", items, 1000)
	clk.set(horizonNow.Add(-10 * day))
	touch := func(from, n int) {
		var ups []repo.Update
		for i := from; i < from+n; i++ {
			ups = append(ups, repo.Update{Key: fmt.Sprintf("k%09d", i), Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
				return cur.Value.With("count", item.Int(-1)), cur.Schema, nil
			}})
			if len(ups) == 1000 {
				if _, err := srv.Write(ups...); err != nil {
					t.Fatal(err)
				}
				ups = nil
			}
		}
		if _, err := srv.Write(ups...); err != nil {
			t.Fatal(err)
		}
	}
	touch(0, items/2)
	clk.set(horizonNow)
	resumes = &syncproto.MemResumes{}
	syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes, RepairEvery: -1}), cli)
	if behind > 0 {
		clk.set(horizonNow.Add(-time.Hour))
		touch(items/2, behind)
		clk.set(horizonNow)
	}
	if _, err := srv.Compact(horizonNow.Add(-37*day).Truncate(day).UnixMilli(), nil); err != nil {
		t.Fatal(err)
	}
	return srv, cli, resumes
}

// TestResumeAfterCompaction: a client whose resume point names the log a
// compaction replaced syncs in one round trip of a few hundred bytes if it
// was up to date, and with one reconciliation round (a Bloom round) if the
// server has commits it lacks, but when a false positive hid one of them:
// a follow-up round, which the filters are sized to need in about 2% of
// rounds (syncproto doc), so in few of the trials. The figures of the
// first trial are logged.
func TestResumeAfterCompaction(t *testing.T) {
	const items = 1000
	for _, behind := range []int{0, 10} {
		trials, followUps := 1, 0
		if behind > 0 {
			trials = 8
		}
		for trial := range trials {
			srv, cli, resumes := afterCompaction(t, items, behind)
			s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes, RepairEvery: -1})
			st := syncOnce(t, s, cli)
			if trial == 0 {
				t.Logf("%d items, %d commits from the horizon on, client %d behind: %d round trips, %d B up, %d B down, %d commits received",
					items, items/2+behind, behind, st.Rounds, st.BytesSent, st.BytesReceived, st.CommitsReceived)
			}
			switch {
			case st.CommitsReceived != behind || st.CommitsSent != 0:
				t.Fatalf("%+v, want the %d commits it lacked and none pushed", st, behind)
			case behind == 0 && (st.Rounds != 1 || st.BytesSent+st.BytesReceived > 400):
				t.Fatalf("up to date: %+v, want one round trip of a few hundred bytes", st)
			case behind > 0 && st.Rounds > 3:
				t.Fatalf("behind: %+v, want at most one reconciliation round and one follow-up", st)
			case behind > 0 && st.Rounds == 3:
				followUps++
			}
			sameValues(t, srv, cli)
			if st = syncOnce(t, s, cli); st.Rounds != 1 || st.BytesSent+st.BytesReceived > 250 {
				t.Fatalf("the next sync: %+v, want one small round trip", st)
			}
		}
		if followUps > 2 {
			t.Fatalf("client %d behind: %d of %d syncs needed a follow-up round", behind, followUps, trials)
		}
	}
}

// BenchmarkResumeAfterCompaction measures the first sync after the server
// compacted, of a client that synced before: 10,000 items, 5,000 of them
// updated after the horizon, the client up to date or 100 updates behind.
func BenchmarkResumeAfterCompaction(b *testing.B) {
	for _, behind := range []int{0, 100} {
		b.Run(fmt.Sprintf("behind=%d", behind), func(b *testing.B) {
			var rounds, up, down int64
			for range b.N {
				b.StopTimer()
				srv, cli, resumes := afterCompaction(b, 10_000, behind)
				s := newSyncer(b, syncproto.Loopback(serve(b, srv, nil)), &syncproto.SyncerOptions{Resumes: resumes, RepairEvery: -1})
				b.StartTimer()
				st := syncOnce(b, s, cli)
				rounds, up, down = rounds+int64(st.Rounds), up+st.BytesSent, down+st.BytesReceived
			}
			b.ReportMetric(float64(rounds)/float64(b.N), "rt/sync")
			b.ReportMetric(float64(up)/float64(b.N), "sent-B/sync")
			b.ReportMetric(float64(down)/float64(b.N), "recv-B/sync")
		})
	}
}

// TestColdStartFromCollectedServer: a client that holds nothing gets
// everything the compacted server kept (old current heads, shallow roots
// and their generations, delta bases), also when the answers are cut
// short; its values and heads equal the server's, nothing is pending,
// it keeps them when reopened, and it syncs on as any client.
func TestColdStartFromCollectedServer(t *testing.T) {
	srv, _, _, clk, h := compacted(t, 0)
	var oldHeads, shallow int
	for _, k := range srv.Keys(true) {
		if id, _ := srv.Head(k); func() bool { c, _ := srv.Commit(id); return c.Time() < h }() {
			oldHeads++
		}
		for _, in := range srv.History(k) {
			if in.Shallow {
				shallow++
			}
		}
	}
	if oldHeads == 0 || shallow == 0 {
		t.Fatalf("%d old heads, %d shallow roots on the server: want some of each", oldHeads, shallow)
	}
	for i, maxSend := range []int{0, 1500} {
		fs := vfs.NewMem()
		opts := &repo.Options{FS: fs, Key: peerKey(3 + i), Now: clk.now}
		cold := dbtest.OpenRepo(t, "/cold.log", opts)
		s := newSyncer(t, syncproto.Loopback(serve(t, srv, &syncproto.ResponderOptions{MaxSendBytes: maxSend})), &syncproto.SyncerOptions{MaxRounds: 100})
		st := syncOnce(t, s, cold)
		t.Logf("max send %d: %d round trips, %d commits (server %d), %d B down", maxSend, st.Rounds, st.CommitsReceived, len(ids(srv)), st.BytesReceived)
		if !slices.Equal(ids(cold), ids(srv)) || len(st.Refused) != 0 {
			t.Fatalf("max send %d: %d commits here, the server kept %d; refused %v", maxSend, len(ids(cold)), len(ids(srv)), st.Refused)
		}
		if m := cold.Missing(); len(m) != 0 {
			t.Fatalf("max send %d: %d commits pending", maxSend, len(m))
		}
		sameValues(t, srv, cold)
		if maxSend > 0 && st.Rounds < 3 {
			t.Fatalf("%d round trips: the send budget should cut answers short", st.Rounds)
		}
		if st = syncOnce(t, s, cold); st.Rounds != 1 || st.CommitsReceived+st.CommitsSent != 0 {
			t.Fatalf("again: %+v", st)
		}
		// Reopened, it still holds them all, complete.
		if err := cold.Close(); err != nil {
			t.Fatal(err)
		}
		cold = dbtest.OpenRepo(t, "/cold.log", opts)
		if m := cold.Missing(); len(m) != 0 || !slices.Equal(ids(cold), ids(srv)) {
			t.Fatalf("reopened: %d pending, %d commits", len(m), len(ids(cold)))
		}
		sameValues(t, srv, cold)
		// It writes on top of a shallow root's item, and the server takes it.
		write(t, cold, "item15", "cold", item.Int(int64(i)))
		if st = syncOnce(t, s, cold); st.CommitsSent != 1 || len(st.Rejected) != 0 {
			t.Fatalf("push: %+v", st)
		}
		sameValues(t, srv, cold)
	}
}

// TestHorizonRestrictedView: the same through a view of part of the
// repository: a client that synced its view before the compaction agrees
// with the compacted server at once, by resume point or by filter, at a
// horizon inside a day; a client that holds nothing gets the view's part
// of what the server kept.
func TestHorizonRestrictedView(t *testing.T) {
	clk := &clock{}
	srv, other, cli := openTimed(t, 0, clk), openTimed(t, 1, clk), openTimed(t, 2, clk)
	history(t, srv, other, clk, horizonNow)
	policy := newRulePolicy(prefixed("item0", "item2"), cli.Session())
	resp, err := syncproto.NewResponder(single(testPath, srv), &syncproto.ResponderOptions{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	resumes := &syncproto.MemResumes{}
	syncOnce(t, newSyncer(t, syncproto.Loopback(resp), &syncproto.SyncerOptions{Resumes: resumes}), cli)
	h := horizonNow.Add(-37 * day).Truncate(day).Add(3*time.Hour + 1).UnixMilli()
	if _, err := srv.Compact(h, nil); err != nil {
		t.Fatal(err)
	}
	for _, res := range []*syncproto.MemResumes{resumes, {}} {
		s := newSyncer(t, syncproto.Loopback(resp), &syncproto.SyncerOptions{Resumes: res})
		for range 2 {
			if st := syncOnce(t, s, cli); st.Rounds != 1 || st.CommitsSent+st.CommitsReceived != 0 {
				t.Fatalf("%+v, want one round trip with no commit", st)
			}
		}
	}
	write(t, srv, "item05", "late", item.Int(1))
	write(t, srv, "item15", "late", item.Int(1))
	if st := syncOnce(t, newSyncer(t, syncproto.Loopback(resp), &syncproto.SyncerOptions{Resumes: resumes}), cli); st.CommitsReceived != 1 || st.Rounds != 1 {
		t.Fatalf("%+v, want the one commit in view, resumed", st)
	}
	cold := openTimed(t, 3, clk)
	syncOnce(t, newSyncer(t, syncproto.Loopback(resp), nil), cold)
	in, _ := inView(t, policy, srv)
	holdsExactly(t, cold, in)
	if m := cold.Missing(); len(m) != 0 {
		t.Fatalf("%d commits pending", len(m))
	}
	for _, k := range cold.Keys(true) {
		a, _, _ := srv.Get(k)
		b, _, _ := cold.Get(k)
		if !item.ItemsEqual(a, b) {
			t.Fatalf("item %s differs", k)
		}
	}
}

// TestHorizonWireVersions: messages about repositories that never
// collected history are version 1, as before horizons, so that builds
// that predate them go on syncing them; about a compacted one, the
// server's answers and the requests of a client that heard of its horizon
// are version 2, which such builds refuse by version. (A first contact's
// rateless exchange is version 3, with or without horizons.)
func TestHorizonWireVersions(t *testing.T) {
	clk := &clock{}
	srv, other, cli := openTimed(t, 0, clk), openTimed(t, 1, clk), openTimed(t, 2, clk)
	history(t, srv, other, clk, horizonNow)
	var reqs, resps []byte
	resp := serve(t, srv, nil)
	tr := syncproto.TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		out, err := resp.HandleMessage(ctx, req)
		if err == nil {
			reqs, resps = append(reqs, req[0]), append(resps, out[0])
		}
		return out, err
	})
	s := newSyncer(t, tr, nil)
	syncOnce(t, s, cli) // cold
	write(t, cli, "item00", "v", item.Int(1))
	syncOnce(t, s, cli) // resumed
	syncOnce(t, newSyncer(t, tr, &syncproto.SyncerOptions{RepairEvery: 1}), cli)
	for i := range reqs {
		if reqs[i] == syncproto.VersionSketch && (resps[i] == syncproto.Version || resps[i] == syncproto.VersionSketch) {
			continue // the first contact of the third syncer
		}
		if reqs[i] != syncproto.Version || resps[i] != syncproto.Version {
			t.Fatalf("round %d: request version %d, answer version %d; want %d", i, reqs[i], resps[i], syncproto.Version)
		}
	}
	if _, err := srv.Compact(horizonNow.Add(-37*day).Truncate(day).UnixMilli(), nil); err != nil {
		t.Fatal(err)
	}
	reqs, resps = nil, nil
	syncOnce(t, s, cli)
	syncOnce(t, s, cli)
	if len(reqs) != 2 || reqs[0] != syncproto.Version || reqs[1] != syncproto.VersionHorizon ||
		resps[0] != syncproto.VersionHorizon || resps[1] != syncproto.VersionHorizon {
		t.Fatalf("after the compaction: requests %v, answers %v; want [1 2], [2 2]", reqs, resps)
	}
	// Any answer with a horizon field is version 2.
	msg, err := syncproto.EncodeResponse(&syncproto.Response{Repos: []syncproto.RepoResponse{{Path: testPath, Horizon: 1}}})
	if err != nil || msg[0] != syncproto.VersionHorizon {
		t.Fatalf("%v, version %d", err, msg[0])
	}
}

// TestSyncDuringCompaction: clients sync, and the server takes writes,
// while it compacts; whatever a sync saw, the next ones converge and the
// values agree.
func TestSyncDuringCompaction(t *testing.T) {
	clk := &clock{}
	srv, other := openTimed(t, 0, clk), openTimed(t, 1, clk)
	history(t, srv, other, clk, horizonNow)
	clis := []*repo.Repo{openTimed(t, 2, clk), openTimed(t, 3, clk)}
	resp := serve(t, srv, nil)
	syncers := []*syncproto.Syncer{newSyncer(t, syncproto.Loopback(resp), nil), newSyncer(t, syncproto.Loopback(resp), nil)}
	syncOnce(t, syncers[0], clis[0]) // one full history, one cold
	h := horizonNow.Add(-37 * day).Truncate(day).UnixMilli()
	done := make(chan error, 1)
	go func() {
		var err error
		for i := range 3 {
			v := item.Int(int64(i))
			if _, err = srv.Write(repo.Update{Key: fmt.Sprintf("item%02d", i), Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
				return cur.Value.With("during", v), testSchema, nil
			}}); err != nil {
				break
			}
			if _, err = srv.Compact(h+int64(i)*3_600_000, nil); err != nil {
				break
			}
		}
		done <- err
	}()
	for i := 0; ; i++ {
		for j, c := range clis {
			write(t, c, fmt.Sprintf("item%02d", 10+j), "client", item.Int(int64(i)))
			// Not converging within a sync is allowed while the server
			// changes under it; failing otherwise is not.
			if _, err := syncers[j].Sync(context.Background(), syncproto.Local{Path: testPath, Repo: c}); err != nil && !errorsIs(err, syncproto.ErrNotConverged) {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			for j, c := range clis {
				syncOnce(t, syncers[j], c)
			}
			for j, c := range clis {
				if st := syncOnce(t, syncers[j], c); st.Rounds != 1 || st.CommitsSent+st.CommitsReceived != 0 {
					t.Fatalf("client %d: %+v, want in sync", j, st)
				}
				sameValues(t, srv, c)
				if m := c.Missing(); len(m) != 0 {
					t.Fatalf("client %d: %d commits pending", j, len(m))
				}
			}
			return
		default:
		}
	}
}

// swapRepo starts a compaction of its repository, once armed, when a
// sync's answer lists its commits, and gives it a moment to swap. It
// records the epoch the answer read the horizon at and the one it listed
// at.
type swapRepo struct {
	*repo.Repo
	h                 int64 // the horizon to compact at
	armed             atomic.Bool
	atHorizon, atList uint64
	done              chan error
}

func (s *swapRepo) Horizon() int64 {
	if s.armed.Load() {
		s.atHorizon = s.Repo.Epoch()
	}
	return s.Repo.Horizon()
}

func (s *swapRepo) StampsSince(seq uint64) ([]repo.Stamp, uint64) {
	if s.armed.CompareAndSwap(true, false) {
		swapped := make(chan error, 1)
		go func() {
			_, err := s.Repo.Compact(s.h, nil)
			swapped <- err
		}()
		select {
		case err := <-swapped:
			s.done <- err
		case <-time.After(200 * time.Millisecond):
			go func() { s.done <- <-swapped }()
		}
		s.atList = s.Repo.Epoch()
	}
	return s.Repo.StampsSince(seq)
}

// TestAnswerSeesOneState: a compaction ready to swap while a sync's
// answer is made waits for the answer, which reads its horizon and lists
// its commits in one state of the repository; the client ends with the
// server's values.
func TestAnswerSeesOneState(t *testing.T) {
	clk := &clock{}
	srv, other := openTimed(t, 0, clk), openTimed(t, 1, clk)
	history(t, srv, other, clk, horizonNow)
	sr := &swapRepo{Repo: srv, h: horizonNow.Add(-37 * day).Truncate(day).UnixMilli(), done: make(chan error, 1)}
	cli := openTimed(t, 2, clk)
	syncer := newSyncer(t, syncproto.Loopback(serve(t, sr, nil)), nil)
	epoch := srv.Epoch()
	sr.armed.Store(true)
	syncOnce(t, syncer, cli)
	if err := <-sr.done; err != nil {
		t.Fatal(err)
	}
	if srv.Epoch() == epoch {
		t.Fatal("the compaction did not swap")
	}
	if sr.atHorizon != epoch || sr.atList != epoch {
		t.Fatalf("the answer read the horizon at epoch %d and listed at %d, want both %d (before the swap)", sr.atHorizon, sr.atList, epoch)
	}
	syncOnce(t, syncer, cli)
	sameValues(t, srv, cli)
	if m := cli.Missing(); len(m) != 0 {
		t.Fatalf("client: %d commits pending", len(m))
	}
}
