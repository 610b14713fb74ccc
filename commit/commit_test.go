package commit_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

func TestRoundTrip(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			c := k.c
			checkID(t, c)
			if c.Size() != len(c.Encode()) || !bytes.HasPrefix(c.Encode(), c.Body()) {
				t.Fatalf("Size %d, Encode %x, Body %x", c.Size(), c.Encode(), c.Body())
			}
			if got := c.AppendEncoding([]byte("x")); !bytes.Equal(got, append([]byte("x"), c.Encode()...)) {
				t.Errorf("AppendEncoding = %x", got)
			}
			d := mustDecode(t, c.Encode())
			checkSame(t, c, d)
			checkID(t, d)
			// Built again from its decoded fields, it has the same body.
			again := mustNew(t, fieldsOf(d), nil)
			if !bytes.Equal(again.Body(), c.Body()) || again.ID() != c.ID() {
				t.Errorf("rebuilt body %x, want %x", again.Body(), c.Body())
			}
			if err := d.VerifySignature(c.Signed() || c.IsMerge()); err != nil {
				t.Errorf("VerifySignature: %v", err)
			}
			if err := d.VerifySignature(false); err != nil {
				t.Errorf("VerifySignature(false): %v", err)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	priv, s := testKey(1)
	f := fullFields(s, testID(9), testID(3))
	f.Session = commit.SessionID{}
	c := mustNew(t, f, nil)
	if !c.IsMerge() || !c.IsFull() || c.Signed() || c.Signature() != nil || !c.Session().IsZero() {
		t.Errorf("merge: IsMerge %v IsFull %v Signed %v Session %s", c.IsMerge(), c.IsFull(), c.Signed(), c.Session())
	}
	if want := []commit.ID{testID(3), testID(9)}; !slices.Equal(c.Parents(), want) {
		t.Errorf("Parents = %v, want sorted %v", c.Parents(), want)
	}
	if got := c.Timestamp().Format("2006-01-02T15:04:05.000Z07:00"); got != "2025-01-01T00:00:00.123Z" {
		t.Errorf("Timestamp = %s", got)
	}
	if c.Schema() != (commit.Schema{NS: "tasks", Version: 3}) || !item.ItemsEqual(c.Value(), testItem()) {
		t.Errorf("Schema %s, Value %s", c.Schema(), c.Value())
	}
	d := mustNew(t, deltaFields(s, c.ID()), priv)
	if d.IsMerge() || d.IsFull() || !d.Signed() || len(d.Signature()) != ed25519.SignatureSize || d.Session() != s {
		t.Errorf("delta: IsMerge %v IsFull %v Signed %v Session %s", d.IsMerge(), d.IsFull(), d.Signed(), d.Session())
	}
	if d.Base() != c.ID() || d.Schema() != (commit.Schema{}) || d.Key() != "task-0001" {
		t.Errorf("delta: Base %s Schema %s Key %q", d.Base(), d.Schema(), d.Key())
	}
}

// TestNewIgnoresUnusedContents: Fields carries both kinds of contents and
// only one is used; the other must not show through the accessors, or a
// commit and its decoding (same id) would report different contents.
func TestNewIgnoresUnusedContents(t *testing.T) {
	priv, s := testKey(1)
	full := fullFields(s)
	full.Base, full.Delta = testID(5), testDelta()
	delta := deltaFields(s, testID(5))
	delta.Schema, delta.Value = commit.Schema{NS: "x", Version: 1}, testItem()
	for name, f := range map[string]commit.Fields{"full with delta": full, "delta with value": delta} {
		t.Run(name, func(t *testing.T) {
			c := mustNew(t, f, priv)
			checkSame(t, c, mustDecode(t, c.Encode()))
		})
	}
}

func TestSignature(t *testing.T) {
	priv, s := testKey(1)
	_, s2 := testKey(2)
	root := mustNew(t, fullFields(s), priv)
	for _, c := range []*commit.Commit{root, mustNew(t, deltaFields(s, root.ID()), priv)} {
		t.Run(map[bool]string{true: "full", false: "delta"}[c.IsFull()], func(t *testing.T) {
			enc := c.Encode()
			id := c.ID()
			if !ed25519.Verify(ed25519.PublicKey(s[:]), id[:], c.Signature()) {
				t.Fatal("signature is not Ed25519 over the id by the session key")
			}
			bodyLen := len(c.Body())
			// Every tampered byte of the body either breaks the encoding or
			// the signature.
			for i := range bodyLen {
				for _, x := range []byte{0x01, 0x80} {
					b := slices.Clone(enc)
					b[i] ^= x
					checkTampered(t, fmt.Sprintf("body byte %d ^ %#x", i, x), b)
				}
			}
			// Every tampered byte of the signature breaks it.
			for i := bodyLen; i < len(enc); i++ {
				b := slices.Clone(enc)
				b[i] ^= 0x01
				d := mustDecode(t, b)
				wantErr(t, d.VerifySignature(false), commit.ErrBadSignature)
			}
			// The same body with another session no longer verifies.
			i := bytes.Index(enc, s[:])
			b := slices.Clone(enc)
			copy(b[i:], s2[:])
			d := mustDecode(t, b)
			if d.Session() != s2 {
				t.Fatalf("swapped session = %s", d.Session())
			}
			wantErr(t, d.VerifySignature(false), commit.ErrBadSignature)
		})
	}
}

// checkTampered fails unless b is refused by Decode (ErrCorrupt) or by
// VerifySignature(true) (ErrBadSignature).
func checkTampered(t *testing.T, what string, b []byte) {
	t.Helper()
	d, err := commit.Decode(b)
	if err != nil {
		if !errors.Is(err, commit.ErrCorrupt) {
			t.Errorf("%s: Decode error %v does not wrap ErrCorrupt", what, err)
		}
		return
	}
	if err := d.VerifySignature(true); !errors.Is(err, commit.ErrBadSignature) {
		t.Errorf("%s: VerifySignature = %v, want ErrBadSignature", what, err)
	}
}

func TestSignatureRules(t *testing.T) {
	priv, s := testKey(1)
	priv2, _ := testKey(2)
	root := mustNew(t, fullFields(s), priv)
	leafA := mustNew(t, deltaFields(s, root.ID()), nil)
	leafB := mustNew(t, fullFields(s, root.ID()), nil)
	merge, err := commit.NewMerge("task-0001", []*commit.Commit{leafA, leafB}, commit.Fields{Full: true, Value: testItem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("key of another session", func(t *testing.T) {
		for name, key := range map[string]ed25519.PrivateKey{
			"other": priv2, "short": priv[:10], "seed only": priv.Seed(), "empty": {},
		} {
			if _, err := commit.New(fullFields(s), key); !errors.Is(err, commit.ErrBadSignature) {
				t.Errorf("%s: New = %v, want ErrBadSignature", name, err)
			}
		}
	})
	t.Run("unsigned non-merge", func(t *testing.T) {
		wantErr(t, leafA.VerifySignature(true), commit.ErrBadSignature)
		if err := leafA.VerifySignature(false); err != nil {
			t.Errorf("VerifySignature(false) = %v", err)
		}
	})
	t.Run("unsigned merge", func(t *testing.T) {
		if err := merge.VerifySignature(true); err != nil {
			t.Errorf("VerifySignature(true) = %v", err)
		}
	})
	t.Run("merge signed by New", func(t *testing.T) {
		f := fieldsOf(merge)
		if _, err := commit.New(f, priv); !errors.Is(err, commit.ErrBadSignature) {
			t.Errorf("New(merge, key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("signed merge decoded", func(t *testing.T) {
		id := merge.ID()
		sig := ed25519.Sign(priv, id[:])
		d := mustDecode(t, append(merge.Encode(), sig...))
		if !d.IsMerge() || !d.Signed() || d.ID() != merge.ID() {
			t.Fatalf("decoded: merge %v signed %v", d.IsMerge(), d.Signed())
		}
		wantErr(t, d.VerifySignature(false), commit.ErrBadSignature)
		wantErr(t, d.VerifySignature(true), commit.ErrBadSignature)
	})
}

func TestValidation(t *testing.T) {
	_, s := testKey(1)
	many := make([]commit.ID, commit.MaxParents+1)
	for i := range many {
		many[i][0], many[i][1] = byte(i>>8), byte(i)
	}
	tests := []struct {
		name   string
		edit   func(*commit.Fields)
		wantIn string // part of the error message
	}{
		{"session on a merge", func(f *commit.Fields) { f.Parents = []commit.ID{testID(1), testID(2)} }, "merge"},
		{"no session", func(f *commit.Fields) { f.Session = commit.SessionID{} }, "session"},
		{"no session one parent", func(f *commit.Fields) {
			f.Session, f.Parents = commit.SessionID{}, []commit.ID{testID(1)}
		}, "session"},
		{"delta without parent", func(f *commit.Fields) { f.Full, f.Base, f.Delta = false, testID(1), testDelta() }, "parent"},
		{"duplicate parents", func(f *commit.Fields) {
			f.Session, f.Parents = commit.SessionID{}, []commit.ID{testID(1), testID(2), testID(1)}
		}, "twice"},
		{"negative time", func(f *commit.Fields) { f.Time = -1 }, "timestamp"},
		{"time past 2^62", func(f *commit.Fields) { f.Time = 1<<62 + 1 }, "timestamp"},
		{"too many parents", func(f *commit.Fields) { f.Session, f.Parents = commit.SessionID{}, many }, "parents"},
		{"bad key", func(f *commit.Fields) { f.Key = "a/b" }, "key"},
		{"dynamic schema with version", func(f *commit.Fields) { f.Schema = commit.Schema{Version: 1} }, "dynamic"},
		{"invalid value", func(f *commit.Fields) {
			f.Value = item.New(map[string]item.Value{"x": {}})
		}, "item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fullFields(s)
			tt.edit(&f)
			c, err := commit.New(f, nil)
			if !errors.Is(err, commit.ErrInvalid) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("New = %v, want ErrInvalid mentioning %q (built: %v)", err, tt.wantIn, c != nil)
			}
		})
	}
	t.Run("bounds accepted", func(t *testing.T) {
		f := fullFields(s)
		f.Time = 1 << 62
		checkSame(t, mustNew(t, f, nil), mustDecode(t, mustNew(t, f, nil).Encode()))
		f.Time = 0
		mustNew(t, f, nil)
		f.Session, f.Parents = commit.SessionID{}, many[:commit.MaxParents]
		c := mustNew(t, f, nil)
		checkSame(t, c, mustDecode(t, c.Encode()))
	})
}

func TestParentsSorted(t *testing.T) {
	in := []commit.ID{testID(9), testID(1), testID(5)}
	f := fullFields(commit.SessionID{}, in...)
	c := mustNew(t, f, nil)
	if want := []commit.ID{testID(1), testID(5), testID(9)}; !slices.Equal(c.Parents(), want) {
		t.Errorf("Parents = %v, want %v", c.Parents(), want)
	}
	if !slices.Equal(in, []commit.ID{testID(9), testID(1), testID(5)}) {
		t.Errorf("New changed the caller's slice: %v", in)
	}
	for _, p := range [][]commit.ID{{testID(5), testID(9), testID(1)}, {testID(1), testID(5), testID(9)}} {
		if d := mustNew(t, fullFields(commit.SessionID{}, p...), nil); d.ID() != c.ID() {
			t.Errorf("parents %v: id %s, want %s", p, d.ID(), c.ID())
		}
	}
}

func TestNewMerge(t *testing.T) {
	_, s := testKey(1)
	root := mustNew(t, fullFields(s), nil)
	var leaves []*commit.Commit
	for i, tm := range []int64{30, 10, 20} {
		f := fullFields(s, root.ID())
		f.Time = testTime + tm
		f.Value = testItem().With("count", item.Number(float64(i)))
		leaves = append(leaves, mustNew(t, f, nil))
	}
	contents := commit.Fields{Full: true, Schema: commit.Schema{NS: "tasks", Version: 3}, Value: testItem()}
	want, err := commit.NewMerge("task-0001", leaves, contents)
	if err != nil {
		t.Fatal(err)
	}
	if want.Time() != testTime+30 || len(want.Parents()) != 3 || !want.Session().IsZero() || want.Signed() {
		t.Errorf("merge: time %d parents %d session %s signed %v", want.Time(), len(want.Parents()), want.Session(), want.Signed())
	}
	perms := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, p := range perms {
		ls := []*commit.Commit{leaves[p[0]], leaves[p[1]], leaves[p[2]]}
		// Fields given by the caller that a merge fixes are overridden.
		f := contents
		f.Key, f.Session, f.Time, f.Parents = "ignored", s, 1, []commit.ID{testID(1)}
		got, err := commit.NewMerge("task-0001", ls, f)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != want.ID() || !bytes.Equal(got.Encode(), want.Encode()) {
			t.Errorf("order %v: id %s, want %s", p, got.ID().Short(), want.ID().Short())
		}
	}
	for name, ls := range map[string][]*commit.Commit{
		"no leaves": nil, "one leaf": leaves[:1], "same leaf twice": {leaves[0], leaves[1], leaves[0]},
	} {
		if _, err := commit.NewMerge("task-0001", ls, contents); !errors.Is(err, commit.ErrInvalid) {
			t.Errorf("%s: NewMerge = %v, want ErrInvalid", name, err)
		}
	}
}

func TestDeterminism(t *testing.T) {
	priv, s := testKey(1)
	build := func() []*commit.Commit {
		root := mustNew(t, fullFields(s), priv)
		return []*commit.Commit{root, mustNew(t, deltaFields(s, root.ID()), priv), mustNew(t, fullFields(s), nil)}
	}
	a, b := build(), build()
	for i := range a {
		if a[i].ID() != b[i].ID() || !bytes.Equal(a[i].Encode(), b[i].Encode()) {
			t.Errorf("commit %d: %x != %x", i, a[i].Encode(), b[i].Encode())
		}
	}
	// Map iteration order must not leak into the encoding.
	for range 20 {
		f := fullFields(s)
		f.Value = item.New(map[string]item.Value{
			"a": item.Int(1), "b": item.Int(2), "c": item.Int(3), "d": item.Int(4), "e": item.Int(5),
			"m": item.Map(map[string]item.Value{"x": item.Int(1), "y": item.Int(2), "z": item.Int(3)}),
		})
		if c := mustNew(t, f, nil); c.ID() != mustNew(t, f, nil).ID() {
			t.Fatal("same fields, different ids")
		}
	}
}

// TestLayout checks a body against the diagram in doc.go, byte by byte.
func TestLayout(t *testing.T) {
	priv, s := testKey(1)
	vb := validBody(t)
	c := mustNew(t, fullFields(s, testID(7)), priv)
	if !bytes.Equal(c.Body(), vb.bytes()) {
		t.Fatalf("full body\n got %x\nwant %x", c.Body(), vb.bytes())
	}
	d := mustNew(t, deltaFields(s, c.ID()), nil)
	db := body{
		version: 2, flags: 3, repo: testRepo, key: "task-0001", parents: []commit.ID{c.ID()}, nparents: -1,
		time: uint64(testTime + 1000), session: s[:], contents: deltaContents(t, c.ID(), testDelta()),
	}
	if !bytes.Equal(d.Encode(), db.bytes()) {
		t.Fatalf("delta body\n got %x\nwant %x", d.Encode(), db.bytes())
	}
	// Without a repository: version 1, which names none, still written and
	// read.
	v1f := deltaFields(s, c.ID())
	v1f.Repo = ""
	v1 := mustNew(t, v1f, nil)
	db.version, db.repo = 1, ""
	if !bytes.Equal(v1.Encode(), db.bytes()) || v1.Version() != 1 || v1.Repo() != "" {
		t.Fatalf("version 1 delta body\n got %x\nwant %x", v1.Encode(), db.bytes())
	}
	if got, err := commit.Decode(v1.Encode()); err != nil || got.ID() != v1.ID() {
		t.Fatalf("decode version 1: %v", err)
	}
	if d.Version() != 2 || d.Repo() != testRepo || d.ID() == v1.ID() {
		t.Fatalf("version 2 commit: version %d, repo %q; its id must differ from the same commit without a repository", d.Version(), d.Repo())
	}
	f := fullFields(commit.SessionID{}, testID(2), testID(1))
	f.Schema = commit.Schema{}
	m := mustNew(t, f, nil)
	mb := body{
		version: 2, flags: 0, repo: testRepo, key: "task-0001", parents: []commit.ID{testID(1), testID(2)}, nparents: -1,
		time: uint64(testTime), contents: fullContents(t, "", 0, testItem()),
	}
	if !bytes.Equal(m.Encode(), mb.bytes()) {
		t.Fatalf("merge body\n got %x\nwant %x", m.Encode(), mb.bytes())
	}
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		key     string
		badChar string // quoted in the error, "" if the error is about length or dots
		ok      bool
	}{
		{"a", "", true},
		{"Z", "", true},
		{"0", "", true},
		{"task-0001", "", true},
		{"A.b_c-9", "", true},
		{"...", "", true},
		{".hidden", "", true},
		{"a..b", "", true},
		{"_", "", true},
		{"-", "", true},
		{strings.Repeat("x", 128), "", true},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", "", true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{strings.Repeat("x", 129), "", false},
		{"a/b", "'/'", false},
		{"/", "'/'", false},
		{"a b", "' '", false},
		{"tab\there", `'\t'`, false},
		{"nul\x00", `'\x00'`, false},
		{"caf\u00e9", "'é'", false},
		{"日本", "'日'", false},
		{"a\xffb", `'\xff'`, false},
		{"\u2028", `'\u2028'`, false},
		{"a:b", "':'", false},
		{"a\\b", `'\\'`, false},
		{"a+b", "'+'", false},
		{"a%2Fb", "'%'", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.key), func(t *testing.T) {
			err := commit.ValidKey(tt.key)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidKey(%q) = %v", tt.key, err)
				}
				return
			}
			if !errors.Is(err, commit.ErrInvalid) {
				t.Fatalf("ValidKey(%q) = %v, want ErrInvalid", tt.key, err)
			}
			if tt.badChar != "" && !strings.Contains(err.Error(), tt.badChar) {
				t.Errorf("ValidKey(%q) = %q, does not name %s", tt.key, err, tt.badChar)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	c := mustNew(t, fullFields(commit.SessionID{}, testID(1), testID(2)), nil)
	id := c.ID()
	got, err := commit.ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %s, %v", id, got, err)
	}
	if len(id.String()) != 64 || id.Short() != id.String()[:12] || len(id.Short()) != 12 {
		t.Errorf("String %q Short %q", id, id.Short())
	}
	if (commit.ID{}).Short() != "000000000000" || !(commit.ID{}).IsZero() || id.IsZero() {
		t.Errorf("zero id: Short %q", (commit.ID{}).Short())
	}
	if commit.CompareIDs(testID(1), testID(2)) >= 0 || commit.CompareIDs(testID(2), testID(2)) != 0 {
		t.Error("CompareIDs does not order bytewise")
	}
	hex := id.String()
	for _, bad := range []string{"", hex[:63], hex + "0", hex[:63] + "g", "0x" + hex[:62], hex[:32] + " " + hex[33:]} {
		if _, err := commit.ParseID(bad); !errors.Is(err, commit.ErrInvalid) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseSessionID(t *testing.T) {
	for n := range byte(4) {
		_, s := testKey(n)
		str := s.String()
		if len(str) != 52 {
			t.Errorf("String %q has %d characters", str, len(str))
		}
		got, err := commit.ParseSessionID(str)
		if err != nil || got != s {
			t.Fatalf("ParseSessionID(%s) = %s, %v", str, got, err)
		}
	}
	if !(commit.SessionID{}).IsZero() {
		t.Error("zero session not IsZero")
	}
	_, s := testKey(1)
	str := s.String()
	// The last character carries one bit and four zero bits: other values
	// of those bits are another spelling and refused.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", str[51])
	alias := str[:51] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[last^1])
	for _, bad := range []string{
		"", str[:51], str + "A", str + "=", strings.ToLower(str), str[:20] + "\n" + str[20:], str + "\r\n",
		alias, str[:10] + "1" + str[11:], commit.ID{}.String(),
	} {
		if _, err := commit.ParseSessionID(bad); !errors.Is(err, commit.ErrInvalid) {
			t.Errorf("ParseSessionID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestSchemaString(t *testing.T) {
	for _, tt := range []struct {
		s    commit.Schema
		want string
	}{
		{commit.Schema{}, "dynamic"},
		{commit.Schema{NS: "test", Version: 1}, "test/1"},
		{commit.Schema{NS: "tasks", Version: 0}, "tasks/0"},
		{commit.Schema{NS: "a.b", Version: 4294967295}, "a.b/4294967295"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestValidSchema(t *testing.T) {
	_, session := testKey(1)
	for _, tt := range []struct {
		s      commit.Schema
		wantIn string // "" if valid
	}{
		{commit.Schema{}, ""},
		{commit.Schema{NS: "test", Version: 1}, ""},
		{commit.Schema{NS: "a.b_c-9", Version: 4294967295}, ""},
		{commit.Schema{Version: 1}, "dynamic"},
		{commit.Schema{NS: "tasks"}, "version 0"},
		{commit.Schema{NS: "a/b", Version: 1}, "'/'"},
		{commit.Schema{NS: "..", Version: 1}, "namespace"},
		{commit.Schema{NS: strings.Repeat("n", 129), Version: 1}, "namespace"},
	} {
		t.Run(tt.s.String(), func(t *testing.T) {
			err := commit.ValidSchema(tt.s)
			f := fullFields(session)
			f.Schema = tt.s
			_, newErr := commit.New(f, nil)
			vb := validBody(t)
			vb.contents = fullContents(t, tt.s.NS, uint64(tt.s.Version), testItem())
			_, decErr := commit.Decode(vb.bytes())
			if tt.wantIn == "" {
				if err != nil || newErr != nil || decErr != nil {
					t.Fatalf("ValidSchema %v, New %v, Decode %v", err, newErr, decErr)
				}
				return
			}
			if !errors.Is(err, commit.ErrInvalid) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("ValidSchema = %v, want ErrInvalid mentioning %q", err, tt.wantIn)
			}
			wantErr(t, newErr, commit.ErrInvalid)
			wantErr(t, decErr, commit.ErrCorrupt)
		})
	}
}
