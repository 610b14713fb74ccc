package goatdb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// opens follows a database's repositories through OnRepoOpen: how often
// each was opened, and which are open now.
type opens struct {
	mu    sync.Mutex
	last  map[string]*repo.Repo
	count map[string]int
}

func trackOpens(t *testing.T, db *goatdb.DB) *opens {
	o := &opens{last: map[string]*repo.Repo{}, count: map[string]int{}}
	remove := db.OnRepoOpen(func(path string, r *repo.Repo) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.last[path] = r
		o.count[path]++
	})
	t.Cleanup(remove)
	return o
}

// open lists the repositories open now, sorted.
func (o *opens) open() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for p, r := range o.last {
		if !r.Closed() {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (o *opens) isOpen(path string) bool { return slices.Contains(o.open(), path) }

func (o *opens) opened(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

// TestIdleReposClosedOverBound: with MaxOpenRepos, the least recently
// used repositories are closed as others open, never more than the bound
// stay open, and a closed one reopens (OnRepoOpen runs again) with the
// same content.
func TestIdleReposClosedOverBound(t *testing.T) {
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem, MaxOpenRepos: 3})
	o := trackOpens(t, db)
	const n = 10
	for i := range n {
		for j := range 3 {
			mustPut(t, db, fmt.Sprintf("/data/r%d/i%d", i, j), goatdb.Fields{"n": i*10 + j})
		}
		if open := o.open(); len(open) > 3 {
			t.Fatalf("after writing r%d, %d open: %v", i, len(open), open)
		}
	}
	if open := o.open(); !slices.Equal(open, []string{"/data/r7", "/data/r8", "/data/r9"}) {
		t.Errorf("open %v, want the three used last", open)
	}
	// Reading r0 again reopens it and closes the least recently used.
	for round := range 2 {
		for i := range n {
			for j := range 3 {
				it, err := db.Get(fmt.Sprintf("/data/r%d/i%d", i, j))
				if err != nil || it.Get("n") != int64(i*10+j) {
					t.Fatalf("round %d: r%d/i%d = %v, %v", round, i, j, it.Get("n"), err)
				}
			}
			if open := o.open(); len(open) > 3 || !slices.Contains(open, fmt.Sprintf("/data/r%d", i)) {
				t.Fatalf("after reading r%d: open %v", i, open)
			}
		}
	}
	if got := o.opened("/data/r0"); got != 3 {
		t.Errorf("/data/r0 opened %d times, want 3 (written, then read in two rounds)", got)
	}
	keys, err := db.Keys("/data/r4", false)
	if err != nil || !slices.Equal(keys, []string{"i0", "i1", "i2"}) {
		t.Errorf("keys of a reopened repository: %v, %v", keys, err)
	}
}

// TestMemoryBoundClosesRepos: MaxOpenRepoBytes bounds the estimated
// memory of the open repositories (80 KiB each for small ones, more for
// those with larger logs).
func TestMemoryBoundClosesRepos(t *testing.T) {
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: vfs.NewMem(), MaxOpenRepoBytes: 250 << 10})
	o := trackOpens(t, db)
	for i := range 10 {
		mustPut(t, db, fmt.Sprintf("/data/small%d/x", i), goatdb.Fields{"n": i})
		if open := o.open(); len(open) > 3 {
			t.Fatalf("%d small repositories open: %v", len(open), open)
		}
	}
	if n := len(o.open()); n != 3 {
		t.Errorf("%d small repositories open, want the 3 that fit", n)
	}
	// A larger one takes the room of two.
	rng := rand.New(rand.NewPCG(1, 2))
	var text strings.Builder
	for range 6000 {
		text.WriteByte(byte('a' + rng.IntN(26))) // zstd leaves most of it
	}
	mustPut(t, db, "/data/large/x", goatdb.Fields{"text": text.String()})
	mustPut(t, db, "/data/small9/x", goatdb.Fields{"n": 9})
	if open := o.open(); !slices.Equal(open, []string{"/data/large", "/data/small9"}) {
		t.Errorf("with a larger repository, open: %v", open)
	}
	if it, err := db.Get("/data/large/x"); err != nil || it.Get("text") != text.String() {
		t.Errorf("the larger repository reopened: %v", err)
	}
}

