package goatdb_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// shiftedClock is a clock that days can be added to: every database,
// the server's accounts and the collector read it, so 40 days pass in a
// test.
type shiftedClock struct{ off atomic.Int64 }

func (c *shiftedClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *shiftedClock) add(d time.Duration) { c.off.Add(int64(d)) }

// TestOfflinePastHorizonReauthor: a device offline for 40 days, longer
// than the history horizon, edited an item meanwhile. The server has since
// collected the history the edit was built on and the device's
// certificate has expired. The device logs in again and syncs down; its
// edit is refused (its certificate ended more than the offline grace ago,
// and it is below the horizon) and kept in quarantine, not lost;
// Reauthor writes it again on the current value, and it reaches the
// server.
func TestOfflinePastHorizonReauthor(t *testing.T) {
	var clock shiftedClock
	id, _, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	sdb := dbtest.OpenDB(t, &goatdb.Options{Now: clock.now})
	srv, err := server.New(sdb, &server.Options{RateLimit: -1, Auth: &server.AuthOptions{
		Identity: id, Rules: authz.OpenRules(), Accounts: server.AccountOptions{Now: clock.now}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	hs := ts.URL
	login := func(db *goatdb.DB, user string) {
		t.Helper()
		code, _, err := srv.Accounts().AddUser(user, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.LoginCode(context.Background(), hs, user, code); err != nil {
			t.Fatal(err)
		}
	}

	deviceDir := t.TempDir()
	device := dbtest.OpenDBIn(t, deviceDir, &goatdb.Options{Now: clock.now})
	other := dbtest.OpenDB(t, &goatdb.Options{Now: clock.now})
	login(device, "alice")
	login(other, "bob")
	for _, k := range []string{"a", "b"} {
		if _, err := device.Put("/data/x/"+k, goatdb.Fields{"v": 0, "owner": "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	syncOK(t, device, hs)
	syncOK(t, other, hs)

	// Day 1: the device, offline, edits a; on the server bob edits a
	// and b every day for 40 days.
	clock.add(24 * time.Hour)
	offline, err := device.Put("/data/x/a", goatdb.Fields{"v": 0, "owner": "alice", "note": "written offline"})
	if err != nil {
		t.Fatal(err)
	}
	var recent commit.ID
	for day := 1; day <= 40; day++ {
		for _, k := range []string{"a", "b"} {
			if _, err := other.Put("/data/x/"+k, goatdb.Fields{"v": day, "owner": "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		syncOK(t, other, hs)
		if day < 40 {
			clock.add(24 * time.Hour)
		}
	}

	res, err := gc.Collect(sdb, "/data/x", &gc.Options{Policy: srv.GCPolicy(), Now: clock.now, Force: true})
	if err != nil || !res.Compacted || res.Stats.CommitsAfter >= res.Stats.CommitsBefore {
		t.Fatalf("collect: %+v, %v; want history collected", res, err)
	}

	// The device's certificate has expired: it must log in again.
	if _, err := device.Sync(context.Background(), hs); !errors.Is(err, goatdb.ErrUnauthenticated) {
		t.Fatalf("sync with a certificate 40 days old: %v, want ErrUnauthenticated", err)
	}
	login(device, "alice")
	// Logged in again, and before syncing, the device edits b: a write
	// within the horizon, on history the server collected.
	if recent, err = device.Put("/data/x/b", goatdb.Fields{"v": 0, "owner": "alice", "note": "written after logging in"}); err != nil {
		t.Fatal(err)
	}
	st1, err := device.Sync(context.Background(), hs)
	if !errors.Is(err, goatdb.ErrRejected) {
		t.Fatalf("sync after logging in again: %v, want the offline edit refused", err)
	}
	rej, err := device.Rejected("/data/x")
	causes := map[commit.ID]bool{}
	for _, w := range rej {
		// What else is quarantined is built on the offline edits.
		if w.Cause != offline && w.Cause != recent || !strings.Contains(w.Reason, "below horizon") {
			t.Fatalf("rejected %+v, want the offline edits, refused below the horizon, and what builds on them", w)
		}
		causes[w.Cause] = true
	}
	if err != nil || !causes[offline] || !causes[recent] {
		t.Fatalf("rejected %+v (%v), want both offline edits", rej, err)
	}
	if len(st1.Collected) != 2 {
		t.Fatalf("collected %+v, want the first commits of a and b", st1.Collected)
	}
	if got := field(t, device, "/data/x/a", "v"); got != "40" {
		t.Fatalf("a.v = %s on the device, want bob's 40", got)
	}
	// The device has synced down: it has bob's values.
	if got := field(t, device, "/data/x/b", "v"); got != "40" {
		t.Fatalf("b.v = %s on the device, want bob's 40", got)
	}
	for _, k := range []string{"a", "b"} {
		if got := field(t, device, "/data/x/"+k, "note"); got != "<nil>" {
			t.Fatalf("%s.note = %q while the edit is quarantined", k, got)
		}
	}

	// Restored, the edit is refused again, and quarantined again: a
	// restored commit is never taken for history the server collected.
	if err := device.Restore("/data/x/a", offline); err != nil {
		t.Fatal(err)
	}
	st2, err := device.Sync(context.Background(), hs)
	if !errors.Is(err, goatdb.ErrRejected) || len(st2.Rejected) == 0 || st2.Rejected[0].ID != offline {
		t.Fatalf("sync after restoring the edit: %v, %+v; want it refused again", err, st2)
	}
	rej, err = device.Rejected("/data/x")
	if err != nil || !slices.ContainsFunc(rej, func(w goatdb.RejectedWrite) bool { return w.Commit == offline }) {
		t.Fatalf("rejected after restoring: %+v (%v), want the offline edit", rej, err)
	}

	for _, k := range []string{"a", "b"} {
		ids, err := device.Reauthor("/data/x/" + k)
		if err != nil || len(ids) != 1 {
			t.Fatalf("reauthor %s: %v, %v", k, ids, err)
		}
	}
	st := syncOK(t, device, hs)
	if st.CommitsSent != 2 {
		t.Fatalf("sync after reauthor: %+v, want the new commit sent", st)
	}
	if rej, _ := device.Rejected(""); len(rej) != 0 {
		t.Fatalf("rejected after reauthor: %+v", rej)
	}
	if err := device.Close(); err != nil {
		t.Fatal(err)
	}
	device = dbtest.OpenDBIn(t, deviceDir, &goatdb.Options{Now: clock.now})
	for _, db := range []*goatdb.DB{sdb, device} {
		if n, v := field(t, db, "/data/x/a", "note"), field(t, db, "/data/x/a", "v"); n != "written offline" || v != "40" {
			t.Fatalf("a: note %q, v %s; want the offline note on bob's latest value", n, v)
		}
		if n, v := field(t, db, "/data/x/b", "note"), field(t, db, "/data/x/b", "v"); n != "written after logging in" || v != "40" {
			t.Fatalf("b: note %q, v %s; want the note written after logging in on bob's latest value", n, v)
		}
	}
	if st := syncOK(t, device, hs); st.Rounds != 1 || st.CommitsSent+st.CommitsReceived != 0 || len(st.Collected) != 0 {
		t.Fatalf("sync once reopened: %+v, want one round trip and nothing sent", st)
	}
}
