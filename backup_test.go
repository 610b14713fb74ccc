package goatdb_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// ack is a write a writer saw acknowledged: item path and value n.
type ack struct {
	path string
	n    int
}

// TestBackupWhileWriting backs up a database while writers go on with
// Sync durability: the copy holds every write acknowledged before Backup
// was called (or a later value of the item), and passes the full check.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	// A repository written in an earlier session: Backup opens it itself.
	seed, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := seed.Put(fmt.Sprintf("/data/old/i%d", i), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	seed.Close()
	if err := os.WriteFile(filepath.Join(dir, "schemas.json"), []byte(`{"schemas": []}`), 0o644); err != nil {
		t.Fatal(err)
	}

	db := dbtest.OpenDBIn(t, dir, nil)
	const writers = 4
	var (
		started atomic.Bool // set just before Backup is called
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		acked   [writers][]ack // acknowledged before Backup was called
		total   atomic.Int64
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/data/r%d/w%d-%d", w%2, w, i%5)
				if _, err := db.Put(path, goatdb.Fields{"n": i, "pad": strings.Repeat("x", i%300)}); err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
				if !started.Load() { // acknowledged before the flag, so before Backup
					acked[w] = append(acked[w], ack{path, i})
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); total.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	dest := filepath.Join(t.TempDir(), "backup")
	started.Store(true)
	before := total.Load()
	err = db.Backup(t.Context(), dest)
	during := total.Load() - before
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes before the backup, %d while it ran", before, during)

	cp := dbtest.OpenDBIn(t, dest, nil)
	if cp.Session() != db.Session() {
		t.Errorf("the copy's session %s, want %s", cp.Session(), db.Session())
	}
	for w := range writers {
		checkAcked(t, cp, acked[w])
	}
	for i := range 20 {
		if it, err := cp.Get(fmt.Sprintf("/data/old/i%d", i)); err != nil || it.Get("n") != int64(i) {
			t.Errorf("old item %d in the copy: %v %v", i, it.Fields(), err)
		}
	}
	checkBackupFiles(t, dir, dest)
}

// checkAcked checks that db holds every acknowledged write, or a later one
// of the same item (a writer's values only grow).
func checkAcked(t *testing.T, db *goatdb.DB, acked []ack) {
	t.Helper()
	last := map[string]int{}
	for _, a := range acked {
		last[a.path] = a.n
	}
	for path, n := range last {
		it, err := db.Get(path)
		if err != nil {
			t.Errorf("acknowledged %s=%d: %v", path, n, err)
			continue
		}
		if got, _ := it.Get("n").(int64); got < int64(n) {
			t.Errorf("acknowledged %s=%d, the copy holds %d", path, n, got)
		}
	}
}

// checkBackupFiles checks the key and schema file of a backup.
func checkBackupFiles(t *testing.T, dir, dest string) {
	t.Helper()
	for _, f := range []struct {
		name string
		perm fs.FileMode
	}{{"session.key", 0o600}, {"schemas.json", 0o644}} {
		want, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dest, f.name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s in the backup: %v, differs: %v", f.name, err, string(got) != string(want))
		}
		if fi, err := os.Stat(filepath.Join(dest, f.name)); err != nil || fi.Mode().Perm() != f.perm {
			t.Errorf("%s mode: %v %v, want %v", f.name, fi.Mode(), err, f.perm)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dest, "data"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in the backup", e.Name())
		}
	}
}

// TestBackupAsync backs up writes that Async durability acknowledged but
// has not flushed yet: Backup flushes them first.
func TestBackupAsync(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async, FlushInterval: time.Hour})
	for i := range 50 {
		if _, err := db.Put(fmt.Sprintf("/data/a/i%d", i), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(t.TempDir(), "b")
	if err := db.Backup(t.Context(), dest); err != nil {
		t.Fatal(err)
	}
	cp := dbtest.OpenDBIn(t, dest, nil)
	if n, err := cp.Count("/data/a"); err != nil || n != 50 {
		t.Fatalf("the copy holds %d items (%v), want 50", n, err)
	}
}

// TestBackupReadOnly backs up with a read-only database, beside a writer
// and from a log with a torn tail: the copy ends at the last complete
// record and opens clean.
func TestBackupReadOnly(t *testing.T) {
	dir := t.TempDir()
	w := dbtest.OpenDBIn(t, dir, nil)
	for i := range 10 {
		if _, err := w.Put(fmt.Sprintf("/data/t/i%d", i), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Put(fmt.Sprintf("/data/u/i%d", i), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// A record cut short, as a crash (or a writer still appending) leaves it.
	log := filepath.Join(dir, "data", "t.log")
	whole, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x40, 1, 2, 3, 4, 5})
	f.Close()

	w = dbtest.OpenDBIn(t, dir, nil)
	if _, err := w.Put("/data/u/after", goatdb.Fields{"n": 1}); err != nil { // the writer cuts u, not t
		t.Fatal(err)
	}
	ro := dbtest.OpenDBIn(t, dir, &goatdb.Options{ReadOnly: true})
	dest := filepath.Join(t.TempDir(), "b")
	if err := ro.Backup(t.Context(), dest); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "data", "t.log")); err != nil || string(got) != string(whole) {
		t.Errorf("the copy of a torn log: %d bytes (%v), want the %d of its complete records", len(got), err, len(whole))
	}
	cp := dbtest.OpenDBIn(t, dest, nil)
	for _, rp := range []string{"/data/t", "/data/u"} {
		if n, err := cp.Count(rp); err != nil || n < 10 {
			t.Errorf("%s in the copy: %d items, %v", rp, n, err)
		}
	}
	if _, err := cp.Get("/data/u/after"); err != nil {
		t.Errorf("the writer's acknowledged write: %v", err)
	}
}

