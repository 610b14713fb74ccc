package commit_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// TestDecodeRejects feeds Decode hand-built encodings that break one rule
// each; every one must fail with an error wrapping ErrCorrupt that says
// what is wrong.
func TestDecodeRejects(t *testing.T) {
	sig := make([]byte, ed25519.SignatureSize)
	tests := []struct {
		name   string
		edit   func(*body)
		suffix []byte // appended after the body
		wantIn string // part of the error message
	}{
		{"version 0", func(b *body) { b.version = 0 }, nil, "version"},
		{"version 3", func(b *body) { b.version = 3 }, nil, "version"},
		{"empty repository", func(b *body) { b.repo = "" }, nil, "repository"},
		{"repository without type", func(b *body) { b.repo = "/tasks" }, nil, "repository"},
		{"repository with an item", func(b *body) { b.repo = "/data/tasks/x" }, nil, "repository"},
		{"relative repository", func(b *body) { b.repo = "data/tasks" }, nil, "repository"},
		{"repository with a bad part", func(b *body) { b.repo = "/data/t@sks" }, nil, "repository"},
		{"flag bit 2", func(b *body) { b.flags |= 1 << 2 }, nil, "flags"},
		{"flag bit 7", func(b *body) { b.flags |= 1 << 7 }, nil, "flags"},
		{"empty key", func(b *body) { b.key = "" }, nil, "key"},
		{"bad key", func(b *body) { b.key = "a/b" }, nil, "key"},
		{"dot key", func(b *body) { b.key = ".." }, nil, "key"},
		{"long key", func(b *body) { b.key = strings.Repeat("k", 129) }, nil, "key"},
		{"unsorted parents", func(b *body) {
			b.session, b.flags, b.parents = nil, 0, []commit.ID{testID(2), testID(1)}
		}, nil, "increasing"},
		{"equal parents", func(b *body) {
			b.session, b.flags, b.parents = nil, 0, []commit.ID{testID(2), testID(2)}
		}, nil, "increasing"},
		{"parent count past the input", func(b *body) { b.nparents = 1000 }, nil, "count"},
		{"parent count huge", func(b *body) { b.nparents = 1 << 40 }, nil, "count"},
		{"zero session", func(b *body) { b.session = make([]byte, 32) }, nil, "zero session"},
		{"session on a merge", func(b *body) { b.parents = []commit.ID{testID(1), testID(2)} }, nil, "merge"},
		{"no session on a non-merge", func(b *body) { b.flags, b.session = 0, nil }, nil, "session"},
		{"delta without parent", func(b *body) {
			b.flags, b.parents = 3, nil
			b.contents = deltaContents(t, testID(1), testDelta())
		}, nil, "parent"},
		{"time past 2^62", func(b *body) { b.time = 1<<62 + 1 }, nil, "timestamp"},
		{"time past 2^63", func(b *body) { b.time = 1 << 63 }, nil, "timestamp"},
		{"schema version past 2^32", func(b *body) { b.contents = fullContents(t, "tasks", 1<<32, testItem()) }, nil, "schema version"},
		{"dynamic schema with version", func(b *body) { b.contents = fullContents(t, "", 1, testItem()) }, nil, "dynamic"},
		{"1 trailing byte", nil, []byte{0}, "after the body"},
		{"63 trailing bytes", nil, sig[:63], "after the body"},
		{"65 trailing bytes", nil, append(slices.Clone(sig), 0), "after the body"},
		{"two signatures", nil, append(slices.Clone(sig), sig...), "after the body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBody(t)
			if tt.edit != nil {
				tt.edit(&b)
			}
			enc := append(b.bytes(), tt.suffix...)
			c, err := commit.Decode(enc)
			if !errors.Is(err, commit.ErrCorrupt) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("Decode(%x) = %v, want ErrCorrupt mentioning %q (decoded: %v)", enc, err, tt.wantIn, c != nil)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		for _, enc := range [][]byte{nil, {}, {commit.Version}} {
			if _, err := commit.Decode(enc); !errors.Is(err, commit.ErrCorrupt) {
				t.Errorf("Decode(%x) = %v, want ErrCorrupt", enc, err)
			}
		}
	})
	t.Run("valid body decodes", func(t *testing.T) {
		mustDecode(t, validBody(t).bytes())
		mustDecode(t, append(validBody(t).bytes(), sig...))
	})
}

