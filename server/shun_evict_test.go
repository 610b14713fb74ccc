package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// TestShunEvictedBelowHorizon: a purge's record is enforced as long as
// this node holds the commits it names, however old; once a compaction
// dropped them and the record is older than the history horizon, the
// index evicts it (the record stays in /sys/shun, marked Evicted): the
// commits it named are refused as below the horizon instead, and what
// builds on them for its missing parents, so nothing of the item comes
// back.
func TestShunEvictedBelowHorizon(t *testing.T) {
	var off atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	sdb := dbtest.OpenDB(t, &goatdb.Options{Now: now})
	run := serve(t, sdb, &server.Options{RateLimit: -1, Now: now}, "")
	cli := dbtest.OpenDB(t, &goatdb.Options{Now: now})
	for v := range 3 {
		mustPut(t, cli, "/data/x/k", goatdb.Fields{"v": v, "secret": "erase me"})
	}
	mustPut(t, cli, "/data/x/other", goatdb.Fields{"v": "stays"})
	mustSync(t, cli, run.url)

	if _, err := run.srv.Purge("/data/x/k", "erasure request"); err != nil {
		t.Fatal(err)
	}
	evicted := func() bool {
		t.Helper()
		shuns, err := run.srv.Shuns()
		if err != nil || len(shuns) != 1 {
			t.Fatalf("shun records: %+v, %v", shuns, err)
		}
		return shuns[0].Evicted
	}
	if evicted() {
		t.Fatal("a new record is evicted")
	}

	// 40 days on: the record is older than the horizon, but this node
	// still holds the commits (it did not compact): it stays.
	off.Store(int64(40 * 24 * time.Hour))
	if evicted() {
		t.Fatal("a record whose commits are still held is evicted")
	}
	if _, err := sdb.Get("/data/x/k"); err != nil {
		t.Fatalf("the server's own read before compaction: %v (the commits are still held)", err)
	}
	cold := dbtest.OpenDB(t, &goatdb.Options{Now: now})
	mustSync(t, cold, run.url, "/data/x")
	if _, err := cold.Get("/data/x/k"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("a new client got the purged item: %v", err)
	}

	res, err := gc.Collect(sdb, "/data/x", &gc.Options{Policy: run.srv.GCPolicy(), Now: now, Drop: run.srv.ShunDrop(), Force: true})
	if err != nil || !res.Compacted {
		t.Fatalf("collect: %+v, %v", res, err)
	}
	if !evicted() {
		t.Fatal("the record is not evicted once its commits are dropped and it is below the horizon")
	}
	if d := run.srv.ShunDrop()("/data/x"); d != nil {
		t.Fatal("ShunDrop still drops from /data/x")
	}

	// The client that had the item writes on it again: its write is
	// refused for the parent the server dropped, the parent as below the
	// horizon; the item does not come back.
	mustPut(t, cli, "/data/x/k", goatdb.Fields{"v": 99, "secret": "erase me"})
	st, err := cli.Sync(context.Background(), run.url)
	if !errors.Is(err, goatdb.ErrRejected) {
		t.Fatalf("sync of a write on the purged history: %v, %+v; want it refused", err, st)
	}
	for _, rj := range st.Rejected {
		if !strings.Contains(rj.Reason, "below horizon") {
			t.Fatalf("refused %+v, want below horizon", rj)
		}
	}
	if _, err := sdb.Get("/data/x/k"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("the purged item on the server: %v", err)
	}
	mustSync(t, cold, run.url)
	if _, err := cold.Get("/data/x/k"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("the purged item reached a client after eviction: %v", err)
	}
	if got := get(t, cold, "/data/x/other"); got["v"] != "stays" {
		t.Fatalf("other: %v", got)
	}
	// A fresh history under the same key is taken.
	mustPut(t, cold, "/data/x/k", goatdb.Fields{"v": "new"})
	mustSync(t, cold, run.url)
	if got := get(t, sdb, "/data/x/k"); got["v"] != "new" {
		t.Fatalf("re-created item on the server: %v", got)
	}
}