// TestLeaseKeepsRepoOpen: a repository held by Acquire is never closed
// for idleness, however many others are used; released, it is.
func TestLeaseKeepsRepoOpen(t *testing.T) {
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: vfs.NewMem(), MaxOpenRepos: 2})
	o := trackOpens(t, db)
	r, release, err := db.Acquire("/data/held")
	if err != nil {
		t.Fatal(err)
	}
	r2, release2, err := db.Acquire("/data/held")
	if err != nil || r2 != r {
		t.Fatalf("a second lease: %p, %v; want the same repository %p", r2, err, r)
	}
	for i := range 20 {
		mustPut(t, db, fmt.Sprintf("/data/other%d/x", i), goatdb.Fields{"n": i})
		if r.Closed() {
			t.Fatalf("the held repository was closed after %d others were used", i+1)
		}
	}
	if open := o.open(); len(open) != 2 {
		t.Errorf("open %v, want the held one and the last used", open)
	}
	release()
	release() // a second call does nothing
	mustPut(t, db, "/data/other0/x", goatdb.Fields{"n": 0})
	if r.Closed() {
		t.Fatal("closed while a second lease holds it")
	}
	release2()
	mustPut(t, db, "/data/other1/x", goatdb.Fields{"n": 1})
	mustPut(t, db, "/data/other2/x", goatdb.Fields{"n": 2})
	if !r.Closed() {
		t.Error("released and least recently used, but still open")
	}
	if _, _, err := db.AcquireExisting("/data/none"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Errorf("AcquireExisting of a repository that does not exist: %v, want ErrNotFound", err)
	}
}

// TestSysReposStayOpen: repositories under /sys/ (a server's accounts)
// are never closed for idleness.
func TestSysReposStayOpen(t *testing.T) {
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: vfs.NewMem(), MaxOpenRepos: 1})
	o := trackOpens(t, db)
	mustPut(t, db, "/sys/users/u", goatdb.Fields{"n": 1})
	for i := range 5 {
		mustPut(t, db, fmt.Sprintf("/data/r%d/x", i), goatdb.Fields{"n": i})
	}
	if !o.isOpen("/sys/users") {
		t.Errorf("/sys/users was closed; open: %v", o.open())
	}
}

// TestLiveQueryKeepsRepoOpen: an open query holds its repository, so
// that a subscriber goes on seeing its changes however many other
// repositories are used; closed, it lets the repository go.
func TestLiveQueryKeepsRepoOpen(t *testing.T) {
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: vfs.NewMem(), MaxOpenRepos: 2})
	o := trackOpens(t, db)
	mustPut(t, db, "/data/q/a", goatdb.Fields{"n": 1})
	ctx := context.Background()
	q, err := db.Query(ctx, goatdb.QuerySpec{Repo: "/data/q"})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan goatdb.QueryEvent, 16)
	cancel := q.Subscribe(func(ev goatdb.QueryEvent) { events <- ev })
	defer cancel()
	<-events // a, added
	for i := range 10 {
		mustPut(t, db, fmt.Sprintf("/data/r%d/x", i), goatdb.Fields{"n": i})
	}
	if !o.isOpen("/data/q") {
		t.Fatalf("the query's repository was closed; open: %v", o.open())
	}
	mustPut(t, db, "/data/q/b", goatdb.Fields{"n": 2})
	select {
	case ev := <-events:
		if ev.Kind != goatdb.QueryAdded || ev.Item.Path() != "/data/q/b" {
			t.Errorf("event %v %v, want b added", ev.Kind, ev.Item.Path())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for a write to the query's repository")
	}
	cancel()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustPut(t, db, fmt.Sprintf("/data/r%d/x", i), goatdb.Fields{"n": i})
	}
	if o.isOpen("/data/q") {
		t.Error("the repository of a closed query stays open")
	}
}

