package authz_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
)

// macVerifier returns a verifier that takes v2 headers for nodeKey.
func macVerifier(t testing.TB, c *clock) *authz.Verifier {
	t.Helper()
	v, err := authz.NewVerifier(audience, &authz.VerifierOptions{Now: c.Now, MACKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func requestKey(t testing.TB, session ed25519.PrivateKey, node ed25519.PublicKey, aud string) *authz.RequestKey {
	t.Helper()
	k, err := authz.NewRequestKey(session, node, aud)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func macReq(t testing.TB, k *authz.RequestKey, req authz.Request, at time.Time, n [16]byte, echo string) string {
	t.Helper()
	h, err := authz.MACRequest(k, req, at, n, echo)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestMACRequestBindsEverything MACs one request and verifies it against
// requests, keys and headers that differ in one part each.
func TestMACRequestBindsEverything(t *testing.T) {
	c := newClock(t0)
	k := requestKey(t, sessionKey, pub(nodeKey), audience)
	tests := []struct {
		name   string
		key    *authz.RequestKey
		change func(*authz.Request)
		want   error
	}{
		{"same request", k, func(*authz.Request) {}, nil},
		{"method", k, func(r *authz.Request) { r.Method = "PUT" }, authz.ErrBadSignature},
		{"host", k, func(r *authz.Request) { r.Host = "evil.example.com" }, authz.ErrBadSignature},
		{"path", k, func(r *authz.Request) { r.PathQuery = "/v1/other?repo=a" }, authz.ErrBadSignature},
		{"query", k, func(r *authz.Request) { r.PathQuery = "/v1/sync?repo=b" }, authz.ErrBadSignature},
		{"body", k, func(r *authz.Request) { r.Body = authz.BodyDigest([]byte(`{"x":2}`)) }, authz.ErrBodyMismatch},
		{"audience", requestKey(t, sessionKey, pub(nodeKey), "other.example"), func(*authz.Request) {}, authz.ErrBadSignature},
		{"another node's key", requestKey(t, sessionKey, pub(otherKey), audience), func(*authz.Request) {}, authz.ErrUnknownNodeKey},
		{"NUL in path", k, func(r *authz.Request) { r.PathQuery += "\x00" }, authz.ErrMalformed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := macReq(t, tt.key, syncReq, c.Now(), nonce(byte(i)), "")
			if !strings.HasPrefix(h, "v2; s=") || len(h) > authz.MaxHeaderLen {
				t.Fatalf("header %q", h)
			}
			got := syncReq
			tt.change(&got)
			s, err := macVerifier(t, c).Verify(h, got)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && s != sessionOf(sessionKey) {
				t.Fatalf("session %s, want the key holder's", s)
			}
			if err != nil && !errors.Is(err, authz.ErrUnauthenticated) {
				t.Fatalf("%v does not match ErrUnauthenticated", err)
			}
		})
	}

	// The fields of the header itself: MAC, time, nonce, echo, session
	// and node key.
	v := macVerifier(t, c)
	echo := v.Challenge(sessionOf(sessionKey))
	h := macReq(t, k, syncReq, c.Now(), nonce(1), echo)
	plain := macReq(t, k, syncReq, c.Now(), nonce(2), "") // the echo names the session: none
	other := macReq(t, requestKey(t, otherKey, pub(nodeKey), audience), syncReq, c.Now(), nonce(1), "")
	fromOther := func(h, name string) string { // name's field as other spells it
		_, rest, _ := strings.Cut(h, "; "+name+"=")
		v, _, _ := strings.Cut(rest, ";")
		return v
	}
	macAt := strings.Index(h, "; mac=") + len("; mac=")
	flipped := []byte(h)
	if flipped[macAt] == 'A' {
		flipped[macAt] = 'B'
	} else {
		flipped[macAt] = 'A'
	}
	for _, tt := range []struct {
		name, header string
		want         error
	}{
		{"mac", string(flipped), authz.ErrBadSignature},
		{"time", strings.Replace(h, "; t="+itoa(t0.UnixMilli()), "; t="+itoa(t0.UnixMilli()+1), 1), authz.ErrBadSignature},
		{"nonce", strings.Replace(h, "; n=AQ", "; n=Ag", 1), authz.ErrBadSignature},
		{"echo dropped", strings.Replace(h, "; e="+echo, "", 1), authz.ErrBadSignature},
		{"session", strings.Replace(plain, fromOther(plain, "s"), fromOther(other, "s"), 1), authz.ErrBadSignature},
		{"mac of another session", strings.Replace(h, fromOther(h, "mac"), fromOther(other, "mac"), 1), authz.ErrBadSignature},
	} {
		t.Run("header "+tt.name, func(t *testing.T) {
			if tt.header == h {
				t.Fatalf("%s not changed in %q", tt.name, h)
			}
			if _, err := v.Verify(tt.header, syncReq); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := v.Verify(h, syncReq); err != nil {
		t.Fatalf("the untouched header after the forgeries: %v", err)
	}
}

// TestMACWithAnotherNodesKeyID: a header naming this node's key but MACed
// with a key derived for another node is refused as a bad MAC, not
// accepted: k names the key, the MAC proves it.
func TestMACWithAnotherNodesKeyID(t *testing.T) {
	c := newClock(t0)
	v := macVerifier(t, c)
	mine := macReq(t, requestKey(t, sessionKey, pub(nodeKey), audience), syncReq, t0, nonce(1), "")
	theirs := macReq(t, requestKey(t, sessionKey, pub(otherKey), audience), syncReq, t0, nonce(1), "")
	kOf := func(h string) string { _, r, _ := strings.Cut(h, "; k="); return r[:12] }
	forged := strings.Replace(theirs, "; k="+kOf(theirs), "; k="+kOf(mine), 1)
	if _, err := v.Verify(forged, syncReq); !errors.Is(err, authz.ErrBadSignature) {
		t.Fatalf("Verify = %v, want ErrBadSignature", err)
	}
	if _, err := v.Verify(theirs, syncReq); !errors.Is(err, authz.ErrUnknownNodeKey) {
		t.Fatalf("Verify = %v, want ErrUnknownNodeKey", err)
	}
	if _, err := v.Verify(mine, syncReq); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownNodeKey: a verifier without MACKey refuses every v2 header
// and names no node; one with it names its key.
func TestUnknownNodeKey(t *testing.T) {
	c := newClock(t0)
	v := verifier(t, c)
	if v.NodeHeader() != "" {
		t.Fatalf("NodeHeader() = %q without a MAC key", v.NodeHeader())
	}
	h := macReq(t, requestKey(t, sessionKey, pub(nodeKey), audience), syncReq, t0, nonce(1), "")
	if _, err := v.Verify(h, syncReq); !errors.Is(err, authz.ErrUnknownNodeKey) || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("v2 header to a v1-only verifier: %v, want ErrUnknownNodeKey", err)
	}
	named, err := authz.ParseNodeKey(macVerifier(t, c).NodeHeader())
	if err != nil || !named.Equal(pub(nodeKey)) {
		t.Fatalf("NodeHeader names %x, %v; want the node's key", named, err)
	}
	// The client derives the key for the node named and is accepted.
	if _, err := macVerifier(t, c).Verify(macReq(t, requestKey(t, sessionKey, named, audience), syncReq, t0, nonce(2), ""), syncReq); err != nil {
		t.Fatal(err)
	}
}

// TestReplayAcrossVersions: v1 and v2 headers share one nonce cache, so a
// nonce used in one form is refused in the other.
func TestReplayAcrossVersions(t *testing.T) {
	c := newClock(t0)
	v := macVerifier(t, c)
	k := requestKey(t, sessionKey, pub(nodeKey), audience)
	if _, err := v.Verify(sign(t, syncReq, audience, t0, nonce(1), ""), syncReq); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(macReq(t, k, syncReq, t0, nonce(1), ""), syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("v2 with a v1 request's nonce: %v, want ErrReplay", err)
	}
	if _, err := v.Verify(macReq(t, k, syncReq, t0, nonce(2), ""), syncReq); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, syncReq, audience, t0, nonce(2), ""), syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("v1 with a v2 request's nonce: %v, want ErrReplay", err)
	}
	h := macReq(t, k, syncReq, t0, nonce(3), "")
	if _, err := v.Verify(h, syncReq); err != nil {
		t.Fatal(err)
	}
	c.Add(59 * time.Second)
	if _, err := v.Verify(h, syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("v2 replayed: %v, want ErrReplay", err)
	}
}

// TestMACClockSkewChallenge: a v2 request from a skewed clock gets a
// server nonce, and echoing it in v2 is accepted once.
func TestMACClockSkewChallenge(t *testing.T) {
	c := newClock(t0)
	v := macVerifier(t, c)
	k := requestKey(t, sessionKey, pub(nodeKey), audience)
	skewed := t0.Add(-10 * time.Minute)
	_, err := v.Verify(macReq(t, k, syncReq, skewed, nonce(1), ""), syncReq)
	var ce *authz.ChallengeError
	if !errors.As(err, &ce) || !errors.Is(err, authz.ErrStale) {
		t.Fatalf("skewed v2 request: %v, want a ChallengeError", err)
	}
	retry := macReq(t, k, syncReq, skewed, nonce(2), ce.Nonce)
	if _, err := v.Verify(retry, syncReq); err != nil {
		t.Fatalf("echoed v2 request: %v", err)
	}
	if _, err := v.Verify(sign(t, syncReq, audience, skewed, nonce(3), ce.Nonce), syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("server nonce echoed again in v1: %v, want ErrReplay", err)
	}
}

// TestAuthHeaderLength: the longest headers of both versions (a 16-digit
// time and an echo) fit in MaxHeaderLen, and v2 is the shorter.
func TestAuthHeaderLength(t *testing.T) {
	c := newClock(t0)
	echo := macVerifier(t, c).Challenge(sessionOf(sessionKey))
	late := time.UnixMilli(9999_999_999_999_999)
	v1 := sign(t, syncReq, audience, late, nonce(1), echo)
	v2 := macReq(t, requestKey(t, sessionKey, pub(nodeKey), audience), syncReq, late, nonce(1), echo)
	for _, h := range []string{v1, v2} {
		if len(h) > authz.MaxHeaderLen {
			t.Errorf("%d bytes > %d: %q", len(h), authz.MaxHeaderLen, h)
		}
		if p, err := authz.ParseAuthHeader(h); err != nil || p.String() != h {
			t.Errorf("ParseAuthHeader(%q) = %v", h, err)
		}
	}
	if len(v2) >= len(v1) {
		t.Errorf("v2 header %d bytes, v1 %d", len(v2), len(v1))
	}
	t.Logf("longest v1 header %d bytes, v2 %d", len(v1), len(v2))
}

// TestParseAuthHeaderStrictV2: only the one canonical spelling of a v2
// header parses.
func TestParseAuthHeaderStrictV2(t *testing.T) {
	good := macReq(t, requestKey(t, sessionKey, pub(nodeKey), audience), syncReq, t0, nonce(1), "")
	if h, err := authz.ParseAuthHeader(good); err != nil || h.String() != good || h.Version != 2 {
		t.Fatalf("ParseAuthHeader(%q) = %+v, %v", good, h, err)
	}
	k := good[strings.Index(good, "; k="):strings.Index(good, "; t=")]
	mac := good[strings.Index(good, "; mac="):]
	kFirst := "v2; " + k[2:] + "; " + good[4:strings.Index(good, "; k=")] + good[strings.Index(good, "; t="):]
	for _, bad := range []string{
		strings.Replace(good, "v2; ", "v1; ", 1),        // v1 with v2's fields
		strings.Replace(good, "v2; ", "v3; ", 1),        // unknown version
		strings.Replace(good, k, "", 1),                 // no k
		strings.Replace(good, "; mac=", "; sig=", 1),    // v2 with a sig
		strings.Replace(good, k, k+"A", 1),              // k too long
		strings.Replace(good, k, k[:len(k)-1], 1),       // k too short
		strings.Replace(good, mac, mac[:len(mac)-1], 1), // mac too short
		strings.Replace(good, "; t=", k+"; t=", 1),      // k twice
		good + mac, // mac twice
		kFirst,
	} {
		if _, err := authz.ParseAuthHeader(bad); !errors.Is(err, authz.ErrMalformed) {
			t.Errorf("ParseAuthHeader(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestParseNodeKey(t *testing.T) {
	s := authz.FormatNodeKey(pub(nodeKey))
	if k, err := authz.ParseNodeKey(s); err != nil || !k.Equal(pub(nodeKey)) {
		t.Fatalf("ParseNodeKey(%q) = %x, %v", s, k, err)
	}
	notPoint := make([]byte, 32)
	notPoint[0] = 2 // y = 2 has no x on the curve
	for _, bad := range []string{"", s[:len(s)-1], s + "A", s + "=", strings.ToUpper(s), authz.FormatNodeKey(notPoint)} {
		if _, err := authz.ParseNodeKey(bad); err == nil {
			t.Errorf("ParseNodeKey(%q) accepted it", bad)
		}
	}
}

func TestNewRequestKeyRefusesBadKeys(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1 // the neutral point: X25519 with it gives zeros
	for _, tt := range []struct {
		name    string
		session ed25519.PrivateKey
		node    ed25519.PublicKey
		aud     string
	}{
		{"small-order node key", sessionKey, identity, audience},
		{"short node key", sessionKey, pub(nodeKey)[:31], audience},
		{"short session key", sessionKey[:32], pub(nodeKey), audience},
		{"no audience", sessionKey, pub(nodeKey), ""},
	} {
		if _, err := authz.NewRequestKey(tt.session, tt.node, tt.aud); err == nil {
			t.Errorf("%s: NewRequestKey accepted it", tt.name)
		}
	}
	if _, err := authz.NewVerifier(audience, &authz.VerifierOptions{MACKey: nodeKey[:10]}); err == nil {
		t.Error("NewVerifier took a 10-byte MAC key")
	}
	if _, err := authz.NewVerifier(audience, &authz.VerifierOptions{MACKey: nodeKey, MACSessions: -1}); err == nil {
		t.Error("NewVerifier took MACSessions -1")
	}
}
