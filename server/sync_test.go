package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// Two clients edit offline, to the same and different fields and items,
// then sync through the server: all three end with the same merged values.
func TestOfflineEditsMerge(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, nil, "")
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)

	mustPut(t, a, "/data/tasks/t1", goatdb.Fields{"title": "shared", "count": 1.0, "note": "base"})
	mustSync(t, a, srv.url)
	mustSync(t, b, srv.url, "/data/tasks")
	if got := get(t, b, "/data/tasks/t1")["title"]; got != "shared" {
		t.Fatalf("b has title %v before the offline edits", got)
	}

	// Offline: different fields of t1, the same field of t1, other items.
	mustPut(t, a, "/data/tasks/t1", goatdb.Fields{"title": "from a"})
	mustPut(t, b, "/data/tasks/t1", goatdb.Fields{"count": 2.0})
	time.Sleep(2 * time.Millisecond) // b writes note last
	mustPut(t, a, "/data/tasks/t1", goatdb.Fields{"note": "a's note"})
	time.Sleep(2 * time.Millisecond)
	mustPut(t, b, "/data/tasks/t1", goatdb.Fields{"note": "b's note"})
	mustPut(t, a, "/data/tasks/ta", goatdb.Fields{"title": "only a"})
	mustPut(t, b, "/data/tasks/tb", goatdb.Fields{"title": "only b"})
	mustPut(t, b, "/data/notes/n1", goatdb.Fields{"text": "a new repository"})

	mustSync(t, a, srv.url)
	mustSync(t, b, srv.url)
	mustSync(t, a, srv.url, "/data/tasks", "/data/notes") // a learns b's merge and b's new repository

	sameValues(t, a, b, srvDB)
	t1 := get(t, a, "/data/tasks/t1")
	want := map[string]any{"title": "from a", "count": 2.0, "note": "b's note"}
	for k, v := range want {
		if t1[k] != v {
			t.Errorf("t1.%s = %v, want %v (all: %v)", k, t1[k], v, t1)
		}
	}
	for _, p := range []string{"/data/tasks/ta", "/data/tasks/tb", "/data/notes/n1"} {
		get(t, srvDB, p)
	}
}

// An empty client that never saw the server names a repository and gets
// all of it; a repository the server lacks is "not found".
func TestEmptyClientCatchesUp(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	for i := range 300 {
		mustPut(t, srvDB, fmt.Sprintf("/data/big/i%03d", i), goatdb.Fields{"n": float64(i)})
	}
	srv := serve(t, srvDB, nil, "")
	c := dbtest.OpenDB(t, nil)
	st := mustSync(t, c, srv.url, "/data/big")
	if st.CommitsReceived != 300 || st.CommitsSent != 0 {
		t.Errorf("received %d, sent %d commits; want 300 and 0", st.CommitsReceived, st.CommitsSent)
	}
	sameValues(t, c, srvDB)

	// Now in sync: one round trip, nothing moves.
	st = mustSync(t, c, srv.url, "/data/big")
	if st.Rounds != 1 || st.CommitsReceived+st.CommitsSent != 0 {
		t.Errorf("in-sync sync: %d rounds, %d commits moved; want 1 and 0", st.Rounds, st.CommitsReceived+st.CommitsSent)
	}

	_, err := c.Sync(context.Background(), srv.url, "/data/missing")
	if err == nil || !errors.Is(err, syncproto.ErrUnknownRepo) {
		t.Errorf("sync of a repository the server lacks: %v, want unknown repository", err)
	}
}

// The background syncer carries a write on one client to another through
// the server's event stream, without polling.
func TestBackgroundSyncDeliversWrites(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, nil, "")
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	slow := &goatdb.SyncOptions{Interval: time.Hour, Repos: []string{"/data/live"}}
	sa, err := a.StartSync([]string{srv.url}, slow)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Stop()
	sb, err := b.StartSync([]string{srv.url}, slow)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	eventually(t, 5*time.Second, "both syncers listening", func() bool {
		return sa.Status()[0].Listening && sb.Status()[0].Listening
	})
	for i := range 20 {
		want := fmt.Sprintf("v%d", i)
		mustPut(t, a, "/data/live/x", goatdb.Fields{"v": want})
		eventually(t, 5*time.Second, "write "+want+" reaches b", func() bool {
			it, err := b.Get("/data/live/x")
			return err == nil && it.Get("v") == want
		})
	}
	// And back, into a repository b creates.
	mustPut(t, b, "/data/other/y", goatdb.Fields{"v": "from b"})
	eventually(t, 5*time.Second, "b's new repository reaches the server", func() bool {
		_, err := srvDB.Get("/data/other/y")
		return err == nil
	})
	if st := sa.Status()[0]; st.Syncs == 0 || st.LastError != nil {
		t.Errorf("a's status: %+v", st)
	}
}

// A client whose server is down backs off and catches up by itself once
// the server is back.
func TestSyncerRecoversAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	srvDB := dbtest.OpenDBIn(t, dir, nil)
	srv := serve(t, srvDB, nil, "")
	a := dbtest.OpenDB(t, nil)
	s, err := a.StartSync([]string{srv.url}, &goatdb.SyncOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	mustPut(t, a, "/data/r/x", goatdb.Fields{"v": 1.0})
	eventually(t, 5*time.Second, "first write on the server", func() bool {
		_, err := srvDB.Get("/data/r/x")
		return err == nil
	})

	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if err := srvDB.Close(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, a, "/data/r/x", goatdb.Fields{"v": 2.0}) // while the server is down
	eventually(t, 5*time.Second, "a failure noticed", func() bool { return s.Status()[0].Failures > 0 })

	srvDB2 := dbtest.OpenDBIn(t, dir, nil)
	serve(t, srvDB2, nil, srv.addr)
	eventually(t, 10*time.Second, "the write made offline reaches the restarted server", func() bool {
		it, err := srvDB2.Get("/data/r/x")
		return err == nil && it.Get("v") == 2.0
	})
}

// Servers that list each other as peers replicate: a write on one server's
// client reaches a client of the other.
func TestServersReplicate(t *testing.T) {
	dbA, dbB := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	fast := &goatdb.SyncOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	srvB := serve(t, dbB, nil, "")
	srvA := serve(t, dbA, &server.Options{Peers: []string{srvB.url}, PeerSync: fast}, "")

	ca, cb := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	mustPut(t, ca, "/data/rep/x", goatdb.Fields{"v": "written via A"})
	mustSync(t, ca, srvA.url)
	eventually(t, 10*time.Second, "A replicates to B", func() bool {
		_, err := dbB.Get("/data/rep/x")
		return err == nil
	})
	mustSync(t, cb, srvB.url, "/data/rep")
	if got := get(t, cb, "/data/rep/x")["v"]; got != "written via A" {
		t.Errorf("client of B reads %v", got)
	}

	// B's side: a new repository written to B reaches A (A follows B).
	mustPut(t, cb, "/data/rep2/y", goatdb.Fields{"v": "written via B"})
	mustSync(t, cb, srvB.url)
	eventually(t, 10*time.Second, "A follows B's new repository", func() bool {
		_, err := dbA.Get("/data/rep2/y")
		return err == nil
	})
}
