package commit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/zeebo/blake3"
)

// testKey returns a deterministic Ed25519 key and its session id; different
// n give different keys.
func testKey(n byte) (ed25519.PrivateKey, commit.SessionID) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n + byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	var s commit.SessionID
	copy(s[:], priv.Public().(ed25519.PublicKey))
	return priv, s
}

// testID returns an id whose bytes are all b.
func testID(b byte) commit.ID {
	var id commit.ID
	for i := range id {
		id[i] = b
	}
	return id
}

const testTime = int64(1_735_689_600_123) // 2025-01-01T00:00:00.123Z

// testItem is the workload item {title: "Item 42", count: 42, tags: {"tag42","category2"}}.
func testItem() item.Item {
	return item.New(map[string]item.Value{
		"title": item.String("Item 42"),
		"count": item.Number(42),
		"tags":  item.StringSet("tag42", "category2"),
	})
}

// testDelta sets count to 51 and adds a tag.
func testDelta() item.Delta {
	base := testItem()
	return item.Diff(base, base.With("count", item.Number(51)).With("tags", item.StringSet("tag42", "category2", "new")))
}

// testRepo is the repository the test commits name.
const testRepo = "/data/tasks"

// fullFields returns the fields of a full commit by session s.
func fullFields(s commit.SessionID, parents ...commit.ID) commit.Fields {
	return commit.Fields{
		Repo: testRepo, Key: "task-0001", Parents: parents, Time: testTime, Session: s,
		Full: true, Schema: commit.Schema{NS: "tasks", Version: 3}, Value: testItem(),
	}
}

// deltaFields returns the fields of a delta commit by session s on parent,
// which is also its base.
func deltaFields(s commit.SessionID, parent commit.ID) commit.Fields {
	return commit.Fields{
		Repo: testRepo, Key: "task-0001", Parents: []commit.ID{parent}, Time: testTime + 1000, Session: s,
		Base: parent, Delta: testDelta(),
	}
}

func mustNew(t testing.TB, f commit.Fields, key ed25519.PrivateKey) *commit.Commit {
	t.Helper()
	c, err := commit.New(f, key)
	if err != nil {
		t.Fatalf("New(%+v): %v", f, err)
	}
	return c
}

func mustDecode(t testing.TB, b []byte) *commit.Commit {
	t.Helper()
	c, err := commit.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	return c
}

// kind is one valid commit of each shape the format allows.
type kind struct {
	name string
	c    *commit.Commit
}

// kinds returns valid commits of every kind: full and delta, signed and
// unsigned, root and child, full and delta merges, dynamic schema, deleted
// item, and a merge of many leaves.
func kinds(t testing.TB) []kind {
	t.Helper()
	priv, s := testKey(1)
	priv2, s2 := testKey(2)
	root := mustNew(t, fullFields(s), priv)
	a := mustNew(t, deltaFields(s, root.ID()), priv)
	bf := deltaFields(s2, root.ID())
	bf.Delta = item.Diff(testItem(), testItem().With("title", item.String("other")))
	b := mustNew(t, bf, priv2)
	merged := testItem().With("count", item.Number(51)).With("title", item.String("other"))
	fullMerge, err := commit.NewMerge("task-0001", []*commit.Commit{a, b}, commit.Fields{
		Full: true, Schema: commit.Schema{NS: "tasks", Version: 3}, Value: merged,
	})
	if err != nil {
		t.Fatal(err)
	}
	deltaMerge, err := commit.NewMerge("task-0001", []*commit.Commit{b, a, root}, commit.Fields{
		Base: root.ID(), Delta: item.Diff(testItem(), merged),
	})
	if err != nil {
		t.Fatal(err)
	}
	dyn := fullFields(s, root.ID())
	dyn.Schema = commit.Schema{}
	dyn.Value = item.New(map[string]item.Value{"n": item.Int(-7), "when": item.DateMillis(testTime)})
	deleted := fullFields(s, root.ID())
	deleted.Value = testItem().WithDeleted(true)
	var leaves []*commit.Commit
	for i := range 5 {
		f := fullFields(s, root.ID())
		f.Time += int64(i)
		leaves = append(leaves, mustNew(t, f, nil))
	}
	wide, err := commit.NewMerge("task-0001", leaves, commit.Fields{Full: true, Value: testItem()})
	if err != nil {
		t.Fatal(err)
	}
	return []kind{
		{"full signed root", root},
		{"full unsigned root", mustNew(t, fullFields(s), nil)},
		{"delta signed", a},
		{"delta unsigned", mustNew(t, deltaFields(s, root.ID()), nil)},
		{"full merge", fullMerge},
		{"delta merge", deltaMerge},
		{"dynamic schema", mustNew(t, dyn, priv)},
		{"deleted item", mustNew(t, deleted, nil)},
		{"merge of five", wide},
	}
}

