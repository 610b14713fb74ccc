package authz_test

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

// clock is a settable clock for verifiers.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newClock(t time.Time) *clock    { return &clock{t: t} }
func nonce(b byte) (n [16]byte)      { n[0] = b; return n }
func verifier(t *testing.T, c *clock) *authz.Verifier {
	t.Helper()
	v, err := authz.NewVerifier(audience, &authz.VerifierOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var syncReq = authz.Request{Method: "POST", Host: "db.example.com", PathQuery: "/v1/sync?repo=a", Body: authz.BodyDigest([]byte(`{"x":1}`))}

func sign(t *testing.T, req authz.Request, aud string, at time.Time, n [16]byte, echo string) string {
	t.Helper()
	h, err := authz.SignRequest(sessionKey, aud, req, at, n, echo)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRequestSignatureBindsMethodPathBodyAudience signs one request and
// verifies it against requests that differ in one part each.
func TestRequestSignatureBindsMethodPathBodyAudience(t *testing.T) {
	c := newClock(t0)
	tests := []struct {
		name   string
		aud    string
		change func(*authz.Request)
		want   error
	}{
		{"same request", audience, func(*authz.Request) {}, nil},
		{"method", audience, func(r *authz.Request) { r.Method = "PUT" }, authz.ErrBadSignature},
		{"host", audience, func(r *authz.Request) { r.Host = "evil.example.com" }, authz.ErrBadSignature},
		{"path", audience, func(r *authz.Request) { r.PathQuery = "/v1/other?repo=a" }, authz.ErrBadSignature},
		{"query", audience, func(r *authz.Request) { r.PathQuery = "/v1/sync?repo=b" }, authz.ErrBadSignature},
		{"no query", audience, func(r *authz.Request) { r.PathQuery = "/v1/sync" }, authz.ErrBadSignature},
		{"body", audience, func(r *authz.Request) { r.Body = authz.BodyDigest([]byte(`{"x":2}`)) }, authz.ErrBodyMismatch},
		{"audience", "other.example", func(*authz.Request) {}, authz.ErrBadSignature},
		{"NUL in path", audience, func(r *authz.Request) { r.PathQuery += "\x00" }, authz.ErrMalformed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sign(t, syncReq, tt.aud, c.Now(), nonce(byte(i)), "")
			got := syncReq
			tt.change(&got)
			s, err := verifier(t, c).Verify(h, got)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && s != sessionOf(sessionKey) {
				t.Fatalf("session %s, want the signer's", s)
			}
			if err != nil && !errors.Is(err, authz.ErrUnauthenticated) {
				t.Fatalf("%v does not match ErrUnauthenticated", err)
			}
		})
	}
	// The signed fields of the header itself: time and nonce.
	h := sign(t, syncReq, audience, c.Now(), nonce(1), "")
	for _, field := range []struct{ from, to string }{
		{"; n=AQ", "; n=Ag"},
		{"; t=" + itoa(t0.UnixMilli()), "; t=" + itoa(t0.UnixMilli()+1)},
	} {
		forged := strings.Replace(h, field.from, field.to, 1)
		if forged == h {
			t.Fatalf("%q not in %q", field.from, h)
		}
		if _, err := verifier(t, c).Verify(forged, syncReq); !errors.Is(err, authz.ErrBadSignature) {
			t.Errorf("header with %s: %v, want ErrBadSignature", field.to, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestReplayedRequestRefused(t *testing.T) {
	c := newClock(t0)
	v := verifier(t, c)
	h := sign(t, syncReq, audience, c.Now(), nonce(1), "")
	if _, err := v.Verify(h, syncReq); err != nil {
		t.Fatal(err)
	}
	c.Add(59 * time.Second)
	if _, err := v.Verify(h, syncReq); !errors.Is(err, authz.ErrReplay) || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("replay within the window: %v, want ErrReplay", err)
	}
	c.Add(2 * time.Second) // past t + window: the nonce is forgotten, the time stale
	_, err := v.Verify(h, syncReq)
	var ce *authz.ChallengeError
	if !errors.Is(err, authz.ErrStale) || !errors.As(err, &ce) || ce.Nonce == "" {
		t.Fatalf("replay after the window: %v, want ErrStale with a server nonce", err)
	}
	// Another nonce at the same time is a new request.
	if _, err := v.Verify(sign(t, syncReq, audience, t0.Add(30*time.Second), nonce(2), ""), syncReq); err != nil {
		t.Fatal(err)
	}
	// At the edge of the window: accepted once, then refused as a replay
	// (not forgotten because its window closes now).
	edge := sign(t, syncReq, audience, c.Now().Add(-authz.DefaultWindow), nonce(3), "")
	if _, err := v.Verify(edge, syncReq); err != nil {
		t.Fatalf("request at the window's edge: %v", err)
	}
	if _, err := v.Verify(edge, syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("replay at the window's edge: %v, want ErrReplay", err)
	}
}

// TestClockSkewNonceChallenge: a client whose clock is 10 minutes ahead is
// refused with a server nonce, and accepted once when it echoes it.
func TestClockSkewNonceChallenge(t *testing.T) {
	c := newClock(t0)
	v := verifier(t, c)
	skewed := t0.Add(10 * time.Minute)
	_, err := v.Verify(sign(t, syncReq, audience, skewed, nonce(1), ""), syncReq)
	var ce *authz.ChallengeError
	if !errors.As(err, &ce) || !errors.Is(err, authz.ErrStale) || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("skewed request: %v, want a ChallengeError for ErrStale", err)
	}
	c.Add(5 * time.Second)
	retry := sign(t, syncReq, audience, skewed.Add(5*time.Second), nonce(2), ce.Nonce)
	if !strings.Contains(retry, "; e="+ce.Nonce+"; sig=") {
		t.Fatalf("echo not in header %q", retry)
	}
	if s, err := v.Verify(retry, syncReq); err != nil || s != sessionOf(sessionKey) {
		t.Fatalf("echoed request: %v", err)
	}
	if _, err := v.Verify(retry, syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("echoed request again: %v, want ErrReplay", err)
	}
	again := sign(t, syncReq, audience, skewed.Add(6*time.Second), nonce(3), ce.Nonce)
	if _, err := v.Verify(again, syncReq); !errors.Is(err, authz.ErrReplay) {
		t.Fatalf("server nonce echoed a second time: %v, want ErrReplay", err)
	}

	// Echoes that are not valid get a fresh challenge.
	_, err = v.Verify(sign(t, syncReq, audience, skewed, nonce(4), ""), syncReq)
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	other, _ := authz.NewVerifier(audience, &authz.VerifierOptions{Now: c.Now})
	otherSession, err := authz.SignRequest(otherKey, audience, syncReq, skewed, nonce(5), ce.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	var fresh *authz.ChallengeError
	for _, tt := range []struct {
		name   string
		v      *authz.Verifier
		header string
		wait   time.Duration
	}{
		{"another session", v, otherSession, 0},
		{"another verifier", other, sign(t, syncReq, audience, skewed, nonce(6), ce.Nonce), 0},
		{"after the window", v, sign(t, syncReq, audience, skewed, nonce(7), ce.Nonce), 61 * time.Second},
	} {
		c.Add(tt.wait)
		_, err := tt.v.Verify(tt.header, syncReq)
		if !errors.Is(err, authz.ErrBadChallenge) || !errors.As(err, &fresh) || fresh.Nonce == "" || fresh.Nonce == ce.Nonce {
			t.Errorf("%s: %v, want ErrBadChallenge with a fresh nonce", tt.name, err)
		}
	}
	// The fresh nonce works.
	if _, err := v.Verify(sign(t, syncReq, audience, skewed, nonce(8), fresh.Nonce), syncReq); err != nil {
		t.Fatalf("fresh nonce: %v", err)
	}
}

func TestVerifyAcceptHook(t *testing.T) {
	c := newClock(t0)
	revoked := errors.New("session revoked")
	v, err := authz.NewVerifier(audience, &authz.VerifierOptions{
		Now: c.Now,
		Accept: func(s commit.SessionID) error {
			if s == sessionOf(otherKey) {
				return revoked
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := authz.SignRequest(otherKey, audience, syncReq, t0, nonce(1), "")
	for range 2 { // the refused request's nonce is not remembered: same error twice
		if _, err := v.Verify(h, syncReq); err != revoked {
			t.Fatalf("Verify = %v, want Accept's error", err)
		}
	}
	if _, err := v.Verify(sign(t, syncReq, audience, t0, nonce(1), ""), syncReq); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifierOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		aud  string
		o    *authz.VerifierOptions
	}{
		{"no audience", "", nil},
		{"negative window", audience, &authz.VerifierOptions{Window: -time.Second}},
		{"window of a day", audience, &authz.VerifierOptions{Window: 24 * time.Hour}},
		{"short secret", audience, &authz.VerifierOptions{Secret: []byte("short")}},
	} {
		if _, err := authz.NewVerifier(tt.aud, tt.o); err == nil {
			t.Errorf("%s: NewVerifier accepted it", tt.name)
		}
	}
	c := newClock(t0)
	v, err := authz.NewVerifier(audience, &authz.VerifierOptions{Now: c.Now, Window: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(sign(t, syncReq, audience, t0.Add(6*time.Second), nonce(1), ""), syncReq); !errors.Is(err, authz.ErrStale) {
		t.Errorf("6 s off with a 5 s window: %v, want ErrStale", err)
	}
}

// TestParseAuthHeaderStrict checks that only the one canonical spelling
// parses.
func TestParseAuthHeaderStrict(t *testing.T) {
	good := sign(t, syncReq, audience, t0, nonce(1), "")
	h, err := authz.ParseAuthHeader(good)
	if err != nil || h.String() != good {
		t.Fatalf("ParseAuthHeader(%q) = %v", good, err)
	}
	if len(good) > authz.MaxHeaderLen {
		t.Errorf("header of %d bytes > %d", len(good), authz.MaxHeaderLen)
	}
	c := newClock(t0)
	_, err = verifier(t, c).Verify(sign(t, syncReq, audience, t0.Add(time.Hour), nonce(1), ""), syncReq)
	var ce *authz.ChallengeError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	withEcho := sign(t, syncReq, audience, time.UnixMilli(9999999999999999), nonce(1), ce.Nonce)
	if len(withEcho) > authz.MaxHeaderLen {
		t.Errorf("longest header has %d bytes > %d", len(withEcho), authz.MaxHeaderLen)
	}
	if h, err := authz.ParseAuthHeader(withEcho); err != nil || h.String() != withEcho {
		t.Errorf("header with echo: %v", err)
	}
	s := sessionOf(sessionKey).String()
	tests := []struct{ name, h string }{
		{"empty", ""},
		{"version 2", strings.Replace(good, "v1;", "v2;", 1)},
		{"extra space", strings.Replace(good, "; t=", ";  t=", 1)},
		{"no space", strings.Replace(good, "; t=", ";t=", 1)},
		{"trailing semicolon", good + ";"},
		{"trailing space", good + " "},
		{"fields swapped", strings.Replace(strings.Replace(good, "s=", "X=", 1), "t=", "s=", 1)},
		{"duplicate field", strings.Replace(good, "; sig=", "; d="+b64Digest()+"; sig=", 1)},
		{"unknown field", strings.Replace(good, "; sig=", "; x=1; sig=", 1)},
		{"lowercase session", strings.Replace(good, s, strings.ToLower(s), 1)},
		{"leading zero time", strings.Replace(good, "; t=", "; t=0", 1)},
		{"signed time", strings.Replace(good, "; t=", "; t=+", 1)},
		{"padded nonce", strings.Replace(good, "; n=AQAAAAAAAAAAAAAAAAAAAA", "; n=AQAAAAAAAAAAAAAAAAAAAA==", 1)},
		{"nonce with non-zero tail bits", strings.Replace(good, "; n=AQAAAAAAAAAAAAAAAAAAAA", "; n=AQAAAAAAAAAAAAAAAAAAAB", 1)},
		{"standard base64", strings.Replace(good, "; n=AQAAAAAAAAAAAAAAAAAAAA", "; n=AQAAAAAAAAAAAAAAAAAA+A", 1)},
		{"short echo", strings.Replace(good, "; sig=", "; e=AAAA; sig=", 1)},
		{"too long", good + strings.Repeat("x", authz.MaxHeaderLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.h == good {
				t.Fatal("the case does not change the header")
			}
			if _, err := authz.ParseAuthHeader(tt.h); !errors.Is(err, authz.ErrMalformed) || !errors.Is(err, authz.ErrUnauthenticated) {
				t.Fatalf("ParseAuthHeader = %v, want ErrMalformed", err)
			}
		})
	}
}

func b64Digest() string {
	d := authz.BodyDigest(nil)
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func TestBodyDigest(t *testing.T) {
	d, err := authz.DigestReader(strings.NewReader("body"))
	if err != nil || d != authz.BodyDigest([]byte("body")) {
		t.Fatalf("DigestReader = %x, %v; BodyDigest %x", d, err, authz.BodyDigest([]byte("body")))
	}
	if authz.BodyDigest(nil) == authz.BodyDigest([]byte{0}) {
		t.Fatal("an empty body has the digest of a zero byte")
	}
}
