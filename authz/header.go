package authz

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// The Goat-Auth header signs one HTTP request with the session's key:
//
//	Goat-Auth: v1; s=<session>; t=<time>; n=<nonce>; d=<digest>; [e=<echo>; ]sig=<signature>
//
//	s    the session id in its base32 form (commit.SessionID.String, 52
//	     characters)
//	t    the client's clock, Unix milliseconds, decimal without leading
//	     zeros (at most 16 digits)
//	n    16 random bytes
//	d    blake3-256 of the request body (of no bytes for an empty body)
//	e    optional: the server nonce of a Goat-Nonce challenge, echoed
//	     as received (24 bytes)
//	sig  Ed25519 by the session's key over the signed bytes below
//
// Binary fields are base64url without padding (RFC 4648 §5): no '+', '/'
// or '=' to quote in a header. The form is strict: the fields in this
// order, separated by "; ", each exactly once, every value in its one
// canonical spelling, at most MaxHeaderLen bytes in all; anything else is
// ErrMalformed. The signature covers
//
//	"goatdb-req-v1\x00" method \x00 host \x00 path?query \x00 t \x00 n \x00 d \x00 audience [\x00 e]
//
// with t, n, d and e as spelled in the header, the method, host and
// request target (path and query) as sent on the wire, and the audience
// (the deployment's id), which the header does not carry: a request signed
// for another deployment fails as a bad signature. None of the parts may
// hold a NUL byte, so the message splits only one way. The echo is signed
// too, so a captured request cannot be paired with a server nonce fetched
// by someone else.

const (
	// AuthHeaderName is the name of the header that carries a request's
	// signature.
	AuthHeaderName = "Goat-Auth"
	// NonceHeaderName is the name of the header in which a server answers
	// a request outside its time window with a server nonce (see
	// ChallengeError), which the client echoes in the e field.
	NonceHeaderName = "Goat-Nonce"
	// MaxHeaderLen bounds a Goat-Auth header value, in bytes.
	MaxHeaderLen = 300
	// DefaultWindow is how far a request's time may be from the server's
	// clock.
	DefaultWindow = 60 * time.Second

	nonceSize     = 16 // bytes of a request nonce
	echoSize      = 24
	maxTimeDigits = 16
)

var b64 = base64.RawURLEncoding.Strict()

// Digest is the blake3-256 digest of a request body.
type Digest [32]byte

// BodyDigest returns the digest of body.
func BodyDigest(body []byte) Digest { return blake3.Sum256(body) }

// DigestReader returns the digest of everything r yields.
func DigestReader(r io.Reader) (Digest, error) {
	h := blake3.New()
	if _, err := io.Copy(h, r); err != nil {
		return Digest{}, fmt.Errorf("digest body: %w", err)
	}
	var d Digest
	h.Sum(d[:0])
	return d, nil
}

// Request is what a request's signature binds besides time, nonce and
// audience.
type Request struct {
	// Method is the HTTP method as sent ("POST").
	Method string
	// Host is the Host header as sent ("db.example.com:8080"); on the
	// server, http.Request.Host.
	Host string
	// PathQuery is the request target as sent: the path and, if any, "?"
	// and the raw query ("/v1/sync?x=1"); on the server,
	// http.Request.RequestURI.
	PathQuery string
	// Body is the digest of the body (BodyDigest(nil) for none).
	Body Digest
}

// AuthHeader is a parsed Goat-Auth header value.
type AuthHeader struct {
	Session commit.SessionID
	Time    int64 // Unix milliseconds, the client's clock
	Nonce   [16]byte
	Body    Digest
	Echo    string // the echoed server nonce as spelled, or ""
	Sig     [ed25519.SignatureSize]byte
}

// NewNonce returns 16 random bytes for a request's n field.
func NewNonce() [16]byte {
	var n [16]byte
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails
	return n
}

// SignRequest returns the Goat-Auth header value that signs req with key
// for audience at time now with nonce (see NewNonce). echo is the server
// nonce of a Goat-Nonce challenge to echo, or "".
func SignRequest(key ed25519.PrivateKey, audience string, req Request, now time.Time, nonce [16]byte, echo string) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("sign request: key has %d bytes, not %d", len(key), ed25519.PrivateKeySize)
	}
	if err := checkParts(audience, req); err != nil {
		return "", fmt.Errorf("sign request: %w", err)
	}
	if echo != "" {
		if _, err := decodeB64("e", echo, echoSize); err != nil {
			return "", fmt.Errorf("sign request: %w", err)
		}
	}
	h := &AuthHeader{Time: now.UnixMilli(), Nonce: nonce, Body: req.Body, Echo: echo}
	if h.Time < 0 || len(strconv.FormatInt(h.Time, 10)) > maxTimeDigits {
		return "", fmt.Errorf("sign request: time %v out of range", now)
	}
	copy(h.Session[:], key.Public().(ed25519.PublicKey))
	copy(h.Sig[:], ed25519.Sign(key, h.message(audience, req)))
	return h.String(), nil
}

