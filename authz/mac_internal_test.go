package authz

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
)

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func sessionID(k ed25519.PrivateKey) (s commit.SessionID) {
	copy(s[:], k.Public().(ed25519.PublicKey))
	return s
}

// TestX25519FormsMatch: the X25519 form of an Ed25519 private key times
// the base point is the X25519 form of its public key, so both ends of a
// Diffie-Hellman agree.
func TestX25519FormsMatch(t *testing.T) {
	for b := range byte(8) {
		k := testKey(b)
		priv, err := x25519Private(k)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x25519Public(k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(priv.PublicKey().Bytes(), pub.Bytes()) {
			t.Fatalf("key %d: X25519 public %x, Montgomery form of the Ed25519 key %x", b, priv.PublicKey().Bytes(), pub.Bytes())
		}
	}
}

// sideKeys derives the request key of session and node for aud from each
// side.
func sideKeys(t *testing.T, session, node ed25519.PrivateKey, aud string) (client, server [macSize]byte) {
	t.Helper()
	rk, err := NewRequestKey(session, node.Public().(ed25519.PublicKey), aud)
	if err != nil {
		t.Fatal(err)
	}
	np, err := x25519Private(node)
	if err != nil {
		t.Fatal(err)
	}
	sid := sessionID(session)
	if err := deriveRequestKey(&server, np, sid[:], sid, node.Public().(ed25519.PublicKey), aud); err != nil {
		t.Fatal(err)
	}
	return rk.key, server
}

// TestRequestKeyDerivation: the session's side and the node's side derive
// the same key, and another session, node or audience gives another key.
func TestRequestKeyDerivation(t *testing.T) {
	session, node, other := testKey(3), testKey(2), testKey(4)
	c, s := sideKeys(t, session, node, "example.com")
	if c != s {
		t.Fatalf("client derived %x, node %x", c, s)
	}
	seen := map[[macSize]byte]string{c: "base"}
	for _, tt := range []struct {
		name          string
		session, node ed25519.PrivateKey
		aud           string
	}{
		{"another session", other, node, "example.com"},
		{"another node", session, other, "example.com"},
		{"another audience", session, node, "example.org"},
		{"a longer audience", session, node, "example.com2"},
		{"session and node swapped", node, session, "example.com"},
	} {
		c, s := sideKeys(t, tt.session, tt.node, tt.aud)
		if c != s {
			t.Errorf("%s: client derived %x, node %x", tt.name, c, s)
		}
		if prev, ok := seen[c]; ok {
			t.Errorf("%s: same key as %s", tt.name, prev)
		}
		seen[c] = tt.name
	}
}

// TestVerifierCachesKeyOnlyOnAccept: a v2 header with a bad MAC or a
// refused session leaves nothing in the cache; an accepted one does, and
// the cache keeps at most MACSessions keys, evicting the least recently
// used, whose session is still accepted (its key derived again).
func TestVerifierCachesKeyOnlyOnAccept(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	refused := testKey(9)
	v, err := NewVerifier("example.com", &VerifierOptions{
		Now: func() time.Time { return t0 }, MACKey: testKey(2), MACSessions: 2,
		Accept: func(s commit.SessionID) error {
			if s == sessionID(refused) {
				return fmt.Errorf("refused")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Method: "POST", Host: "h", PathQuery: "/v1/sync", Body: BodyDigest(nil)}
	n := byte(0)
	send := func(session ed25519.PrivateKey, tamper bool) error {
		t.Helper()
		k, err := NewRequestKey(session, testKey(2).Public().(ed25519.PublicKey), "example.com")
		if err != nil {
			t.Fatal(err)
		}
		n++
		h, err := MACRequest(k, req, t0, [16]byte{n}, "")
		if err != nil {
			t.Fatal(err)
		}
		if tamper {
			p, _ := ParseAuthHeader(h)
			p.MAC[0] ^= 1
			h = p.String()
		}
		_, err = v.Verify(h, req)
		return err
	}
	a, b, c := testKey(5), testKey(6), testKey(7)
	if err := send(a, true); err == nil {
		t.Fatal("tampered MAC accepted")
	}
	if err := send(refused, false); err == nil {
		t.Fatal("refused session accepted")
	}
	if v.macKeys.len() != 0 {
		t.Fatalf("%d keys cached after refusals", v.macKeys.len())
	}
	for _, k := range []ed25519.PrivateKey{a, b, a, c} { // c evicts b, the least recently used
		if err := send(k, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := v.macKeys.get(sessionID(b)); ok || v.macKeys.len() != 2 {
		t.Fatalf("b cached (%v) or %d keys, want a and c", ok, v.macKeys.len())
	}
	for _, k := range []ed25519.PrivateKey{a, c} {
		if _, ok := v.macKeys.get(sessionID(k)); !ok {
			t.Fatalf("session %s not cached", sessionID(k))
		}
	}
	if err := send(b, false); err != nil {
		t.Fatalf("evicted session: %v", err)
	}
	if err := send(b, true); err == nil {
		t.Fatal("tampered MAC accepted from a cached session")
	}
}

// BenchmarkVerify compares the verifier's own cost per request: a v1
// signature check, a v2 MAC whose key is cached, and a v2 MAC whose key
// must be derived (a session seen first, or evicted).
func BenchmarkVerify(b *testing.B) {
	t0 := time.Now()
	node := testKey(2)
	req := Request{Method: "POST", Host: "h", PathQuery: "/v1/sync", Body: BodyDigest(nil)}
	for _, mode := range []string{"v1", "v2", "v2-derive"} {
		b.Run(mode, func(b *testing.B) {
			v, err := NewVerifier("example.com", &VerifierOptions{Now: func() time.Time { return t0 },
				MACKey: node, Nonces: NewNonceCache(1<<30, 1<<30)})
			if err != nil {
				b.Fatal(err)
			}
			session := testKey(3)
			k, err := NewRequestKey(session, node.Public().(ed25519.PublicKey), "example.com")
			if err != nil {
				b.Fatal(err)
			}
			headers := make([]string, b.N)
			for i := range headers {
				var n [16]byte
				n[0], n[1], n[2], n[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				if mode == "v1" {
					headers[i], err = SignRequest(session, "example.com", req, t0, n, "")
				} else {
					headers[i], err = MACRequest(k, req, t0, n, "")
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if mode == "v2-derive" {
					v.macKeys = newMACKeys(1)
				}
				if _, err := v.Verify(headers[i], req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
