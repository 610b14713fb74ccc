package gc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// later is a clock 100 days on: every commit written now is past its
// horizon.
func later() time.Time { return time.Now().Add(100 * 24 * time.Hour) }

// busyRepo writes n updates to each of a few items of /data/t.
func busyRepo(t *testing.T, n int) *goatdb.DB {
	t.Helper()
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	for i := range n {
		for _, k := range []string{"a", "b", "c"} {
			if _, err := db.Put("/data/t/"+k, goatdb.Fields{"n": i, "pad": strings.Repeat("x", 200)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestCollect: a dry run reports and changes nothing; a collection past
// the horizon keeps every current value and shrinks the log; the same
// horizon again is "up to date"; a repository with too little to collect
// is left alone unless forced.
func TestCollect(t *testing.T) {
	db := busyRepo(t, 300)
	before, err := db.LogSize("/data/t")
	if err != nil {
		t.Fatal(err)
	}
	opts := &gc.Options{Now: later, Policy: gc.Policy{MinBytes: 1}}

	dry := *opts
	dry.DryRun = true
	res, err := gc.Collect(db, "/data/t", &dry)
	if err != nil {
		t.Fatal(err)
	}
	if res.Compacted || res.Skipped != "dry run" || res.Stats.BytesAfter >= res.Stats.BytesBefore || res.Stats.CommitsAfter >= res.Stats.CommitsBefore {
		t.Errorf("dry run: %+v, want a plan that reclaims, and nothing done", res)
	}
	if size, _ := db.LogSize("/data/t"); size != before {
		t.Errorf("a dry run changed the log: %d bytes, was %d", size, before)
	}

	res, err = gc.Collect(db, "/data/t", opts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := db.LogSize("/data/t")
	if !res.Compacted || after >= before || after != res.Stats.BytesAfter {
		t.Errorf("collect: %+v, log %d → %d bytes; want compacted and smaller", res, before, after)
	}
	for _, k := range []string{"a", "b", "c"} {
		it, err := db.Get("/data/t/" + k)
		if err != nil || fmt.Sprint(it.Fields()["n"]) != "299" {
			t.Errorf("%s after collection: %v, %v; want n = 299", k, it.Fields(), err)
		}
	}
	if res, err := gc.Collect(db, "/data/t", opts); err != nil || res.Compacted || res.Skipped != "up to date" {
		t.Errorf("again at the same horizon: %+v, %v; want up to date", res, err)
	}

	small := busyRepo(t, 3)
	if res, err := gc.Collect(small, "/data/t", &gc.Options{Now: later}); err != nil || res.Compacted || !strings.HasPrefix(res.Skipped, "too little") {
		t.Errorf("a small repository: %+v, %v; want too little to collect", res, err)
	}
	if res, err := gc.Collect(small, "/data/t", &gc.Options{Now: later, Force: true}); err != nil || !res.Compacted {
		t.Errorf("forced: %+v, %v; want compacted", res, err)
	}
	if _, err := gc.Collect(small, "/data/nothing", nil); err == nil {
		t.Error("collecting a repository that does not exist succeeded")
	}
}

// TestCollectorStops: the background collector collects on start and
// stops.
func TestCollectorStops(t *testing.T) {
	db := busyRepo(t, 300)
	before, _ := db.LogSize("/data/t")
	c, err := gc.Start(db, &gc.CollectorOptions{Options: gc.Options{Now: later, Policy: gc.Policy{MinBytes: 1}}, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if size, _ := db.LogSize("/data/t"); size < before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the collector did not compact within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Stop()
	_ = context.Background()
}

// TestCollectedHistory: after a collection, History marks the oldest
// commits kept as Collected, and a value as of a time before them is
// ErrCollected, not "not found".
func TestCollectedHistory(t *testing.T) {
	db := busyRepo(t, 50)
	first := time.Now().Add(-time.Hour) // before every commit
	if _, err := gc.Collect(db, "/data/t", &gc.Options{Now: later, Force: true}); err != nil {
		t.Fatal(err)
	}
	hist, err := db.History("/data/t/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) >= 50 || !hist[len(hist)-1].Collected {
		t.Errorf("history of %d commits, the oldest collected %v; want fewer than 50 and the oldest marked", len(hist), hist[len(hist)-1].Collected)
	}
	if _, err := db.GetAsOf("/data/t/a", first); !errors.Is(err, goatdb.ErrCollected) {
		t.Errorf("a value as of before the history kept: %v, want ErrCollected", err)
	}
	if it, err := db.GetAsOf("/data/t/a", time.Now()); err != nil || fmt.Sprint(it.Fields()["n"]) != "49" {
		t.Errorf("the value as of now: %v, %v", it.Fields(), err)
	}
}
