package commit_test

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// FuzzDecode: Decode never panics, and what it accepts is canonical: the
// encoding is the input, the id is blake3 of the body, and New builds the
// same body again from the decoded fields.
func FuzzDecode(f *testing.F) {
	for _, k := range kinds(f) {
		f.Add(k.c.Encode())
		f.Add(k.c.Body())
	}
	_, delta := sizeCommits(f)
	f.Add(delta.Encode())
	f.Add(append(validBody(f).bytes(), make([]byte, ed25519.SignatureSize)...))
	f.Add([]byte{})
	f.Add([]byte{commit.Version})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := slices.Clone(b)
		c, err := commit.Decode(b)
		if err != nil {
			if c != nil {
				t.Fatalf("Decode returned a commit and %v", err)
			}
			return
		}
		if !bytes.Equal(c.Encode(), in) || c.Size() != len(in) {
			t.Fatalf("Encode() = %x, input %x", c.Encode(), in)
		}
		checkID(t, c)
		again, err := commit.New(fieldsOf(c), nil)
		if err != nil {
			t.Fatalf("New(decoded fields): %v", err)
		}
		if !bytes.Equal(again.Body(), c.Body()) {
			t.Fatalf("rebuilt body %x, decoded %x", again.Body(), c.Body())
		}
		checkSame(t, c, mustDecode(t, slices.Clone(in)))
		// Never panics, whatever it says.
		_ = c.VerifySignature(true)
		_ = c.VerifySignature(false)
		_ = c.Timestamp()
		_ = c.Schema().String()
	})
}
