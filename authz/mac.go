package authz

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"filippo.io/edwards25519"
	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// A v2 Goat-Auth header proves possession of the session's key with a MAC
// instead of a signature: checking a MAC costs the server a keyed hash
// (a few microseconds), where an Ed25519 verification costs tens of
// microseconds.
//
// The MAC key is a request key that only the session's key holder and the
// node can compute, without anything secret on the wire: both Ed25519 keys
// have an X25519 form (RFC 7748's birational map for public keys; for a
// private key, the clamped first half of SHA-512 of its seed, the scalar
// Ed25519 signs with, as libsodium's crypto_sign_ed25519_sk_to_curve25519),
// and
//
//	dh  = X25519(session private, node public) = X25519(node private, session public)
//	key = blake3.DeriveKey("goatdb-req-mac-v1", dh || session public || node public || audience)
//	mac = blake3 keyed with key (32 bytes) over the v2 message (see AuthHeader)
//
// with both public keys in their 32-byte Ed25519 form, so a key is for one
// session, one node key and one deployment. An X25519 result of all zeros
// (a public key of small order) is refused.
//
// What a MAC proves, a signature proves too, to the node: only the
// session's key holder (or the node) knows the request key. Unlike a
// signature it proves nothing to a third party, which the Verifier does
// not need. The key does not expire: whoever reads it from a client's or
// the server's memory can authenticate requests as the session to that
// node until the session's certificate ends or is revoked, as whoever
// reads the session's private key could. It never authenticates commits,
// which stay signed with the session's key.

const (
	macSize          = 32 // bytes of a v2 MAC and of a request key
	requestKeyDomain = "goatdb-req-mac-v1"

	// NodeHeaderName is the header in which a server that takes v2
	// headers names its node's public key on every 401 it answers
	// (FormatNodeKey), so that a client derives the request key for it,
	// or derives it again when the key it used is not this node's.
	NodeHeaderName = "Goat-Node"

	// DefaultMACSessions bounds the request keys a Verifier caches; see
	// VerifierOptions.MACSessions.
	DefaultMACSessions = 1 << 16
)

// RequestKey is the key one session shares with one node of one
// deployment, for v2 Goat-Auth headers (MACRequest). It is safe for
// concurrent use.
type RequestKey struct {
	session  commit.SessionID
	node     ed25519.PublicKey
	audience string
	key      [macSize]byte
}

// NewRequestKey derives the request key session shares with the node whose
// Ed25519 public key is node, for audience. It costs one X25519 (tens of
// microseconds): a client derives it once per server and keeps it. It
// fails if node is not a public key (not a point, or of small order).
func NewRequestKey(session ed25519.PrivateKey, node ed25519.PublicKey, audience string) (*RequestKey, error) {
	if len(session) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("request key: session key has %d bytes, not %d", len(session), ed25519.PrivateKeySize)
	}
	if err := checkParts(audience, Request{}); err != nil {
		return nil, fmt.Errorf("request key: %w", err)
	}
	priv, err := x25519Private(session)
	if err != nil {
		return nil, fmt.Errorf("request key: %w", err)
	}
	k := &RequestKey{node: bytes.Clone(node), audience: audience}
	copy(k.session[:], session.Public().(ed25519.PublicKey))
	if err := deriveRequestKey(&k.key, priv, node, k.session, node, audience); err != nil {
		return nil, fmt.Errorf("request key: node key: %w", err)
	}
	return k, nil
}

// Node returns the node's public key the key was derived with.
func (k *RequestKey) Node() ed25519.PublicKey { return bytes.Clone(k.node) }

// Audience returns the deployment the key is for.
func (k *RequestKey) Audience() string { return k.audience }

// MACRequest returns the v2 Goat-Auth header value that authenticates req
// with the request key k at time now with nonce (see NewNonce). echo is
// the server nonce of a Goat-Nonce challenge to echo, or "". It costs a
// keyed hash of about 200 bytes.
func MACRequest(k *RequestKey, req Request, now time.Time, nonce [16]byte, echo string) (string, error) {
	h, err := newHeader(2, k.audience, req, now, nonce, echo)
	if err != nil {
		return "", fmt.Errorf("mac request: %w", err)
	}
	h.Session = k.session
	h.Node = nodeID(k.node)
	h.MAC = requestMAC(&k.key, h.message(k.audience, req))
	return h.String(), nil
}

// FormatNodeKey returns a node's public key as a Goat-Node header spells
// it: base64url without padding.
func FormatNodeKey(node ed25519.PublicKey) string { return b64.EncodeToString(node) }

// ParseNodeKey parses a Goat-Node header value: the canonical base64url
// of 32 bytes. It checks that the bytes are a point of the curve, not
// that they are any node's key.
func ParseNodeKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeB64(NodeHeaderName, s, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
		return nil, fmt.Errorf("%w: %s is not a public key", ErrMalformed, NodeHeaderName)
	}
	return ed25519.PublicKey(b), nil
}

// nodeID returns the k field that names a node key.
func nodeID(node ed25519.PublicKey) (id [NodeIDSize]byte) {
	copy(id[:], node)
	return id
}

// requestMAC returns the MAC of msg under key.
func requestMAC(key *[macSize]byte, msg []byte) (mac [macSize]byte) {
	h, _ := blake3.NewKeyed(key[:]) // the key has the right size
	_, _ = h.Write(msg)
	h.Sum(mac[:0])
	return mac
}

// macEqual compares two MACs in constant time.
func macEqual(a, b *[macSize]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// x25519Private returns the X25519 form of an Ed25519 private key: the
// clamped first half of SHA-512 of its seed (RFC 8032 §5.1.5), the scalar
// whose multiple of the base point is the Ed25519 public key.
func x25519Private(key ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	h := sha512.Sum512(key.Seed())
	defer clear(h[:])
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	return ecdh.X25519().NewPrivateKey(h[:32])
}

// x25519Public returns the X25519 form of an Ed25519 public key: the
// u-coordinate of its point on the Montgomery curve.
func x25519Public(key []byte) (*ecdh.PublicKey, error) {
	p, err := new(edwards25519.Point).SetBytes(key)
	if err != nil {
		return nil, errors.New("not a point of edwards25519")
	}
	return ecdh.X25519().NewPublicKey(p.BytesMontgomery())
}

// deriveRequestKey sets out to the request key of session and node for
// audience, from one side's X25519 private key and the other's Ed25519
// public key (peer).
func deriveRequestKey(out *[macSize]byte, priv *ecdh.PrivateKey, peer []byte, session commit.SessionID, node []byte, audience string) error {
	pub, err := x25519Public(peer)
	if err != nil {
		return err
	}
	dh, err := priv.ECDH(pub) // refuses an all-zero result
	if err != nil {
		return err
	}
	ikm := make([]byte, 0, len(dh)+2*ed25519.PublicKeySize+len(audience))
	ikm = append(append(append(append(ikm, dh...), session[:]...), node...), audience...)
	blake3.DeriveKey(requestKeyDomain, ikm, out[:])
	clear(dh)
	clear(ikm)
	return nil
}