// checkSame fails unless a and b report the same fields and encoding.
func checkSame(t testing.TB, a, b *commit.Commit) {
	t.Helper()
	switch {
	case a.ID() != b.ID():
		t.Errorf("id %s != %s", a.ID(), b.ID())
	case a.Key() != b.Key():
		t.Errorf("key %q != %q", a.Key(), b.Key())
	case !slices.Equal(a.Parents(), b.Parents()):
		t.Errorf("parents %v != %v", a.Parents(), b.Parents())
	case a.Time() != b.Time() || !a.Timestamp().Equal(b.Timestamp()):
		t.Errorf("time %d != %d", a.Time(), b.Time())
	case a.Session() != b.Session():
		t.Errorf("session %s != %s", a.Session(), b.Session())
	case a.IsFull() != b.IsFull() || a.IsMerge() != b.IsMerge() || a.Signed() != b.Signed():
		t.Errorf("full/merge/signed %v/%v/%v != %v/%v/%v",
			a.IsFull(), a.IsMerge(), a.Signed(), b.IsFull(), b.IsMerge(), b.Signed())
	case a.Schema() != b.Schema():
		t.Errorf("schema %s != %s", a.Schema(), b.Schema())
	case !item.ItemsEqual(a.Value(), b.Value()):
		t.Errorf("value %s != %s", a.Value(), b.Value())
	case a.Base() != b.Base():
		t.Errorf("base %s != %s", a.Base(), b.Base())
	case !bytes.Equal(deltaBytes(t, a.Delta()), deltaBytes(t, b.Delta())):
		t.Errorf("delta %+v != %+v", a.Delta(), b.Delta())
	case !bytes.Equal(a.Signature(), b.Signature()):
		t.Errorf("signature %x != %x", a.Signature(), b.Signature())
	case !bytes.Equal(a.Body(), b.Body()) || !bytes.Equal(a.Encode(), b.Encode()) || a.Size() != b.Size():
		t.Errorf("encoding %x != %x", a.Encode(), b.Encode())
	}
}

func deltaBytes(t testing.TB, d item.Delta) []byte {
	t.Helper()
	b, err := item.AppendDelta(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fieldsOf returns the fields c was built from, so New can build it again.
func fieldsOf(c *commit.Commit) commit.Fields {
	return commit.Fields{
		Repo: c.Repo(), Key: c.Key(), Parents: c.Parents(), Time: c.Time(), Session: c.Session(),
		Full: c.IsFull(), Schema: c.Schema(), Value: c.Value(), Base: c.Base(), Delta: c.Delta(),
	}
}

// checkID fails unless c's id is blake3-256 of its body.
func checkID(t testing.TB, c *commit.Commit) {
	t.Helper()
	if want := commit.ID(blake3.Sum256(c.Body())); c.ID() != want {
		t.Errorf("id %s, blake3(body) %s", c.ID(), want)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v, want one wrapping %v", err, target)
	}
}

// body builds a commit body byte by byte as drawn in doc.go, so tests can
// check the layout and write encodings New refuses to make. session and
// contents are written as they are (session nil: absent).
type body struct {
	version  byte
	flags    byte
	repo     string // written for version 2 and later
	key      string
	parents  []commit.ID
	nparents int // if not -1, the parent count written instead of len(parents)
	time     uint64
	session  []byte
	contents []byte
}

func (b body) bytes() []byte {
	out := []byte{b.version, b.flags}
	if b.version >= 2 {
		out = binary.AppendUvarint(out, uint64(len(b.repo)))
		out = append(out, b.repo...)
	}
	out = binary.AppendUvarint(out, uint64(len(b.key)))
	out = append(out, b.key...)
	n := uint64(len(b.parents))
	if b.nparents >= 0 {
		n = uint64(b.nparents)
	}
	out = binary.AppendUvarint(out, n)
	for _, p := range b.parents {
		out = append(out, p[:]...)
	}
	out = binary.AppendUvarint(out, b.time)
	out = append(out, b.session...)
	return append(out, b.contents...)
}

func fullContents(t testing.TB, ns string, version uint64, it item.Item) []byte {
	t.Helper()
	out := binary.AppendUvarint(nil, uint64(len(ns)))
	out = append(out, ns...)
	out = binary.AppendUvarint(out, version)
	out, err := item.AppendItem(out, it)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deltaContents(t testing.TB, base commit.ID, d item.Delta) []byte {
	t.Helper()
	out, err := item.AppendDelta(slices.Clone(base[:]), d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// validBody is the body of fullFields(session 1, testID(7)): a full commit
// with a session and one parent.
func validBody(t testing.TB) body {
	t.Helper()
	_, s := testKey(1)
	return body{
		version: commit.Version, flags: 2, repo: testRepo, key: "task-0001", parents: []commit.ID{testID(7)}, nparents: -1,
		time: uint64(testTime), session: s[:], contents: fullContents(t, "tasks", 3, testItem()),
	}
}
