package repo

// White-box tests of the exclusion record: its decoder, and what recovery
// does with a record that is sound but does not decode, or that is found
// by scanning past damage.

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// FuzzExclusionRecord decodes arbitrary record data: it never panics, and
// what decodes encodes back to the same bytes.
func FuzzExclusionRecord(f *testing.F) {
	var id commit.ID
	id[3] = 7
	for _, op := range []*exclOp{
		{action: actExclude, kind: ExcludeQuarantined, at: 1_700_000_000_000, reason: "not allowed", ids: []commit.ID{id}},
		{action: actExclude, kind: ExcludeForgotten, at: -1, ids: []commit.ID{id, {}}},
		{action: actRestore, ids: []commit.ID{id}},
		{action: actDiscard, at: 5, ids: []commit.ID{{}}},
	} {
		f.Add(appendExclusion(nil, op))
	}
	f.Add([]byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := decodeExclusion(data)
		if err != nil {
			return
		}
		if again := appendExclusion(nil, op); !bytes.Equal(again, data) {
			t.Fatalf("decode then encode changed the record:\n%x\n%x", data, again)
		}
	})
}

// exLog writes a log holding one commit of item x, closes it and returns
// its bytes and the commit.
func exLog(t *testing.T, fs *vfs.MemFS) ([]byte, *commit.Commit) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	r, err := Open("/d/a.log", &Options{FS: fs, Key: ed25519.NewKeyFromSeed(seed)})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := r.Write(Update{Key: "x", Fn: func(c Current) (item.Item, commit.Schema, error) {
		return c.Value.With("v", item.String("1")), c.Schema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile("/d/a.log")
	if err != nil {
		t.Fatal(err)
	}
	return data, cs[0]
}

// exReopen replaces the log with data and opens it, writable or read-only.
func exReopen(t *testing.T, fs *vfs.MemFS, data []byte, readOnly bool) *Repo {
	t.Helper()
	if err := vfs.WriteFileAtomic(fs, "/d/a.log", data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open("/d/a.log", &Options{FS: fs, ReadOnly: readOnly})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestExclusionRecordRecovery appends to a clean log a sound exclusion
// record that does not decode, and one that does but follows damage (as
// if found inside a commit's content): neither excludes anything, the
// first is reported as damage and the log opens either way.
func TestExclusionRecordRecovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(b []byte, x commit.ID) []byte
	}{
		{"undecodable", func(b []byte, x commit.ID) []byte {
			return appendRecord(b, recExclude, []byte{exclVersion, byte(actExclude), 9, 0, 0, 0, 0, 0, 0, 0, 0}, int64(len(b)))
		}},
		{"past damage", func(b []byte, x commit.ID) []byte {
			b = append(b, "not a record"...)
			return appendExclusionRecord(b, &exclOp{action: actExclude, kind: ExcludeForgotten, ids: []commit.ID{x}}, 0)
		}},
	} {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				fs := vfs.NewMem()
				data, x := exLog(t, fs)
				data = tc.add(data, x.ID())
				data = appendMark(data, int64(len(data))) // claims the damage: corruption
				r := exReopen(t, fs, data, ro)
				if _, _, ok := r.Get("x"); !ok || len(r.Excluded()) > 0 {
					t.Fatalf("x present %v, excluded %v: the record excluded something", ok, r.Excluded())
				}
				if h := r.Health(); h.OK() {
					t.Errorf("health %+v: the damage is not reported", h)
				}
				if len(r.Check()) == 0 {
					t.Error("Check reports nothing")
				}
			})
		}
	}
}
