package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// TestSyncAcrossCompaction, end to end over HTTP: a client database that
// keeps its whole history syncs with a server that compacted the
// repository in one round trip that moves no commit (its resume point
// names the log before the compaction); a new client gets what the server
// kept, with the
// server's values, also once reopened, and syncs on in one round trip.
func TestSyncAcrossCompaction(t *testing.T) {
	sdb := dbtest.OpenDB(t, nil)
	srv := serve(t, sdb, nil, "")
	cli := dbtest.OpenDB(t, nil)
	// More updates than a delta chain holds, so that compaction has
	// history to collect.
	for i := range 3 {
		for v := range 25 {
			mustPut(t, cli, fmt.Sprintf("/data/x/item%d", i), goatdb.Fields{"v": v, "i": i})
		}
	}
	mustSync(t, cli, srv.url)
	r, release, err := sdb.Acquire("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	cst, err := r.Compact(time.Now().Add(time.Second).UnixMilli(), nil)
	release()
	if err != nil || cst.CommitsAfter >= cst.CommitsBefore || cst.Shallow == 0 {
		t.Fatalf("compaction: %+v, %v; want history collected and shallow commits", cst, err)
	}
	for range 2 {
		st := mustSync(t, cli, srv.url)
		if st.Rounds != 1 || st.CommitsSent != 0 || st.CommitsReceived != 0 {
			t.Fatalf("%+v, want one round trip and no commit", st)
		}
		sameValues(t, sdb, cli)
	}
	dir := t.TempDir()
	cold := dbtest.OpenDBIn(t, dir, nil)
	st := mustSync(t, cold, srv.url, "/data/x")
	if st.CommitsReceived != cst.CommitsAfter || len(st.Refused) != 0 {
		t.Fatalf("cold start: %+v, want the %d commits kept", st, cst.CommitsAfter)
	}
	sameValues(t, sdb, cold)
	if err := cold.Close(); err != nil {
		t.Fatal(err)
	}
	cold = dbtest.OpenDBIn(t, dir, nil)
	sameValues(t, sdb, cold)
	if st = mustSync(t, cold, srv.url); st.Rounds != 1 || st.CommitsSent+st.CommitsReceived != 0 {
		t.Fatalf("after the cold start: %+v", st)
	}
}