// TestIdleCloseIsDurable: a repository closed for idleness is flushed
// first, so what was written to it under Async durability survives a
// crash that follows, and reads the same when it is reopened.
func TestIdleCloseIsDurable(t *testing.T) {
	mem := vfs.NewMem()
	opts := &goatdb.Options{FS: mem, Durability: goatdb.Async, FlushInterval: time.Hour, MaxOpenRepos: 1}
	db, err := goatdb.Open("/db", opts)
	if err != nil {
		t.Fatal(err)
	}
	o := trackOpens(t, db)
	for i := range 5 {
		mustPut(t, db, fmt.Sprintf("/data/a/i%d", i), goatdb.Fields{"n": i})
	}
	mustPut(t, db, "/data/b/x", goatdb.Fields{"n": 1}) // closes /data/a
	if o.isOpen("/data/a") {
		t.Fatal("/data/a still open")
	}
	crashed := mem.Crash(nil) // what was never flushed is lost
	db.Close()
	db = dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: crashed})
	for i := range 5 {
		if it, err := db.Get(fmt.Sprintf("/data/a/i%d", i)); err != nil || it.Get("n") != int64(i) {
			t.Errorf("after the crash, /data/a/i%d = %v, %v", i, it.Get("n"), err)
		}
	}
}

// TestWriteAfterIdleCloseIsDurable: writes to a repository that was
// closed for idleness reopen it, and are there (in order, with the
// earlier ones) after the database is reopened.
func TestWriteAfterIdleCloseIsDurable(t *testing.T) {
	mem := vfs.NewMem()
	db, err := goatdb.Open("/db", &goatdb.Options{FS: mem, MaxOpenRepos: 1})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		for _, rp := range []string{"/data/a", "/data/b", "/data/c"} {
			mustPut(t, db, fmt.Sprintf("%s/i%d", rp, round), goatdb.Fields{"round": round})
			mustPut(t, db, rp+"/last", goatdb.Fields{"round": round})
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem.Crash(nil)})
	for _, rp := range []string{"/data/a", "/data/b", "/data/c"} {
		if n, err := db.Count(rp); err != nil || n != 5 {
			t.Errorf("%s holds %d items (%v), want 5", rp, n, err)
		}
		if it, err := db.Get(rp + "/last"); err != nil || it.Get("round") != int64(3) {
			t.Errorf("%s/last = %v, %v, want round 3", rp, it.Get("round"), err)
		}
		if h, err := db.History(rp + "/last"); err != nil || len(h) != 4 {
			t.Errorf("%s/last has %d commits (%v), want 4", rp, len(h), err)
		}
	}
}

// TestRepoIdleTimeout: a repository not in use for RepoIdleTimeout is
// closed, and one in use is not.
func TestRepoIdleTimeout(t *testing.T) {
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: vfs.NewMem(), RepoIdleTimeout: 20 * time.Millisecond})
	o := trackOpens(t, db)
	mustPut(t, db, "/data/idle/x", goatdb.Fields{"n": 1})
	_, release, err := db.Acquire("/data/held")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	deadline := time.Now().Add(10 * time.Second)
	for o.isOpen("/data/idle") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if open := o.open(); !slices.Equal(open, []string{"/data/held"}) {
		t.Errorf("open %v, want only the held repository", open)
	}
	if it, err := db.Get("/data/idle/x"); err != nil || it.Get("n") != int64(1) {
		t.Errorf("reopened: %v, %v", it.Get("n"), err)
	}
}

