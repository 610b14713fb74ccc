package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/server"
)

// TestRootAndNodeInit: root init writes a root file once; node init makes
// directories nodes of its deployment without the root key; bad usage
// and a directory of another deployment exit with a reason.
func TestRootAndNodeInit(t *testing.T) {
	base := t.TempDir()
	rootFile := filepath.Join(base, "root.key")
	out := ok(t, base, "root", "init", "--out", rootFile, "--audience", "prod-eu")
	if !strings.Contains(out, "deployment prod-eu") || !strings.Contains(out, "root public key ") {
		t.Fatalf("root init printed %q", out)
	}
	failure(t, cli(t, base, "", "root", "init", "--out", rootFile), exitUsage, "exists")
	failure(t, cli(t, base, "", "root", "init"), exitUsage, "--out")

	for _, n := range []string{"n1", "n2"} {
		dir := filepath.Join(base, n)
		out := ok(t, dir, "node", "init", "--root", rootFile, "--name", n)
		if !strings.Contains(out, "node "+n+" of deployment prod-eu") {
			t.Fatalf("node init printed %q", out)
		}
		id, err := server.OpenIdentity(dir)
		if err != nil || id.Audience != "prod-eu" || id.Node.Node() != n {
			t.Fatalf("node %s identity: %+v %v", n, id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "auth", "root.key")); err == nil {
			t.Fatalf("node %s holds the root key", n)
		}
	}
	failure(t, cli(t, filepath.Join(base, "n3"), "", "node", "init", "--root", rootFile), exitUsage, "--name")
	other := filepath.Join(base, "other.key")
	ok(t, base, "root", "init", "--out", other)
	failure(t, cli(t, filepath.Join(base, "n1"), "", "node", "init", "--root", other, "--name", "n1"), exitUsage, "another deployment")
	if err := os.WriteFile(filepath.Join(base, "junk.key"), []byte("not a root"), 0o600); err != nil {
		t.Fatal(err)
	}
	failure(t, cli(t, filepath.Join(base, "n4"), "", "node", "init", "--root", filepath.Join(base, "junk.key"), "--name", "n4"), exitUsage, "root file")
}