// TestBackupDestination checks the destinations Backup refuses, and that
// it refuses them before writing anything.
func TestBackupDestination(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put("/data/d/x", goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep"), []byte("mine"), 0o644)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("mine"), 0o644)
	for _, tc := range []struct {
		name, dest, want string
		is               error
	}{
		{"non-empty directory", full, "not empty", fs.ErrExist},
		{"file", file, "", nil},
		{"inside the data directory", filepath.Join(db.Dir(), "backup"), "inside the data directory", nil},
		{"the data directory", db.Dir(), "inside the data directory", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dirFiles(t, filepath.Dir(tc.dest))
			err := db.Backup(t.Context(), tc.dest)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("backup to %s: %v, want an error saying %q", tc.dest, err, tc.want)
			}
			if after := dirFiles(t, filepath.Dir(tc.dest)); len(after) != len(before) {
				t.Errorf("a refused backup wrote files: %v", after)
			}
		})
	}
	empty := t.TempDir()
	if err := db.Backup(t.Context(), empty); err != nil {
		t.Fatalf("backup to an empty directory: %v", err)
	}
	cp := dbtest.OpenDBIn(t, empty, nil)
	if _, err := cp.Get("/data/d/x"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Backup(t.Context(), filepath.Join(t.TempDir(), "c")); !errors.Is(err, goatdb.ErrClosed) {
		t.Errorf("backup of a closed database: %v, want ErrClosed", err)
	}
}

// TestBackupKeepsQuarantine backs up a repository whose recovery
// quarantined damaged bytes: the copy keeps the quarantine file, so the
// bytes are not lost with the original directory.
func TestBackupKeepsQuarantine(t *testing.T) {
	dir := t.TempDir()
	w, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := w.Put(fmt.Sprintf("/data/q/i%d", i), goatdb.Fields{"text": strings.Repeat("q", 50)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	log := filepath.Join(dir, "data", "q.log")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(log, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Neither the database nor its backup is checked when the test ends:
	// both keep the quarantined damage, on purpose.
	db := dbtest.OpenDBUnchecked(t, dir, nil)
	if _, err := db.Count("/data/q"); err != nil { // recovery quarantines the damage
		t.Fatal(err)
	}
	want, err := os.ReadFile(log + ".quarantine")
	if err != nil {
		t.Fatalf("no quarantine file after recovery: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "b")
	if err := db.Backup(t.Context(), dest); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, "data", "q.log.quarantine"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("quarantine file in the backup: %d bytes (%v), want the %d of the original", len(got), err, len(want))
	}
	cp := dbtest.OpenDBUnchecked(t, dest, nil)
	h, err := cp.Health()
	if err != nil || h.Status != goatdb.StatusDamaged {
		t.Errorf("the copy's health: %v (%v), want the original's quarantined damage", h, err)
	}
}

// TestBackupKeepsIdentityAndLogins: a backup holds what a restored
// directory needs to go on as it was: a server's deployment identity
// (auth/) and a client's stored logins, all readable by the owner only.
func TestBackupKeepsIdentityAndLogins(t *testing.T) {
	dir := t.TempDir()
	id, err := server.OpenIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	creds := []byte(`{"stand-in":"a login"}`)
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	db := dbtest.OpenDBIn(t, dir, nil)
	dest := filepath.Join(t.TempDir(), "copy")
	if err := db.Backup(t.Context(), dest); err != nil {
		t.Fatal(err)
	}
	again, err := server.OpenIdentity(dest)
	if err != nil {
		t.Fatal(err)
	}
	if again.Audience != id.Audience || !again.Root.Equal(id.Root) || !again.NodeKey.Equal(id.NodeKey) {
		t.Fatal("the restored directory is another deployment or node")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "credentials.json")); err != nil || string(b) != string(creds) {
		t.Fatalf("credentials.json in the copy: %q, %v", b, err)
	}
	for _, f := range []string{"credentials.json", "auth/root.key", "auth/node.key"} {
		if info, err := os.Stat(filepath.Join(dest, f)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s in the copy: %v, %v", f, info, err)
		}
	}
}