// TestHealthRemembersClosedRepos: with a bound, Health opens nothing,
// and reports a damaged repository closed for idleness as it was when it
// was last open, and one that could not be opened.
func TestHealthRemembersClosedRepos(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	mustPut(t, db, "/data/t/a", goatdb.Fields{"v": "value of /data/t/a"})
	mustPut(t, db, "/data/t/b", goatdb.Fields{"v": "value of /data/t/b"})
	mustPut(t, db, "/data/ok/c", goatdb.Fields{"v": "ok"})
	db.Close()
	file := filepath.Join(dir, "data", "t.log")
	data, _ := os.ReadFile(file)
	i := bytes.Index(data, []byte("value of /data/t/a"))
	data[i+4] ^= 0x40
	os.WriteFile(file, data, 0o644)
	os.WriteFile(filepath.Join(dir, "data", "junk.log"), []byte("junk"), 0o644)

	db = dbtest.OpenDBUnchecked(t, dir, &goatdb.Options{MaxOpenRepos: 1}) // /data/t keeps damage
	o := trackOpens(t, db)
	if h, err := db.Health(); err != nil || h.Status != goatdb.StatusOK || len(o.open()) != 0 {
		t.Fatalf("Health before any use = %v, %v, open %v; want ok with nothing opened", h, err, o.open())
	}
	if _, err := db.Get("/data/t/b"); err != nil { // opens, and quarantines the damage
		t.Fatal(err)
	}
	if _, err := db.Get("/data/junk/x"); err == nil {
		t.Fatal("read from a log that is not one")
	}
	if _, err := db.Get("/data/ok/c"); err != nil { // closes /data/t
		t.Fatal(err)
	}
	if o.isOpen("/data/t") {
		t.Fatal("/data/t still open")
	}
	h, err := db.Health()
	if err != nil || h.Status != goatdb.StatusDamaged || len(h.Repos) != 2 {
		t.Fatalf("Health = %v, %v; want /data/junk and /data/t damaged", h, err)
	}
	junk, tr := h.Repos[0], h.Repos[1]
	if junk.Path != "/data/junk" || junk.Err == nil {
		t.Errorf("%v, want /data/junk unopenable", junk)
	}
	if tr.Path != "/data/t" || tr.Status != goatdb.StatusDamaged || len(tr.Quarantined) != 1 {
		t.Errorf("%v, want /data/t damaged with one quarantined range", tr)
	}
	if open := o.open(); !slices.Equal(open, []string{"/data/ok"}) {
		t.Errorf("Health opened repositories: open %v", open)
	}
}

func mustPut(t testing.TB, db *goatdb.DB, path string, fields goatdb.Fields) {
	t.Helper()
	if _, err := db.Put(path, fields); err != nil {
		t.Fatal(err)
	}
}

// boundedServer serves a new database bounded to max open repositories.
func boundedServer(t *testing.T, max int) (*goatdb.DB, string) {
	t.Helper()
	return syncServerWith(t, &goatdb.Options{MaxOpenRepos: max})
}

