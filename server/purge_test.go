package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// purgeRig is a server with authentication and open rules (every user
// reads and writes /data), whose identity holds the root key, so that
// nodes of its deployment can join it.
type purgeRig struct {
	*authRig
	root ed25519.PrivateKey
}

func newPurgeRig(t *testing.T) *purgeRig {
	t.Helper()
	id, root, err := server.NewIdentity("purge")
	if err != nil {
		t.Fatal(err)
	}
	return &purgeRig{authRig: newAuthRig(t, authz.OpenRules(), func(o *server.AuthOptions) { o.Identity = id }), root: root}
}

// node starts another node of the rig's deployment, replicating with the
// rig's server.
func (r *purgeRig) node(t *testing.T, name string) *running {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	nc, err := authz.IssueNode(r.root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id := &server.Identity{Audience: r.id.Audience, Root: r.id.Root, NodeKey: key, Node: nc}
	return serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1, Peers: []string{r.run.url},
		Auth: &server.AuthOptions{Identity: id, Rules: authz.OpenRules()}}, "")
}

// user returns a goatdb database logged in to the rig's server as a new
// user name.
func (r *purgeRig) user(t *testing.T, name string) *goatdb.DB {
	t.Helper()
	code, _, err := r.acc.AddUser(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.OpenDB(t, nil)
	if _, err := db.LoginCode(context.Background(), r.run.url, name, code); err != nil {
		t.Fatal(err)
	}
	return db
}

func (r *purgeRig) purge(t *testing.T, path string) server.Shun {
	t.Helper()
	sh, err := r.run.srv.Purge(path, "erasure request #42")
	if err != nil {
		t.Fatalf("purge %s: %v", path, err)
	}
	return sh
}

// headOf returns the head commit of an item.
func headOf(t *testing.T, db *goatdb.DB, path string) commit.ID {
	t.Helper()
	it, err := db.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	return it.Head()
}

// holds reports whether db holds commit id in repository rp, in its graph
// or out of it.
func holds(db *goatdb.DB, rp string, id commit.ID) bool {
	r, err := db.LookupRepo(rp)
	return err == nil && r.Has(id)
}

// inGraph reports whether db has commit id in repository rp's graph (what
// it reads and syncs).
func inGraph(db *goatdb.DB, rp string, id commit.ID) bool {
	r, err := db.LookupRepo(rp)
	if err != nil {
		return false
	}
	_, ok := r.Commit(id)
	return ok
}

// watchGone watches an item of db and returns a channel that gets the
// first error the watch yields.
func watchGone(t *testing.T, db *goatdb.DB, path string) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		first := true
		for _, err := range db.Watch(ctx, path) {
			if first {
				close(started)
				first = false
			}
			if err != nil {
				out <- err
				return
			}
		}
	}()
	<-started
	return out
}

// hiddenOrPurged reports whether a sync's stats say the server hides id or
// refused it as purged.
func hiddenOrPurged(st syncproto.Stats, id commit.ID) bool {
	for _, h := range st.Hidden {
		if slices.Contains(h.IDs, id) {
			return true
		}
	}
	for _, rj := range st.Rejected {
		if rj.ID == id && strings.Contains(rj.Reason, "purged") {
			return true
		}
	}
	return false
}

