package syncproto_test

import (
	"fmt"
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

// clock is a settable clock for repositories whose commits must be old.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// openTimed opens peer i's repository on its own in-memory filesystem,
// stamping its writes (and checking received commits' times) by clk.
func openTimed(t testing.TB, i int, clk *clock) *repo.Repo {
	t.Helper()
	return dbtest.OpenRepo(t, "/peer.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(i), Now: clk.now})
}

// day is a UTC day.
const day = 24 * time.Hour

// history writes, at clk, a history that compaction collects part of: 20
// items written 60 days before now and updated 55 and 50 days before now
// (some twice concurrently then, on two peers that then traded commits),
// 8 of them updated again 10 days before now; items 20..24 written 5 days
// before now. It leaves clk at now. Every commit is on srv.
func history(t *testing.T, srv, other *repo.Repo, clk *clock, now time.Time) {
	t.Helper()
	set := func(r *repo.Repo, key, field string, v item.Value) {
		t.Helper()
		if _, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			return cur.Value.With(field, v), testSchema, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	trade := func() {
		t.Helper()
		a, _ := srv.CommitsSince(0)
		b, _ := other.CommitsSince(0)
		if _, rej, err := srv.Receive(encodeAllOf(b)); err != nil || len(rej) > 0 {
			t.Fatal(err, rej)
		}
		if _, rej, err := other.Receive(encodeAllOf(a)); err != nil || len(rej) > 0 {
			t.Fatal(err, rej)
		}
	}
	clk.set(now.Add(-60 * day))
	for i := range 20 {
		set(srv, fmt.Sprintf("item%02d", i), "title", item.String(fmt.Sprint("first ", i)))
	}
	trade()
	clk.set(now.Add(-55 * day))
	for i := range 20 {
		set(srv, fmt.Sprintf("item%02d", i), "tags", item.StringSet("early"))
	}
	trade()
	clk.set(now.Add(-50 * day))
	for i := range 20 {
		set(srv, fmt.Sprintf("item%02d", i), "count", item.Int(int64(i)))
		if i%3 == 0 {
			set(other, fmt.Sprintf("item%02d", i), "done", item.Bool(true))
		}
	}
	clk.add(time.Hour)
	trade()
	clk.set(now.Add(-10 * day))
	for i := range 8 {
		set(srv, fmt.Sprintf("item%02d", i), "title", item.String(fmt.Sprint("recent ", i)))
	}
	clk.set(now.Add(-5 * day))
	for i := 20; i < 25; i++ {
		set(srv, fmt.Sprintf("item%02d", i), "title", item.String(fmt.Sprint("new ", i)))
	}
	trade()
	clk.set(now)
}

func encodeAllOf(cs []*commit.Commit) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Encode()
	}
	return out
}

// horizonNow is the time the horizon tests run at: midnight UTC plus a
// bit, so that a horizon 37 days back at midnight is a whole day.
var horizonNow = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// aboveHorizon returns the count and digest of r's commits from h on.
func aboveHorizon(r syncproto.Repo, h int64) (int, syncproto.Digest) {
	cs, _ := r.CommitsSince(0)
	var ids []commit.ID
	for _, c := range cs {
		if c.Time() >= h {
			ids = append(ids, c.ID())
		}
	}
	return len(ids), syncproto.DigestOf(ids)
}
