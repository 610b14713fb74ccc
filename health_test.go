package goatdb_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
)

// TestHealth is finding 5 for the embedding API: damage that rolls an item
// back is reported by DB.Health (the logger discards by default), for a
// writable and a read-only open, and so is a repository that cannot be
// opened; the other repositories stay ok.
func TestHealth(t *testing.T) {
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/data/t/a", "/data/t/b", "/data/ok/c"} {
		if _, err := db.Put(p, goatdb.Fields{"v": "value of " + p}); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := db.Health(); err != nil || h.Status != goatdb.StatusOK || len(h.Repos) != 0 {
		t.Fatalf("Health of a sound database = %v, %v", h, err)
	}
	db.Close()
	file := filepath.Join(dir, "data", "t.log")
	data, _ := os.ReadFile(file)
	i := bytes.Index(data, []byte("value of /data/t/a"))
	data[i+4] ^= 0x40
	os.WriteFile(file, data, 0o644)
	os.WriteFile(filepath.Join(dir, "data", "junk.log"), []byte("junk"), 0o644)

	for _, ro := range []bool{true, false} {
		db, err := goatdb.Open(dir, &goatdb.Options{ReadOnly: ro})
		if err != nil {
			t.Fatal(err)
		}
		h, err := db.Health()
		if err != nil || h.Status != goatdb.StatusDamaged || len(h.Repos) != 2 {
			t.Fatalf("read-only %v: Health = %v, %v; want /data/junk and /data/t damaged", ro, h, err)
		}
		junk, tr := h.Repos[0], h.Repos[1]
		if junk.Path != "/data/junk" || junk.Err == nil {
			t.Errorf("read-only %v: %v, want /data/junk unopenable", ro, junk)
		}
		if tr.Path != "/data/t" || tr.Status != goatdb.StatusDamaged {
			t.Errorf("read-only %v: %v, want /data/t damaged", ro, tr)
		}
		if ro && !errors.Is(tr.Err, goatdb.ErrCorrupt) {
			t.Errorf("read-only: /data/t err %v, want ErrCorrupt for damage still in the log", tr.Err)
		}
		if !ro && (len(tr.Quarantined) != 1 || !strings.HasSuffix(tr.Quarantined[0].File, "t.log.quarantine")) {
			t.Errorf("writable: quarantined %v, want one range in t.log.quarantine", tr.Quarantined)
		}
		if it, err := db.Get("/data/ok/c"); err != nil || it.Get("v") != "value of /data/ok/c" {
			t.Errorf("read-only %v: the sound repository: %v, %v", ro, it, err)
		}
		db.Close()
	}
}