// TestPurgeHidesAtOnce: once an item is purged on a server, a new reader
// does not get it, a client that synced it forgets it at its next sync
// (the access-removed signal: SyncStats.Hidden, Watch's
// ErrAccessRemoved), and another node of the deployment learns the purge
// through /sys replication and hides the item from its own clients.
func TestPurgeHidesAtOnce(t *testing.T) {
	rig := newPurgeRig(t)
	b := rig.node(t, "b")
	alice, bob := rig.user(t, "alice"), rig.user(t, "bob")
	mustPut(t, alice, "/data/x/secret", goatdb.Fields{"v": "the secret"})
	mustPut(t, alice, "/data/x/secret", goatdb.Fields{"w": 2})
	mustPut(t, alice, "/data/x/keep", goatdb.Fields{"v": "kept"})
	mustSync(t, alice, rig.run.url, "/data/x")
	secret := headOf(t, alice, "/data/x/secret")
	mustSync(t, bob, rig.run.url, "/data/x")
	if got := get(t, bob, "/data/x/secret"); got["v"] != "the secret" {
		t.Fatalf("bob reads %v before the purge", got)
	}
	// A client of the other node holds the item too.
	erin := rig.client().login("erin")
	eventually(t, 10*time.Second, "the item on node b", func() bool { return holds(b.db, "/data/x", secret) })
	eventually(t, 10*time.Second, "erin gets the item from node b", func() bool {
		_, err := erin.on(b).sync("/data/x")
		_, ok := erin.repo("/data/x").Commit(secret)
		return err == nil && ok
	})

	gone := watchGone(t, bob, "/data/x/secret")
	sh := rig.purge(t, "/data/x/secret")
	if len(sh.Commits) != 2 || sh.Path != "/data/x/secret" || sh.Reason != "erasure request #42" || len(sh.Records) != 1 {
		t.Fatalf("shun record %+v, want the item's two commits and the reason", sh)
	}

	// At once: a new reader gets the rest of the repository, not the item.
	carol := rig.user(t, "carol")
	mustSync(t, carol, rig.run.url, "/data/x")
	if got := get(t, carol, "/data/x/keep"); got["v"] != "kept" {
		t.Fatalf("carol reads keep as %v", got)
	}
	for _, id := range sh.Commits {
		if holds(carol, "/data/x", id) {
			t.Fatalf("a reader synced after the purge got commit %s", id.Short())
		}
	}

	// Bob forgets it at his next sync, with the access-removed signal.
	st := mustSync(t, bob, rig.run.url, "/data/x")
	if !hiddenOrPurged(st, secret) || len(st.Rejected) != 0 {
		t.Fatalf("bob's sync after the purge: hidden %v, rejected %v; want the item's commits hidden", st.Hidden, st.Rejected)
	}
	if _, err := bob.Get("/data/x/secret"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("bob reads the purged item: %v", err)
	}
	select {
	case err := <-gone:
		if !errors.Is(err, goatdb.ErrAccessRemoved) {
			t.Fatalf("bob's watch yields %v, want ErrAccessRemoved", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob's watch of the purged item yields nothing")
	}
	if got := get(t, bob, "/data/x/keep"); got["v"] != "kept" {
		t.Fatalf("bob lost the other item: %v", got)
	}
	// So does the author.
	mustSync(t, alice, rig.run.url, "/data/x")
	if _, err := alice.Get("/data/x/secret"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("alice reads the purged item: %v", err)
	}

	// Node b learns the purge through /sys and stops serving the item: a
	// client that holds it is told so, and a new one never gets it.
	eventually(t, 10*time.Second, "node b hides the purged item from erin", func() bool {
		st, err := erin.on(b).sync("/data/x")
		return err == nil && hiddenOrPurged(st, secret)
	})
	frank := rig.client().login("frank")
	eventually(t, 10*time.Second, "frank's new session replicated to node b, and a sync there", func() bool {
		_, err := frank.on(b).sync("/data/x")
		return err == nil
	})
	for _, id := range sh.Commits {
		if frank.repo("/data/x").Has(id) {
			t.Fatalf("node b sent commit %s after it learned of the purge", id.Short())
		}
	}
	if _, ok := frank.repo("/data/x").Commit(headOf(t, alice, "/data/x/keep")); !ok {
		t.Fatal("node b did not send the rest of the repository")
	}
	// Node b itself no longer reads it.
	eventually(t, 10*time.Second, "node b's own reads leave the purged item out", func() bool {
		_, err := b.db.Get("/data/x/secret")
		return errors.Is(err, goatdb.ErrNotFound)
	})
}

// TestShunRefusedBothWays: a server never sends a shunned commit, even to
// a client that asks for it by id, nor to a node that joins after the
// purge; a commit built on the purged history is refused as "purged", and
// so is an old commit of it pushed to a node that does not hold it.
func TestShunRefusedBothWays(t *testing.T) {
	rig := newPurgeRig(t)
	alice := rig.client().login("alice")
	c1 := alice.put("/data/x", "k", map[string]item.Value{"v": str("one")})
	c2 := alice.put("/data/x", "k", map[string]item.Value{"v": str("two")})
	alice.put("/data/x", "other", map[string]item.Value{"v": str("stays")})
	if _, err := alice.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	sh := rig.purge(t, "/data/x/k")
	if !slices.Contains(sh.Commits, c1.ID()) || !slices.Contains(sh.Commits, c2.ID()) {
		t.Fatalf("shun record %v lacks the item's commits", sh.Commits)
	}

	// Never sent: not to a new reader, not even asked for by id.
	bob := rig.client().login("bob")
	if _, err := bob.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	if bob.repo("/data/x").Has(c1.ID()) || bob.repo("/data/x").Has(c2.ID()) {
		t.Fatal("the server sent a shunned commit")
	}
	body, err := syncproto.EncodeRequest(&syncproto.Request{Session: bob.sid, Repos: []syncproto.RepoRequest{
		{Path: "/data/x", Missing: []commit.ID{c1.ID(), c2.ID()}}}})
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := bob.do("POST", "/v1/sync", body)
	if code != 200 {
		t.Fatalf("sync asking for the shunned ids: %d %s", code, out)
	}
	resp, err := syncproto.DecodeResponse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range resp.Repos[0].Commits {
		if c, err := commit.Decode(enc); err == nil && (c.ID() == c1.ID() || c.ID() == c2.ID()) {
			t.Fatalf("the server sent shunned commit %s asked for by id", c.ID().Short())
		}
	}

	// Nor to a node that joins after the purge.
	c := rig.node(t, "c")
	other, _ := alice.repo("/data/x").Head("other")
	eventually(t, 10*time.Second, "node c replicates /data/x and the purge", func() bool {
		sr, err := c.db.LookupRepo(server.ShunRepo)
		return err == nil && sr.Count() == 1 && holds(c.db, "/data/x", other)
	})
	if holds(c.db, "/data/x", c1.ID()) || holds(c.db, "/data/x", c2.ID()) {
		t.Fatal("a node that joined after the purge got a shunned commit")
	}

	// A commit alice builds on the old history after the purge is refused
	// as purged (the old ones, still held here, are answered hidden).
	c3 := alice.put("/data/x", "k", map[string]item.Value{"v": str("three")})
	st, err := alice.sync("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	if reason := rejectionOf(st, c3.ID()); !strings.Contains(reason, "purged") {
		t.Fatalf("a commit built on the purged history: rejection %q, want one saying purged (stats %+v)", reason, st)
	}
	if !hiddenOrPurged(st, c1.ID()) || !hiddenOrPurged(st, c2.ID()) {
		t.Fatalf("the shunned commits alice holds are neither hidden nor refused: %+v", st)
	}
	if inGraph(rig.db, "/data/x", c3.ID()) {
		t.Fatal("the server stored a commit built on the purged history")
	}

	// Node c never held the old commits: pushed there, they are refused
	// as purged, with what was built on them.
	st, err = alice.on(c).sync("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []commit.ID{c1.ID(), c2.ID(), c3.ID()} {
		if reason := rejectionOf(st, id); !strings.Contains(reason, "purged") {
			t.Errorf("commit %s pushed to node c: rejection %q, want one saying purged", id.Short(), reason)
		}
		if holds(c.db, "/data/x", id) {
			t.Errorf("node c stored commit %s", id.Short())
		}
	}
}

func rejectionOf(st syncproto.Stats, id commit.ID) string {
	for _, rj := range st.Rejected {
		if rj.ID == id {
			return rj.Reason
		}
	}
	return ""
}

// TestPurgeThenRecreate: an item written again after its purge starts a
// fresh history, which is accepted and synced to everyone alone; an
// offline edit made on the old history is refused as purged.
func TestPurgeThenRecreate(t *testing.T) {
	rig := newPurgeRig(t)
	alice, bob := rig.user(t, "alice"), rig.user(t, "bob")
	mustPut(t, alice, "/data/x/k", goatdb.Fields{"old": "secret", "v": 1})
	mustSync(t, alice, rig.run.url, "/data/x")
	mustSync(t, bob, rig.run.url, "/data/x")
	rig.purge(t, "/data/x/k")

	mustSync(t, alice, rig.run.url, "/data/x") // forgets it
	mustPut(t, alice, "/data/x/k", goatdb.Fields{"v": 2})
	st := mustSync(t, alice, rig.run.url, "/data/x")
	if len(st.Rejected) != 0 {
		t.Fatalf("the item written again was refused: %v", st.Rejected)
	}
	fresh := headOf(t, alice, "/data/x/k")

	// Bob edited the old history meanwhile: that edit is refused as
	// purged, and he gets the new history alone.
	mustPut(t, bob, "/data/x/k", goatdb.Fields{"w": 3})
	st, err := bob.Sync(context.Background(), rig.run.url, "/data/x")
	if !errors.Is(err, goatdb.ErrRejected) || !strings.Contains(err.Error(), "purged") {
		t.Fatalf("bob's edit on the purged history: %v (stats %+v), want it refused as purged", err, st)
	}
	if got := get(t, bob, "/data/x/k"); len(got) != 1 || got["v"] != int64(2) {
		t.Fatalf("bob reads %v, want only the new history's {v: 2}", got)
	}

	for _, db := range []*goatdb.DB{rig.user(t, "carol"), bob} {
		mustSync(t, db, rig.run.url, "/data/x")
		if got := get(t, db, "/data/x/k"); len(got) != 1 || got["v"] != int64(2) {
			t.Fatalf("a reader gets %v, want only the new history's {v: 2}", got)
		}
		log, err := db.History("/data/x/k")
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].ID != fresh {
			t.Fatalf("a reader holds the history %+v, want the new commit %s alone", log, fresh.Short())
		}
	}

	// Purged again, the new history goes the same way (with the merge the
	// server made of the two, hidden already as built on the first).
	sh := rig.purge(t, "/data/x/k")
	if !slices.Contains(sh.Commits, fresh) {
		t.Fatalf("the second purge shuns %v, not the new commit", sh.Commits)
	}
	for _, db := range []*goatdb.DB{alice, bob} {
		mustSync(t, db, rig.run.url, "/data/x")
		if _, err := db.Get("/data/x/k"); !errors.Is(err, goatdb.ErrNotFound) {
			t.Fatalf("the item purged twice still reads: %v", err)
		}
	}
	if _, err := rig.run.srv.Purge("/data/x/k", "again"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("purging an item with nothing left to purge: %v", err)
	}
	shuns, err := rig.run.srv.Shuns()
	if err != nil || len(shuns) != 2 || shuns[0].At.After(shuns[1].At) || shuns[1].Path != "/data/x/k" ||
		shuns[1].Reason != "erasure request #42" || !slices.Contains(shuns[1].Commits, fresh) {
		t.Fatalf("Shuns: %v %+v, want both purges, oldest first", err, shuns)
	}
}

// TestPurgeInput: a purge names an item outside /sys and gives a reason.
func TestPurgeInput(t *testing.T) {
	rig := newPurgeRig(t)
	mustPut(t, rig.db, "/data/x/k", goatdb.Fields{"v": 1})
	for _, c := range []struct{ path, reason string }{
		{"/data/x", "why"}, {"data/x/k", "why"}, {"/sys/users/alice", "why"}, {"/data/x/k", " "},
		{"/data/x/k", strings.Repeat("x", server.MaxPurgeReason+1)},
	} {
		if _, err := rig.run.srv.Purge(c.path, c.reason); !errors.Is(err, server.ErrPurgeInput) {
			t.Errorf("purge %q %q: %v, want ErrPurgeInput", c.path, c.reason, err)
		}
	}
	for _, p := range []string{"/data/x/nope", "/data/nope/k"} {
		if _, err := rig.run.srv.Purge(p, "why"); !errors.Is(err, goatdb.ErrNotFound) {
			t.Errorf("purge %s: %v, want ErrNotFound", p, err)
		}
	}
}

// TestPurgeDropsAtCompaction: the next compaction with the server's
// ShunDrop removes every byte of the purged commits from the log.
func TestPurgeDropsAtCompaction(t *testing.T) {
	rig := newPurgeRig(t)
	const unique = "purge-me-6f1c0d2e9ab34f57"
	mustPut(t, rig.db, "/data/x/k", goatdb.Fields{"v": unique})
	mustPut(t, rig.db, "/data/x/other", goatdb.Fields{"v": "stays"})
	if err := rig.db.Flush(); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(rig.db.Dir(), "data", "x.log")
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), unique) {
		t.Fatalf("the value is not in the log before the purge (%v): the test cannot tell", err)
	}
	rig.purge(t, "/data/x/k")
	if d := rig.run.srv.ShunDrop()("/data/y"); d != nil {
		t.Error("ShunDrop drops commits of a repository without purges")
	}
	results, err := gc.CollectAll(context.Background(), rig.db, []string{"/data/x"},
		&gc.Options{Policy: rig.run.srv.GCPolicy(), Drop: rig.run.srv.ShunDrop()})
	if err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("compaction is not implemented yet: %v", err)
	}
	if err != nil || len(results) != 1 || !results[0].Compacted {
		t.Fatalf("collect: %v %+v, want /data/x compacted (a purge compacts whatever the triggers say)", err, results)
	}
	if b, err := os.ReadFile(logFile); err != nil || strings.Contains(string(b), unique) {
		t.Fatalf("the purged value is still in the log after compaction (%v)", err)
	}
	if got := get(t, rig.db, "/data/x/other"); got["v"] != "stays" {
		t.Fatalf("the other item after compaction: %v", got)
	}
	if _, err := rig.db.Get("/data/x/k"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("the purged item after compaction: %v", err)
	}
	if d := rig.run.srv.ShunDrop()("/data/x"); d != nil {
		t.Error("ShunDrop still drops from a repository compacted without the purged commits")
	}
}

