package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// flipIn flips a byte inside the first occurrence of marker in a file.
func flipIn(t *testing.T, file, marker string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("%q not found in %s (compressed?)", marker, file)
	}
	data[i+len(marker)/2] ^= 0x01
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestImportedBatchFlippedByte is finding 1: an import writes one record;
// a byte flipped inside it no longer costs the batch. Reading warns and
// changes nothing; the first write quarantines the record's bytes (the log
// is not cut), salvages every commit that still verifies, and verify
// names the quarantine instead of calling it a torn tail.
func TestImportedBatchFlippedByte(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	// Small items: the batch stays uncompressed, so salvage can read the
	// commits around the flipped byte.
	var in strings.Builder
	for i := range 3 {
		fmt.Fprintf(&in, `{"key": "k%d", "fields": {"v": "value-%d-%s"}}`+"\n", i, i, strings.Repeat("q", 20))
	}
	if r := cli(t, dir, in.String(), "import", "/data/imp"); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	file := logFile(dir, "/data/imp")
	damaged := flipIn(t, file, "value-1-")
	size := len(damaged)

	r := cli(t, dir, "", "ls", "/data/imp")
	if r.code != 0 || !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, file) {
		t.Errorf("ls on a damaged log: exit %d, stderr %q; want a warning naming %s", r.code, r.stderr, file)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, damaged) {
		t.Fatalf("a read changed the log")
	}

	// A write opens the log for writing: quarantine, salvage, rebuild.
	r = cli(t, dir, "", "put", "/data/imp/new", `{"v": "after"}`)
	if r.code != 0 || !strings.Contains(r.stderr, "quarantined") {
		t.Fatalf("put after damage: exit %d, stderr %q", r.code, r.stderr)
	}
	q, err := os.ReadFile(file + ".quarantine")
	if err != nil || !bytes.Contains(q, damaged[bytes.Index(damaged, []byte("value-0-")):bytes.Index(damaged, []byte("value-2-"))]) {
		t.Fatalf("the quarantine file does not hold the damaged record (%v)", err)
	}
	if fi, _ := os.Stat(file); fi.Size() < int64(size)/2 {
		t.Errorf("the log shrank from %d to %d bytes", size, fi.Size())
	}
	for _, k := range []string{"k0", "k2", "new"} {
		if r := cli(t, dir, "", "get", "/data/imp/"+k); r.code != 0 || !strings.Contains(r.stderr, "quarantined") {
			t.Errorf("get %s: exit %d, stderr %q; want the value and a quarantine warning", k, r.code, r.stderr)
		}
	}
	r = cli(t, dir, "", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, file+".quarantine") || strings.Contains(r.stdout+r.stderr, "backup") {
		t.Errorf("verify: exit %d\nstdout %s\nstderr %s\nwant exit 1 naming the quarantine file", r.code, r.stdout, r.stderr)
	}
}

// TestDamageWarnsOnRead is finding 5: an update lost to damage in the
// middle of the log makes get show the previous value, but never
// silently: a warning names the file and the offset.
func TestDamageWarnsOnRead(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/t/x", `{"v": "first-value"}`)
	mustPut(t, dir, "/data/t/x", `{"v": "second-value"}`)
	mustPut(t, dir, "/data/t/y", `{"v": "other"}`)
	file := logFile(dir, "/data/t")
	flipIn(t, file, "second-value")
	r := cli(t, dir, "", "get", "/data/t/x")
	if !strings.Contains(r.stdout, "first-value") {
		t.Fatalf("get: %+v", r)
	}
	if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, file) || !strings.Contains(r.stderr, "offset=") {
		t.Errorf("get shows the older value without a warning naming the file and offset: stderr %q", r.stderr)
	}
}

// TestRepairFromPeer damages a record in a client's log: the client's
// first write quarantines it and verify fails; 'goatdb sync' with a
// server that holds the lost commit brings it back, and verify passes
// again. 'goatdb serve' meanwhile starts beside a repository that cannot
// be read at all.
func TestRepairFromPeer(t *testing.T) {
	t.Parallel()
	srvDir := newDir(t)
	if err := os.MkdirAll(srvDir+"/data", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logFile(srvDir, "/data/unreadable"), []byte("not a log"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The test is about repair, not logins: anyone may sync.
	srv := startServe(t, srvDir, "--anonymous", "--rules", "open")

	dir := newDir(t)
	mustPut(t, dir, "/data/t/a", `{"v": "first"}`)
	mustPut(t, dir, "/data/t/b", `{"v": "the-one-to-lose"}`)
	mustPut(t, dir, "/data/t/c", `{"v": "third"}`)
	syncOK(t, dir, srv.url, "/data/t")
	flipIn(t, logFile(dir, "/data/t"), "the-one-to-lose")
	if r := cli(t, dir, "", "put", "/data/t/d", `{"v": "after"}`); r.code != 0 {
		t.Fatalf("put: %+v", r)
	}
	if r := cli(t, dir, "", "get", "/data/t/b"); r.code == 0 {
		t.Fatalf("the damaged item is still read: %+v", r)
	}
	if r := cli(t, dir, "", "verify"); r.code != 1 {
		t.Fatalf("verify with a quarantined range: %+v", r)
	}
	if r := cli(t, dir, "", "sync", srv.url, "/data/t"); r.code != 0 {
		t.Fatalf("sync: %+v", r)
	}
	if got := ok(t, dir, "get", "/data/t/b"); got != `{"v":"the-one-to-lose"}`+"\n" {
		t.Errorf("get after the repair: %q", got)
	}
	if got := ok(t, dir, "verify"); !strings.HasPrefix(got, "ok: ") {
		t.Errorf("verify after the repair: %q", got)
	}
}