// checkParts refuses a NUL byte in any signed part, and an audience that
// is not a name (1–128 characters of A-Z a-z 0-9 . _ -, as in
// certificates).
func checkParts(audience string, req Request) error {
	if err := checkName("audience", audience, 1, maxAudience); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, p := range [...]struct{ name, v string }{
		{"method", req.Method}, {"host", req.Host}, {"path", req.PathQuery},
	} {
		if strings.IndexByte(p.v, 0) >= 0 {
			return fmt.Errorf("%w: %s holds a NUL byte", ErrMalformed, p.name)
		}
	}
	return nil
}

// String returns the header value in its canonical form.
func (h *AuthHeader) String() string {
	var b strings.Builder
	b.Grow(MaxHeaderLen)
	b.WriteString("v1; s=")
	b.WriteString(h.Session.String())
	b.WriteString("; t=")
	b.WriteString(strconv.FormatInt(h.Time, 10))
	b.WriteString("; n=")
	b.WriteString(b64.EncodeToString(h.Nonce[:]))
	b.WriteString("; d=")
	b.WriteString(b64.EncodeToString(h.Body[:]))
	if h.Echo != "" {
		b.WriteString("; e=")
		b.WriteString(h.Echo)
	}
	b.WriteString("; sig=")
	b.WriteString(b64.EncodeToString(h.Sig[:]))
	return b.String()
}

// message returns the bytes the signature covers.
func (h *AuthHeader) message(audience string, req Request) []byte {
	var b []byte
	b = append(b, "goatdb-req-v1\x00"...)
	b = append(append(b, req.Method...), 0)
	b = append(append(b, req.Host...), 0)
	b = append(append(b, req.PathQuery...), 0)
	b = append(strconv.AppendInt(b, h.Time, 10), 0)
	b = append(append(b, b64.EncodeToString(h.Nonce[:])...), 0)
	b = append(append(b, b64.EncodeToString(h.Body[:])...), 0)
	b = append(b, audience...)
	if h.Echo != "" {
		b = append(append(b, 0), h.Echo...)
	}
	return b
}

// ParseAuthHeader parses a Goat-Auth header value. It accepts only the
// canonical form (ParseAuthHeader(s).String() == s) and checks no
// signature (see Verifier).
func ParseAuthHeader(s string) (*AuthHeader, error) {
	if len(s) > MaxHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrMalformed, len(s), MaxHeaderLen)
	}
	parts := strings.Split(s, "; ")
	if parts[0] != "v1" {
		return nil, fmt.Errorf("%w: does not start with \"v1; \"", ErrMalformed)
	}
	want := []string{"s", "t", "n", "d", "sig"}
	if len(parts) == 7 {
		want = []string{"s", "t", "n", "d", "e", "sig"}
	}
	if len(parts)-1 != len(want) {
		return nil, fmt.Errorf("%w: %d fields, want s, t, n, d, [e,] sig", ErrMalformed, len(parts)-1)
	}
	h := &AuthHeader{}
	for i, name := range want {
		k, v, ok := strings.Cut(parts[i+1], "=")
		if !ok || k != name {
			return nil, fmt.Errorf("%w: field %d is %.20q, want %s=", ErrMalformed, i+1, parts[i+1], name)
		}
		if err := h.setField(name, v); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *AuthHeader) setField(name, v string) error {
	var b []byte
	var err error
	switch name {
	case "s":
		h.Session, err = commit.ParseSessionID(v)
		if err != nil {
			return fmt.Errorf("%w: s: %v", ErrMalformed, err)
		}
		return nil
	case "t":
		h.Time, err = parseTime(v)
		return err
	case "n":
		b, err = decodeB64(name, v, nonceSize)
		copy(h.Nonce[:], b)
	case "d":
		b, err = decodeB64(name, v, len(h.Body))
		copy(h.Body[:], b)
	case "e":
		_, err = decodeB64(name, v, echoSize)
		h.Echo = v
	case "sig":
		b, err = decodeB64(name, v, len(h.Sig))
		copy(h.Sig[:], b)
	}
	return err
}

// parseTime parses t: decimal digits, no sign, no leading zero.
func parseTime(v string) (int64, error) {
	if v == "" || len(v) > maxTimeDigits || (v[0] == '0' && len(v) > 1) {
		return 0, fmt.Errorf("%w: t %.20q is not 1–%d digits without a leading zero", ErrMalformed, v, maxTimeDigits)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("%w: t %.20q is not decimal", ErrMalformed, v)
		}
	}
	t, err := strconv.ParseInt(v, 10, 64)
	if err != nil { // 16 digits always fit; kept for safety
		return 0, fmt.Errorf("%w: t %.20q: %v", ErrMalformed, v, err)
	}
	return t, nil
}

// decodeB64 decodes a field of n bytes, accepting only its canonical
// spelling (the decoder would skip newlines).
func decodeB64(name, v string, n int) ([]byte, error) {
	if len(v) != b64.EncodedLen(n) {
		return nil, fmt.Errorf("%w: %s has %d characters, want %d", ErrMalformed, name, len(v), b64.EncodedLen(n))
	}
	b, err := b64.DecodeString(v)
	if err != nil || len(b) != n || b64.EncodeToString(b) != v {
		return nil, fmt.Errorf("%w: %s is not base64url of %d bytes", ErrMalformed, name, n)
	}
	return b, nil
}