// TestPurgeCollectorDrops: the background collector with the server's
// ShunDrop compacts a repository with purged commits at its next pass,
// however small the repository.
func TestPurgeCollectorDrops(t *testing.T) {
	rig := newPurgeRig(t)
	const unique = "purge-me-too-0c2ad51f7e"
	mustPut(t, rig.db, "/data/x/k", goatdb.Fields{"v": unique})
	mustPut(t, rig.db, "/data/x/other", goatdb.Fields{"v": "stays"})
	r, err := rig.db.LookupRepo("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PlanCompact(0, nil); err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skipf("compaction is not implemented yet: %v", err)
	}
	if err := rig.db.Flush(); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(rig.db.Dir(), "data", "x.log")
	if b, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(b), unique) {
		t.Fatalf("the value is not in the log before the purge (%v): the test cannot tell", err)
	}
	rig.purge(t, "/data/x/k")
	col, err := gc.Start(rig.db, &gc.CollectorOptions{Options: gc.Options{Policy: rig.run.srv.GCPolicy(),
		Drop: rig.run.srv.ShunDrop()}, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Stop()
	eventually(t, 10*time.Second, "the collector drops the purged commits", func() bool {
		b, err := os.ReadFile(logFile)
		return err == nil && !strings.Contains(string(b), unique)
	})
	if got := get(t, rig.db, "/data/x/other"); got["v"] != "stays" {
		t.Fatalf("the other item after compaction: %v", got)
	}
}
