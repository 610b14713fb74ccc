package goatdb_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// TestErrCorruptEveryLayer checks that corruption found by any layer (a
// commit that does not decode, an item value that does not, a log header
// damaged beyond repair, a damaged key file) matches goatdb.ErrCorrupt,
// and keeps its own sentinel.
func TestErrCorruptEveryLayer(t *testing.T) {
	_, err := commit.Decode([]byte{1, 2, 3})
	if !errors.Is(err, goatdb.ErrCorrupt) || !errors.Is(err, commit.ErrCorrupt) {
		t.Errorf("commit decode: %v", err)
	}
	_, err = item.DecodeItem([]byte{0xff, 0xff})
	if !errors.Is(err, goatdb.ErrCorrupt) || !errors.Is(err, item.ErrCorrupt) {
		t.Errorf("item decode: %v", err)
	}
	path := filepath.Join(t.TempDir(), "x.log")
	// Cut within a version 1 header: not what a crash leaves of a new log,
	// which a writer would create again.
	os.WriteFile(path, []byte("goatdbLG\x01\x00\x00\x00"), 0o644)
	_, err = repo.Open(path, nil)
	if !errors.Is(err, goatdb.ErrCorrupt) || !errors.Is(err, repo.ErrCorrupt) {
		t.Errorf("repo open: %v", err)
	}
	if errors.Is(errors.New("other"), goatdb.ErrCorrupt) || errors.Is(goatdb.ErrNotFound, goatdb.ErrCorrupt) {
		t.Errorf("unrelated errors match ErrCorrupt")
	}
}

// TestSessionKeyDamage flips every byte of the session key file in turn:
// each one is refused with ErrSessionKey (never silently taken as another
// key), naming the file and what to do. A key file of the seed alone, as
// written before, is read, keeps its session, and is rewritten with its
// check.
func TestSessionKeyDamage(t *testing.T) {
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	session := db.Session()
	db.Close()
	file := filepath.Join(dir, "session.key")
	good, err := os.ReadFile(file)
	if err != nil || len(good) != ed25519.PrivateKeySize {
		t.Fatalf("key file is %d bytes (%v), want seed and public key", len(good), err)
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x04
		os.WriteFile(file, bad, 0o600)
		for _, ro := range []bool{false, true} {
			_, err := goatdb.Open(dir, &goatdb.Options{ReadOnly: ro})
			if !errors.Is(err, goatdb.ErrSessionKey) || !errors.Is(err, goatdb.ErrCorrupt) || !strings.Contains(err.Error(), file) {
				t.Fatalf("byte %d flipped (read-only %v): %v", i, ro, err)
			}
		}
	}
	os.WriteFile(file, good[:ed25519.SeedSize], 0o600)
	db, err = goatdb.Open(dir, nil)
	if err != nil || db.Session() != session {
		t.Fatalf("seed-only key file: %v, session changed %v", err, db != nil && db.Session() != session)
	}
	db.Close()
	if got, _ := os.ReadFile(file); !bytes.Equal(got, good) {
		t.Errorf("seed-only key file not rewritten with its check: %d bytes", len(got))
	}
}
