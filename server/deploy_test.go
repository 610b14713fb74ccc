package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/server"
)

// TestRootFileAndNodeInit: a root file round-trips; nodes initialised
// from it share the audience and root, hold no root key, and have
// certificates of their own that chain to it; a directory of another
// deployment is refused.
func TestRootFileAndNodeInit(t *testing.T) {
	dir := t.TempDir()
	aud, key, err := server.NewRoot("")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "root.key")
	if err := server.WriteRootFile(path, aud, key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root file mode: %v %v", fi, err)
	}
	if err := server.WriteRootFile(path, aud, key); err == nil {
		t.Fatal("the root file was replaced")
	}
	aud2, key2, err := server.ReadRootFile(path)
	if err != nil || aud2 != aud || !key2.Equal(key) {
		t.Fatalf("read back: %q %v", aud2, err)
	}
	var ids []*server.Identity
	for _, n := range []string{"n1", "n2"} {
		d := filepath.Join(dir, n)
		id, err := server.InitNode(d, aud, key, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(d, "auth", "root.key")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("node %s holds the root key (%v)", n, err)
		}
		reopened, err := server.OpenIdentity(d)
		if err != nil || reopened.Audience != aud || !reopened.Root.Equal(key.Public()) || reopened.Node.Verify(reopened.Root, time.Now()) != nil {
			t.Fatalf("node %s reopened: %+v %v", n, reopened, err)
		}
		ids = append(ids, id)
	}
	if ids[0].NodeKey.Equal(ids[1].NodeKey) {
		t.Fatal("two nodes share a node key")
	}
	// Running node init again renews the certificate and keeps the key.
	again, err := server.InitNode(filepath.Join(dir, "n1"), aud, key, "n1", time.Hour)
	if err != nil || !again.NodeKey.Equal(ids[0].NodeKey) {
		t.Fatalf("node init again: %v", err)
	}
	otherAud, otherKey, _ := server.NewRoot("other")
	if _, err := server.InitNode(filepath.Join(dir, "n1"), otherAud, otherKey, "n1", 0); err == nil || !strings.Contains(err.Error(), "deployment") {
		t.Fatalf("a node of another deployment: %v", err)
	}
	own := filepath.Join(dir, "own")
	if _, err := server.OpenIdentity(own); err != nil {
		t.Fatal(err)
	}
	if _, err := server.InitNode(own, aud, key, "own", 0); err == nil {
		t.Fatal("a directory with its own root key was made a node of another deployment")
	}
}

// FuzzParseRootFile: any bytes parse or fail with ErrRootFile, never
// panic.
func FuzzParseRootFile(f *testing.F) {
	f.Add([]byte("goatdb deployment root 1\naudience a\nseed " + strings.Repeat("00", 32) + "\n"))
	f.Add([]byte("goatdb deployment root 1\naudience \nseed zz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := server.ParseRootFile(data); err != nil && !errors.Is(err, server.ErrRootFile) {
			t.Fatalf("error %v is not ErrRootFile", err)
		}
	})
}