// TestSyncUnderBound: DB.Sync and a background Syncer sync many more
// repositories than a bounded client and server keep open, in both
// directions, and the Syncer follows changes to repositories that were
// closed for idleness.
func TestSyncUnderBound(t *testing.T) {
	const n, bound = 30, 4
	srvDB, url := boundedServer(t, bound)
	srvOpens := trackOpens(t, srvDB)
	client := dbtest.OpenDB(t, &goatdb.Options{MaxOpenRepos: bound})
	opens := trackOpens(t, client)
	for i := range n {
		mustPut(t, client, fmt.Sprintf("/data/r%02d/x", i), goatdb.Fields{"n": i})
	}
	st, err := client.Sync(context.Background(), url)
	if err != nil || st.Converged != n {
		t.Fatalf("Sync: %v, %d converged, want %d", err, st.Converged, n)
	}
	for i := range n {
		if it, err := srvDB.Get(fmt.Sprintf("/data/r%02d/x", i)); err != nil || it.Get("n") != int64(i) {
			t.Fatalf("the server's /data/r%02d/x = %v, %v", i, it.Get("n"), err)
		}
	}
	if open := opens.open(); len(open) > bound {
		t.Errorf("client: %d open after Sync: %v", len(open), open)
	}
	if open := srvOpens.open(); len(open) > bound {
		t.Errorf("server: %d open after Sync: %v", len(open), open)
	}

	// The background Syncer: a write on either side reaches the other,
	// to repositories closed for idleness on both.
	s, err := client.StartSync([]string{url}, &goatdb.SyncOptions{MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "the Syncer listens", func() bool { return s.Status()[0].Listening })
	for _, i := range []int{0, 13, 29} {
		p := fmt.Sprintf("/data/r%02d/up", i)
		mustPut(t, client, p, goatdb.Fields{"n": i})
		waitFor(t, "the server gets "+p, func() bool { _, err := srvDB.Get(p); return err == nil })
		p = fmt.Sprintf("/data/r%02d/down", i)
		mustPut(t, srvDB, p, goatdb.Fields{"n": i})
		waitFor(t, "the client gets "+p, func() bool { _, err := client.Get(p); return err == nil })
	}
	if open := opens.open(); len(open) > bound {
		t.Errorf("client: %d open while syncing in the background: %v", len(open), open)
	}
}

// TestConcurrentUseUnderBound: goroutines writing and reading many more
// repositories than the bound, beside Flush and Health, lose nothing and
// read every write they made (run it with -race).
func TestConcurrentUseUnderBound(t *testing.T) {
	mem := vfs.NewMem()
	db, err := goatdb.Open("/db", &goatdb.Options{FS: mem, Durability: goatdb.Async, MaxOpenRepos: 3})
	if err != nil {
		t.Fatal(err)
	}
	const workers, repos, rounds = 6, 12, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				p := fmt.Sprintf("/data/r%d/w%d", (w*7+i)%repos, w)
				if _, err := db.Put(p, goatdb.Fields{"i": i}); err != nil {
					errs <- err
					return
				}
				if it, err := db.Get(p); err != nil || it.Get("i") != int64(i) {
					errs <- fmt.Errorf("%s: read %v, %v after writing %d", p, it.Get("i"), err, i)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Flush(); err != nil {
				errs <- err
				return
			}
			if h, err := db.Health(); err != nil || h.Status != goatdb.StatusOK {
				errs <- fmt.Errorf("health %v, %v", h, err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := map[string]int{}
	for w := range workers {
		for i := range rounds {
			want[fmt.Sprintf("/data/r%d/w%d", (w*7+i)%repos, w)] = i
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem.Crash(nil)})
	for p, i := range want {
		if it, err := db.Get(p); err != nil || it.Get("i") != int64(i) {
			t.Errorf("after Close and a crash, %s = %v, %v; want %d", p, it.Get("i"), err, i)
		}
	}
}

// TestHealthClearsAfterRecoveredClose: a repository whose writes failed,
// closed for idleness once the disk recovered (its flush succeeds), is
// remembered as ok: health does not stay degraded until it is opened
// again.
func TestHealthClearsAfterRecoveredClose(t *testing.T) {
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem, MaxOpenRepos: 1})
	mustPut(t, db, "/data/t/a", goatdb.Fields{"v": 1})
	mem.SetHook(func(op, name string) error {
		if op == "write" && strings.HasSuffix(name, "t.log") {
			return syscall.ENOSPC
		}
		return nil
	})
	if _, err := db.Put("/data/t/b", goatdb.Fields{"v": 2}); err == nil {
		t.Fatal("a write to a full disk succeeded")
	}
	if h, _ := db.Health(); h.Status != goatdb.StatusDegraded {
		t.Fatalf("Health while writes fail = %v, want degraded", h)
	}
	mem.SetHook(nil)
	mustPut(t, db, "/data/other/x", goatdb.Fields{"v": 3}) // closes /data/t, whose flush now succeeds
	h, err := db.Health()
	if err != nil || h.Status != goatdb.StatusOK {
		t.Errorf("Health once the disk recovered and /data/t closed = %v, %v; want ok", h, err)
	}
}
