package commit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// signedCommit returns a signed full commit whose value names n.
func signedCommit(t testing.TB, key ed25519.PrivateKey, n int) *Commit {
	t.Helper()
	var s SessionID
	copy(s[:], key.Public().(ed25519.PublicKey))
	c, err := New(Fields{Repo: "/data/v", Key: "k", Time: 1, Session: s, Full: true,
		Schema: Schema{NS: "t", Version: 1}, Value: item.New(map[string]item.Value{"n": item.Int(int64(n))})}, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifiedCacheNeedsSameSignature: a body whose signature verified,
// sent again with another signature, is verified again and refused; the
// cache never lets an unverified signature through.
func TestVerifiedCacheNeedsSameSignature(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	c := signedCommit(t, key, 1)
	enc := c.Encode()
	d, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.VerifySignature(true); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 31, 63} {
		bad := append([]byte(nil), enc...)
		bad[len(bad)-ed25519.SignatureSize+i] ^= 1
		b, err := Decode(bad)
		if err != nil {
			t.Fatal(err)
		}
		if b.ID() != c.ID() {
			t.Fatal("the id covers the signature")
		}
		if err := b.VerifySignature(true); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signature byte %d flipped: %v, want ErrBadSignature", i, err)
		}
	}
	// Another session's valid signature over the same id does not pass
	// either: the session is in the body, so the id differs.
	_, other, _ := ed25519.GenerateKey(nil)
	forged := append(append([]byte(nil), c.Body()...), ed25519.Sign(other, c.id[:])...)
	f, err := Decode(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.VerifySignature(true); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signed by another key: %v, want ErrBadSignature", err)
	}
}

// TestVerifiedCacheBounded: the cache holds at most its size, forgets the
// oldest first, and with size 0 remembers nothing.
func TestVerifiedCacheBounded(t *testing.T) {
	v := newVerifiedCache(64)
	sig := make([]byte, ed25519.SignatureSize)
	var ids []ID
	for i := range 1000 {
		var id ID
		copy(id[:], fmt.Sprint(i))
		id[0] = byte(i) // spread over the shards
		ids = append(ids, id)
		v.add(id, sig)
	}
	n := 0
	for i := range v.shards {
		n += len(v.shards[i].sigs)
	}
	if n > 64 {
		t.Errorf("%d entries, want at most 64", n)
	}
	if !v.has(ids[999], sig) || v.has(ids[0], sig) {
		t.Error("the newest entry is gone or the oldest kept")
	}
	off := newVerifiedCache(0)
	off.add(ids[0], sig)
	if off.has(ids[0], sig) {
		t.Error("a cache of size 0 remembered an entry")
	}
}
