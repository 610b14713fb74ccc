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

// The Goat-Auth header authenticates one HTTP request as its session's,
// in one of two forms:
//
//	Goat-Auth: v1; s=<session>; t=<time>; n=<nonce>; d=<digest>; [e=<echo>; ]sig=<signature>
//	Goat-Auth: v2; s=<session>; k=<node>; t=<time>; n=<nonce>; d=<digest>; [e=<echo>; ]mac=<mac>
//
//	s    the session id in its base32 form (commit.SessionID.String, 52
//	     characters)
//	k    v2: the node key the request key was derived with: the first
//	     NodeIDSize (9) bytes of the node's Ed25519 public key
//	t    the client's clock, Unix milliseconds, decimal without leading
//	     zeros (at most 16 digits)
//	n    16 random bytes
//	d    blake3-256 of the request body (of no bytes for an empty body)
//	e    optional: the server nonce of a Goat-Nonce challenge, echoed
//	     as received (24 bytes)
//	sig  v1: Ed25519 by the session's key over the signed bytes below
//	mac  v2: blake3-256 keyed with the request key the session shares
//	     with the node (see RequestKey) over the same bytes, v2's prefix
//
// Binary fields are base64url without padding (RFC 4648 §5): no '+', '/'
// or '=' to quote in a header. The form is strict: the fields in this
// order, separated by "; ", each exactly once, every value in its one
// canonical spelling, at most MaxHeaderLen bytes in all (the longest v1
// header, a 16-digit time and an echo, has 279; the longest v2, 252);
// anything else is ErrMalformed. The signature or MAC covers
//
//	"goatdb-req-v1\x00" method \x00 host \x00 path?query \x00 t \x00 n \x00 d \x00 audience [\x00 e]   (v1)
//	"goatdb-req-v2\x00" method \x00 host \x00 path?query \x00 t \x00 n \x00 d \x00 audience [\x00 e]   (v2)
//
// with t, n, d and e as spelled in the header, the method, host and
// request target (path and query) as sent on the wire, and the audience
// (the deployment's id), which the header does not carry: a request signed
// for another deployment fails as a bad signature. None of the parts may
// hold a NUL byte, so the message splits only one way. The echo is signed
// too, so a captured request cannot be paired with a server nonce fetched
// by someone else. The prefixes differ, so a v1 signature and a v2 MAC are
// never over the same bytes. v2's k is not covered: the request key is
// derived from the whole node key, so a MAC made for another node's key
// fails whatever k says.

const (
	// AuthHeaderName is the name of the header that carries a request's
	// signature or MAC.
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

	// NodeIDSize is the length of a v2 header's k field, in bytes: a
	// prefix of the node's public key, which names the key among a
	// server's without carrying all of it.
	NodeIDSize = 9

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
	// Version is 2 for a header authenticated by a MAC under a request
	// key (Node, MAC), otherwise 1: signed by the session's key (Sig).
	Version int
	Session commit.SessionID
	Node    [NodeIDSize]byte // v2: the node key's first bytes
	Time    int64            // Unix milliseconds, the client's clock
	Nonce   [16]byte
	Body    Digest
	Echo    string                      // the echoed server nonce as spelled, or ""
	Sig     [ed25519.SignatureSize]byte // v1
	MAC     [macSize]byte               // v2
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
	h, err := newHeader(1, audience, req, now, nonce, echo)
	if err != nil {
		return "", fmt.Errorf("sign request: %w", err)
	}
	copy(h.Session[:], key.Public().(ed25519.PublicKey))
	copy(h.Sig[:], ed25519.Sign(key, h.message(audience, req)))
	return h.String(), nil
}

// newHeader checks the parts of a request to sign or MAC and returns its
// header without session and signature.
func newHeader(version int, audience string, req Request, now time.Time, nonce [16]byte, echo string) (*AuthHeader, error) {
	if err := checkParts(audience, req); err != nil {
		return nil, err
	}
	if echo != "" {
		if _, err := decodeB64("e", echo, echoSize); err != nil {
			return nil, err
		}
	}
	h := &AuthHeader{Version: version, Time: now.UnixMilli(), Nonce: nonce, Body: req.Body, Echo: echo}
	if h.Time < 0 || len(strconv.FormatInt(h.Time, 10)) > maxTimeDigits {
		return nil, fmt.Errorf("time %v out of range", now)
	}
	return h, nil
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
	v2 := h.Version == 2
	if v2 {
		b.WriteString("v2; s=")
	} else {
		b.WriteString("v1; s=")
	}
	b.WriteString(h.Session.String())
	if v2 {
		b.WriteString("; k=")
		b.WriteString(b64.EncodeToString(h.Node[:]))
	}
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
	if v2 {
		b.WriteString("; mac=")
		b.WriteString(b64.EncodeToString(h.MAC[:]))
	} else {
		b.WriteString("; sig=")
		b.WriteString(b64.EncodeToString(h.Sig[:]))
	}
	return b.String()
}

// message returns the bytes the signature (v1) or MAC (v2) covers.
func (h *AuthHeader) message(audience string, req Request) []byte {
	b := make([]byte, 0, 160+len(req.Method)+len(req.Host)+len(req.PathQuery)+len(audience))
	if h.Version == 2 {
		b = append(b, "goatdb-req-v2\x00"...)
	} else {
		b = append(b, "goatdb-req-v1\x00"...)
	}
	b = append(append(b, req.Method...), 0)
	b = append(append(b, req.Host...), 0)
	b = append(append(b, req.PathQuery...), 0)
	b = append(strconv.AppendInt(b, h.Time, 10), 0)
	b = append(b64.AppendEncode(b, h.Nonce[:]), 0)
	b = append(b64.AppendEncode(b, h.Body[:]), 0)
	b = append(b, audience...)
	if h.Echo != "" {
		b = append(append(b, 0), h.Echo...)
	}
	return b
}

// The fields of each version, in order, without and with an echo.
var (
	fieldsV1     = []string{"s", "t", "n", "d", "sig"}
	fieldsV1Echo = []string{"s", "t", "n", "d", "e", "sig"}
	fieldsV2     = []string{"s", "k", "t", "n", "d", "mac"}
	fieldsV2Echo = []string{"s", "k", "t", "n", "d", "e", "mac"}
)

// ParseAuthHeader parses a Goat-Auth header value, v1 or v2. It accepts
// only the canonical form (ParseAuthHeader(s).String() == s) and checks
// no signature or MAC (see Verifier).
func ParseAuthHeader(s string) (*AuthHeader, error) {
	if len(s) > MaxHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrMalformed, len(s), MaxHeaderLen)
	}
	parts := strings.Split(s, "; ")
	h := &AuthHeader{}
	var want, withEcho []string
	switch parts[0] {
	case "v1":
		h.Version, want, withEcho = 1, fieldsV1, fieldsV1Echo
	case "v2":
		h.Version, want, withEcho = 2, fieldsV2, fieldsV2Echo
	default:
		return nil, fmt.Errorf("%w: does not start with \"v1; \" or \"v2; \"", ErrMalformed)
	}
	if len(parts)-1 == len(withEcho) {
		want = withEcho
	}
	if len(parts)-1 != len(want) {
		return nil, fmt.Errorf("%w: %d fields, want %s", ErrMalformed, len(parts)-1, strings.Join(withEcho, ", "))
	}
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
	case "k":
		b, err = decodeB64(name, v, len(h.Node))
		copy(h.Node[:], b)
	case "mac":
		b, err = decodeB64(name, v, len(h.MAC))
		copy(h.MAC[:], b)
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
