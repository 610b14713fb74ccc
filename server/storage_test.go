package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/vfs"
)

// health returns /healthz's status code, its answer and its body.
func health(t *testing.T, url string) (int, healthReport, string) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, decodeHealth(t, resp.Header, b), string(b)
}

// metric returns a series' value in a server's /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	v, ok := scrape(t, url)[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// TestServeBesideUnopenableRepo is finding 2: a repository whose log
// cannot be read does not stop the server from starting or the other
// repositories from being served, and health and metrics name it.
func TestServeBesideUnopenableRepo(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	mustPut(t, db, "/data/good/a", goatdb.Fields{"n": 1})
	db.Close()
	if err := os.WriteFile(filepath.Join(dir, "data", "bad.log"), []byte("this is not a goatdb log at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not checked when the test ends: /data/bad cannot be opened, on
	// purpose. /data/good is checked below.
	db = dbtest.OpenDBUnchecked(t, dir, nil)
	srv := serve(t, db, nil, "")
	code, h, body := health(t, srv.url)
	if code != http.StatusOK || h.Status != "damaged" || len(h.Repos) != 1 || h.Repos[0].Repo != "/data/bad" || h.Repos[0].Status != "damaged" {
		t.Errorf("/healthz = %d %q, want 200 naming /data/bad as damaged", code, body)
	}
	if strings.Contains(body, dir) {
		t.Errorf("/healthz shows a server path: %q", body)
	}
	if got := metric(t, srv.url, "goatdb_storage_unavailable_repositories"); got != 1 {
		t.Errorf("unavailable repositories = %v, want 1", got)
	}
	client := dbtest.OpenDB(t, nil)
	mustSync(t, client, srv.url, "/data/good")
	if got := get(t, client, "/data/good/a")["n"]; got != int64(1) && got != float64(1) {
		t.Errorf("client got n = %v", got)
	}
	good, err := db.Repo("/data/good")
	if err != nil {
		t.Fatal(err)
	}
	dbtest.RequireClean(t, good)
}

// TestServeQuarantineRepairedBySync damages a record in the server's log:
// the server starts, quarantines it and reports it (finding 5); a client
// that holds the lost item syncs it back, which resolves the quarantine,
// and health is ok again.
func TestServeQuarantineRepairedBySync(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	for _, v := range []string{"first", "second-value-to-lose", "third"} {
		mustPut(t, db, "/data/t/"+v[:5], goatdb.Fields{"v": v})
	}
	srv := serve(t, db, nil, "")
	client := dbtest.OpenDB(t, nil)
	mustSync(t, client, srv.url, "/data/t")
	srv.stop()
	db.Close()

	file := filepath.Join(dir, "data", "t.log")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("second-value-to-lose"))
	if i < 0 {
		t.Fatal("value not found in the log")
	}
	data[i+3] ^= 0x20
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}

	db = dbtest.OpenDBIn(t, dir, nil)
	srv = serve(t, db, nil, "")
	if _, err := db.Get("/data/t/secon"); err == nil {
		t.Fatalf("the damaged item was read")
	}
	code, h, body := health(t, srv.url)
	if code != http.StatusOK || h.Status != "damaged" || len(h.Repos) != 1 || h.Repos[0].Repo != "/data/t" || h.Repos[0].Quarantined != 1 {
		t.Errorf("/healthz = %d %q, want damaged with one quarantined range", code, body)
	}
	if got := metric(t, srv.url, "goatdb_storage_quarantined_ranges"); got != 1 {
		t.Errorf("quarantined ranges = %v, want 1", got)
	}
	mustSync(t, client, srv.url, "/data/t")
	if got := get(t, db, "/data/t/secon")["v"]; got != "second-value-to-lose" {
		t.Errorf("after sync the server has %v", got)
	}
	if code, h, body := health(t, srv.url); code != http.StatusOK || h.Status != "ok" || len(h.Repos) != 0 {
		t.Errorf("/healthz after repair = %d %q, want ok", code, body)
	}
	if got := metric(t, srv.url, "goatdb_storage_quarantined_ranges"); got != 0 {
		t.Errorf("quarantined ranges after repair = %v, want 0", got)
	}
}

// TestHealthDegradedWhileDiskFails is finding 7's other half: while
// writes fail, /healthz answers 503 "degraded"; once the disk works again
// the next write succeeds without a restart and health is ok.
func TestHealthDegradedWhileDiskFails(t *testing.T) {
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem})
	mustPut(t, db, "/data/t/a", goatdb.Fields{"n": 1})
	srv := serve(t, db, nil, "")
	mem.SetHook(func(op, name string) error {
		if op == "write" && strings.HasSuffix(name, "t.log") {
			return syscall.ENOSPC
		}
		return nil
	})
	if _, err := db.Put("/data/t/b", goatdb.Fields{"n": 2}); err == nil {
		t.Fatal("write on a full disk succeeded")
	}
	if _, err := db.Get("/data/t/b"); err == nil {
		t.Errorf("the failed write is readable")
	}
	code, h, body := health(t, srv.url)
	if code != http.StatusServiceUnavailable || h.Status != "degraded" || len(h.Repos) != 1 ||
		h.Repos[0].Status != "degraded" || !strings.HasPrefix(h.Repos[0].Problem, "writes are failing") {
		t.Errorf("/healthz = %d %q, want 503 degraded", code, body)
	}
	if got := metric(t, srv.url, "goatdb_storage_failing_repositories"); got != 1 {
		t.Errorf("failing repositories = %v, want 1", got)
	}
	mem.SetHook(nil)
	mustPut(t, db, "/data/t/b", goatdb.Fields{"n": 2})
	if code, h, body := health(t, srv.url); code != http.StatusOK || h.Status != "ok" || len(h.Repos) != 0 {
		t.Errorf("/healthz after the disk recovered = %d %q, want ok", code, body)
	}
}
