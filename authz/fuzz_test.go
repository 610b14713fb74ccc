package authz_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
)

// FuzzCertificateDecode feeds every record decoder the same bytes: none
// panics, whatever decodes is canonical (it encodes to the input) and
// decodes again to the same record, and verifying it does not panic.
func FuzzCertificateDecode(f *testing.F) {
	node, cert := chain(f, "alice", "admin", "team")
	anon, err := authz.Issue(nodeKey, node, authz.SessionFields{
		Session: sessionOf(otherKey), NotBefore: t0, Expires: t0.Add(time.Hour), Audience: audience,
	})
	if err != nil {
		f.Fatal(err)
	}
	byRoot, err := authz.Revoke(rootKey, nil, authz.RevocationFields{User: "alice", RevokedAt: t0, NotBeforeIssued: t0, Audience: audience})
	if err != nil {
		f.Fatal(err)
	}
	byNode, err := authz.Revoke(nodeKey, node, authz.RevocationFields{Session: cert.Session(), RevokedAt: t0, NotBeforeIssued: authz.MaxTime, Audience: audience})
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range [][]byte{node.Encode(), cert.Encode(), anon.Encode(), byRoot.Encode(), byNode.Encode(), nil, {1}, {1, 2}, {1, 3, 2}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := authz.DecodeNodeCertificate(b); err == nil {
			checkCanonical(t, b, c.Encode(), func(b []byte) ([]byte, error) {
				c, err := authz.DecodeNodeCertificate(b)
				if err != nil {
					return nil, err
				}
				return c.Encode(), nil
			})
			_ = c.Verify(pub(rootKey), t0)
		} else if !errors.Is(err, authz.ErrBadCertificate) {
			t.Fatalf("node certificate: %v does not match ErrBadCertificate", err)
		}
		if c, err := authz.DecodeSessionCertificate(b); err == nil {
			checkCanonical(t, b, c.Encode(), func(b []byte) ([]byte, error) {
				c, err := authz.DecodeSessionCertificate(b)
				if err != nil {
					return nil, err
				}
				return c.Encode(), nil
			})
			_ = c.Verify(pub(rootKey), audience, t0)
			_ = byNode.Covers(c, t0)
			_ = c.Principal()
		} else if !errors.Is(err, authz.ErrBadCertificate) {
			t.Fatalf("session certificate: %v does not match ErrBadCertificate", err)
		}
		if r, err := authz.DecodeRevocation(b); err == nil {
			checkCanonical(t, b, r.Encode(), func(b []byte) ([]byte, error) {
				r, err := authz.DecodeRevocation(b)
				if err != nil {
					return nil, err
				}
				return r.Encode(), nil
			})
			_ = r.Verify(pub(rootKey), audience)
			_ = r.Covers(cert, t0)
		} else if !errors.Is(err, authz.ErrBadCertificate) {
			t.Fatalf("revocation: %v does not match ErrBadCertificate", err)
		}
	})
}

func checkCanonical(t *testing.T, in, enc []byte, again func([]byte) ([]byte, error)) {
	t.Helper()
	if !bytes.Equal(in, enc) {
		t.Fatalf("decoded %x, encodes as %x", in, enc)
	}
	enc2, err := again(enc)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("decode(encode) = %x, %v", enc2, err)
	}
}

// FuzzAuthHeader: ParseAuthHeader never panics, accepts only the
// canonical form of v1 and v2 headers, and Verify never panics or accepts
// a header it did not get signed or MACed.
func FuzzAuthHeader(f *testing.F) {
	c := newClock(t0)
	v, err := authz.NewVerifier(audience, &authz.VerifierOptions{Now: c.Now, MACKey: nodeKey})
	if err != nil {
		f.Fatal(err)
	}
	good, err := authz.SignRequest(sessionKey, audience, syncReq, t0, nonce(1), "")
	if err != nil {
		f.Fatal(err)
	}
	echo := v.Challenge(sessionOf(sessionKey))
	withEcho, err := authz.SignRequest(sessionKey, audience, syncReq, t0.Add(time.Hour), nonce(2), echo)
	if err != nil {
		f.Fatal(err)
	}
	k, err := authz.NewRequestKey(sessionKey, pub(nodeKey), audience)
	if err != nil {
		f.Fatal(err)
	}
	goodV2, err := authz.MACRequest(k, syncReq, t0, nonce(3), "")
	if err != nil {
		f.Fatal(err)
	}
	v2Echo, err := authz.MACRequest(k, syncReq, t0.Add(time.Hour), nonce(4), v.Challenge(sessionOf(sessionKey)))
	if err != nil {
		f.Fatal(err)
	}
	otherNode, err := authz.NewRequestKey(sessionKey, pub(otherKey), audience)
	if err != nil {
		f.Fatal(err)
	}
	v2Other, err := authz.MACRequest(otherNode, syncReq, t0, nonce(5), "")
	if err != nil {
		f.Fatal(err)
	}
	accepted := map[string]bool{good: true, withEcho: true, goodV2: true, v2Echo: true}
	for _, s := range []string{good, withEcho, goodV2, v2Echo, v2Other, "", "v1", "v1; ", "v1; s=; t=; n=; d=; sig=", good + ";",
		"v2", "v2; ", "v2; s=; k=; t=; n=; d=; mac=", "v2; s=; k=; t=; n=; d=; e=; mac=", goodV2 + ";", strings.Replace(goodV2, "v2; ", "v1; ", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := authz.ParseAuthHeader(s)
		if err != nil {
			if !errors.Is(err, authz.ErrMalformed) {
				t.Fatalf("%v does not match ErrMalformed", err)
			}
			return
		}
		if h.String() != s {
			t.Fatalf("parsed %q, prints as %q", s, h.String())
		}
		if len(s) > authz.MaxHeaderLen {
			t.Fatalf("accepted %d bytes", len(s))
		}
		if _, err := v.Verify(s, syncReq); err == nil && !accepted[s] {
			t.Fatalf("Verify accepted a header nobody signed: %q", s)
		}
	})
}

// FuzzNodeKey: ParseNodeKey (a Goat-Node header, which a client takes from
// any answer) never panics, accepts only the canonical spelling of a
// point, and a key it accepts derives a request key or fails cleanly.
func FuzzNodeKey(f *testing.F) {
	for _, s := range []string{authz.FormatNodeKey(pub(nodeKey)), authz.FormatNodeKey(make([]byte, 32)), "", "AAAA", strings.Repeat("_", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := authz.ParseNodeKey(s)
		if err != nil {
			if !errors.Is(err, authz.ErrMalformed) {
				t.Fatalf("%v does not match ErrMalformed", err)
			}
			return
		}
		if authz.FormatNodeKey(k) != s {
			t.Fatalf("parsed %q, prints as %q", s, authz.FormatNodeKey(k))
		}
		if rk, err := authz.NewRequestKey(sessionKey, k, audience); err == nil && !rk.Node().Equal(k) {
			t.Fatalf("request key for %x names %x", k, rk.Node())
		}
	})
}