// TestDecodeNonCanonical: a value written in a longer form than needed is
// refused, so one commit has one encoding and one id.
func TestDecodeNonCanonical(t *testing.T) {
	valid := validBody(t).bytes()
	// withItem replaces the item of validBody by raw item bytes.
	withItem := func(raw ...byte) []byte {
		vb := validBody(t)
		vb.contents = append(fullContents(t, "tasks", 3, item.Item{})[:7], raw...)
		return vb.bytes()
	}
	// Two fields a=1, b=2 in order decode: the control for the cases below.
	mustDecode(t, withItem(0x04, 1, 'a', 9, 2, 1, 'b', 9, 4))
	tests := []struct {
		name string
		enc  []byte
	}{
		// key length 9 as the two-byte uvarint 0x89 0x00
		{"long key length", slices.Concat(valid[:2], []byte{0x89, 0x00}, valid[3:])},
		// parent count 1 as 0x81 0x00
		{"long parent count", slices.Concat(valid[:2+1+9], []byte{0x81, 0x00}, valid[2+1+9+1:])},
		{"unsorted item fields", withItem(0x04, 1, 'b', 9, 4, 1, 'a', 9, 2)},
		{"item field twice", withItem(0x04, 1, 'a', 9, 2, 1, 'a', 9, 4)},
		// 1 as an 8-byte float where the compact form is required
		{"long number", withItem(0x02, 1, 'a', 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f)},
		{"long schema version", func() []byte {
			c := fullContents(t, "tasks", 3, testItem())
			vb := validBody(t)
			vb.contents = slices.Concat(c[:6], []byte{0x83, 0x00}, c[7:])
			return vb.bytes()
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := commit.Decode(tt.enc); !errors.Is(err, commit.ErrCorrupt) {
				t.Fatalf("Decode(%x) = %v, want ErrCorrupt", tt.enc, err)
			}
		})
	}
}

// TestDecodeTruncated cuts valid encodings at every offset. A body alone is
// a valid unsigned commit (the signature is whatever follows the body), so
// the cut at the end of the body decodes to the unsigned commit; every other
// cut must fail with ErrCorrupt, and none may panic.
func TestDecodeTruncated(t *testing.T) {
	for _, k := range kinds(t) {
		t.Run(k.name, func(t *testing.T) {
			enc := k.c.Encode()
			bodyLen := len(k.c.Body())
			for n := range len(enc) {
				c, err := commit.Decode(slices.Clone(enc[:n]))
				if n == bodyLen {
					if err != nil || c.Signed() || c.ID() != k.c.ID() {
						t.Fatalf("body alone: %v", err)
					}
					if !c.IsMerge() {
						wantErr(t, c.VerifySignature(true), commit.ErrBadSignature)
					}
					continue
				}
				if !errors.Is(err, commit.ErrCorrupt) {
					t.Fatalf("Decode(first %d of %d bytes) = %v, %v; want ErrCorrupt", n, len(enc), c, err)
				}
			}
		})
	}
}

// TestDecodeAliasing: Decode keeps references into its input (documented),
// but appending to what it returns must not write into the caller's buffer.
func TestDecodeAliasing(t *testing.T) {
	_, s := testKey(1)
	c := mustNew(t, fullFields(s), nil)
	enc := c.Encode()
	d := mustDecode(t, enc)
	if !bytes.Equal(d.Body(), enc) || d.ID() != c.ID() {
		t.Fatal("decoded body differs")
	}
	big := append(slices.Clone(enc), 0xAA, 0xBB)
	d = mustDecode(t, big[:len(enc)])
	_ = append(d.Body(), 1)
	_ = d.AppendEncoding(nil)
	if big[len(enc)] != 0xAA {
		t.Error("append to Body wrote past the commit into the input")
	}
}
