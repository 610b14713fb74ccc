package authz

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// VerifierOptions configure a Verifier. The zero value (or nil) is valid.
type VerifierOptions struct {
	// Window is how far a request's time may be from the server's clock,
	// and how long an issued server nonce may be echoed. 0 means
	// DefaultWindow; at most one hour.
	Window time.Duration
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time
	// Nonces remembers used nonces; nil means NewNonceCache(0, 0). Several
	// verifiers may share one.
	Nonces *NonceCache
	// Secret keys the server nonces of clock-skew challenges: 32 bytes, or
	// nil for a random key, so that only this Verifier accepts its nonces.
	// Nodes behind one address may share a secret so any of them accepts
	// another's nonce (each consumes it only in its own cache).
	Secret []byte
	// Accept, if set, is called with the session once the signature
	// verifies and before the nonce is remembered; an error refuses the
	// request and is returned as it is. A server checks the session's
	// certificate and revocations here, so that keys it does not know
	// cannot fill the nonce cache.
	Accept func(commit.SessionID) error
	// MACKey, if set, is this node's Ed25519 key: the verifier then takes
	// v2 headers too, MACed with the request key each session derives
	// with its public key (see RequestKey), and NodeHeader names it. nil
	// refuses v2 headers with ErrUnknownNodeKey, so clients sign with v1.
	MACKey ed25519.PrivateKey
	// MACSessions bounds the request keys the verifier caches, one per
	// session whose v2 header it accepted, the least recently used
	// evicted first; 0 means DefaultMACSessions (65,536, about 11 MiB).
	// A session whose key is not cached costs one X25519 (about 50 µs),
	// no more than a v1 header's signature check.
	MACSessions int
}

// Validate checks the options.
func (o *VerifierOptions) Validate() error {
	if o == nil {
		return nil
	}
	if o.Window < 0 || o.Window > time.Hour {
		return fmt.Errorf("authz: verifier window %v not in 0–1h", o.Window)
	}
	if o.Secret != nil && len(o.Secret) != 32 {
		return fmt.Errorf("authz: verifier secret has %d bytes, not 32", len(o.Secret))
	}
	if o.MACKey != nil && len(o.MACKey) != ed25519.PrivateKeySize {
		return fmt.Errorf("authz: verifier MAC key has %d bytes, not %d", len(o.MACKey), ed25519.PrivateKeySize)
	}
	if o.MACSessions < 0 {
		return fmt.Errorf("authz: verifier MACSessions %d < 0", o.MACSessions)
	}
	return nil
}

// Verifier checks the Goat-Auth headers of requests to one deployment. It
// is safe for concurrent use.
type Verifier struct {
	audience string
	window   int64 // milliseconds
	now      func() time.Time
	nonces   *NonceCache
	secret   [32]byte
	accept   func(commit.SessionID) error

	// v2 headers, if MACKey was set: the node key in both forms, its k
	// field, and the request keys of sessions (nil without MACKey).
	macPriv *ecdh.PrivateKey
	macNode ed25519.PublicKey
	macID   [NodeIDSize]byte
	macKeys *macKeys
}

// NewVerifier returns a verifier for requests signed for audience (the
// deployment's id).
func NewVerifier(audience string, o *VerifierOptions) (*Verifier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := checkParts(audience, Request{}); err != nil {
		return nil, fmt.Errorf("authz: verifier: %w", err)
	}
	var opts VerifierOptions
	if o != nil {
		opts = *o
	}
	v := &Verifier{audience: audience, window: DefaultWindow.Milliseconds(), now: opts.Now,
		nonces: opts.Nonces, accept: opts.Accept}
	if opts.Window > 0 {
		v.window = opts.Window.Milliseconds()
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.nonces == nil {
		v.nonces = NewNonceCache(0, 0)
	}
	if opts.Secret != nil {
		copy(v.secret[:], opts.Secret)
	} else {
		_, _ = rand.Read(v.secret[:]) // crypto/rand.Read never fails
	}
	if opts.MACKey != nil {
		var err error
		if v.macPriv, err = x25519Private(opts.MACKey); err != nil {
			return nil, fmt.Errorf("authz: verifier MAC key: %w", err)
		}
		v.macNode = opts.MACKey.Public().(ed25519.PublicKey)
		v.macID = nodeID(v.macNode)
		n := opts.MACSessions
		if n == 0 {
			n = DefaultMACSessions
		}
		v.macKeys = newMACKeys(n)
	}
	return v, nil
}

// NodeHeader returns the Goat-Node header value that names the node key
// v2 headers must be MACed for (FormatNodeKey), or "" if the verifier
// takes no v2 headers.
func (v *Verifier) NodeHeader() string {
	if v.macNode == nil {
		return ""
	}
	return FormatNodeKey(v.macNode)
}

// ChallengeError refuses a request whose time is outside the window
// (Reason wraps ErrStale), or whose echoed server nonce is not valid
// (ErrBadChallenge). The server sends Nonce in the Goat-Nonce header of its
// 401; the client signs the request again with the nonce as echo
// (SignRequest's echo), and the server then accepts it once, whatever the
// client's clock says, within the window after the nonce was issued.
type ChallengeError struct {
	Reason error
	Nonce  string
}

func (e *ChallengeError) Error() string { return e.Reason.Error() + "; echo the server nonce" }

// Unwrap returns Reason.
func (e *ChallengeError) Unwrap() error { return e.Reason }

// Verify checks a request's Goat-Auth header (v1 or v2) against the
// request and returns the session that signed it. In order, it refuses: a
// header not in canonical form (ErrMalformed); a body digest that differs
// from req.Body (ErrBodyMismatch); a v2 header for a node key other than
// MACKey (ErrUnknownNodeKey); a time outside the window, or an echoed
// server nonce that is not valid (*ChallengeError); a signature or MAC
// that does not verify (ErrBadSignature); a session Accept refuses
// (Accept's error); a nonce used before, by a v1 or a v2 header
// (ErrReplay); a full nonce cache (ErrTooManyRequests). Every refusal but
// Accept's errors and ErrTooManyRequests matches ErrUnauthenticated.
func (v *Verifier) Verify(header string, req Request) (commit.SessionID, error) {
	h, err := ParseAuthHeader(header)
	if err != nil {
		return commit.SessionID{}, err
	}
	if err := checkParts(v.audience, req); err != nil {
		return commit.SessionID{}, err
	}
	if h.Body != req.Body {
		return commit.SessionID{}, fmt.Errorf("%w: the header's digest is not the body's", ErrBodyMismatch)
	}
	if h.Version == 2 && (v.macPriv == nil || h.Node != v.macID) {
		return commit.SessionID{}, v.unknownNode(h)
	}
	now := v.now().UnixMilli()
	key, expires, err := v.fresh(h, now)
	if err != nil {
		return commit.SessionID{}, err
	}
	derived, err := v.authentic(h, req)
	if err != nil {
		return commit.SessionID{}, err
	}
	if v.accept != nil {
		if err := v.accept(h.Session); err != nil {
			return commit.SessionID{}, err
		}
	}
	if err := v.nonces.add(key, expires, now); err != nil {
		return commit.SessionID{}, err
	}
	if derived != nil {
		v.macKeys.put(h.Session, derived)
	}
	return h.Session, nil
}

// authentic checks the header's signature (v1) or MAC (v2). For a v2
// header whose session's request key was not cached it returns the key
// it derived, for Verify to cache once the request is accepted.
func (v *Verifier) authentic(h *AuthHeader, req Request) (derived *[macSize]byte, err error) {
	msg := h.message(v.audience, req)
	if h.Version != 2 {
		if !ed25519.Verify(h.Session[:], msg, h.Sig[:]) {
			return nil, fmt.Errorf("%w: session %s (or the request was signed for another method, host, target, body or audience)", ErrBadSignature, h.Session)
		}
		return nil, nil
	}
	key, ok := v.macKeys.get(h.Session)
	if !ok {
		if err := deriveRequestKey(&key, v.macPriv, h.Session[:], h.Session, v.macNode, v.audience); err != nil {
			return nil, fmt.Errorf("%w: session %s: %v", ErrBadSignature, h.Session, err)
		}
		derived = &key
	}
	if mac := requestMAC(&key, msg); !macEqual(&mac, &h.MAC) {
		return nil, fmt.Errorf("%w: bad MAC from session %s (or the request was made for another method, host, target, body or audience)", ErrBadSignature, h.Session)
	}
	return derived, nil
}

// unknownNode refuses a v2 header this verifier cannot check.
func (v *Verifier) unknownNode(h *AuthHeader) error {
	if v.macPriv == nil {
		return fmt.Errorf("%w: this server takes no v2 headers; sign with v1", ErrUnknownNodeKey)
	}
	return fmt.Errorf("%w: the MAC is for node key %s…, this node's is %s; derive the request key for it, or sign with v1",
		ErrUnknownNodeKey, b64.EncodeToString(h.Node[:]), FormatNodeKey(v.macNode))
}

// fresh checks the request's time, or its echo, and returns the nonce to
// remember and until when.
func (v *Verifier) fresh(h *AuthHeader, now int64) (nonceKey, int64, error) {
	if h.Echo == "" {
		if skew := h.Time - now; skew > v.window || -skew > v.window {
			return nonceKey{}, 0, &ChallengeError{
				Reason: fmt.Errorf("%w: request time is %v from the server's clock, the window %v",
					ErrStale, time.Duration(skew)*time.Millisecond, time.Duration(v.window)*time.Millisecond),
				Nonce: v.challenge(h.Session, now),
			}
		}
		// Remembered while the time is in the window: until t + window
		// inclusive.
		return nonceKey{session: h.Session, nonce: h.Nonce}, h.Time + v.window + 1, nil
	}
	issued, id, err := v.checkEcho(h.Session, h.Echo, now)
	if err != nil {
		return nonceKey{}, 0, &ChallengeError{Reason: err, Nonce: v.challenge(h.Session, now)}
	}
	return nonceKey{session: h.Session, nonce: id, server: true}, issued + v.window + 1, nil
}

// Challenge returns a fresh server nonce for session, for a Goat-Nonce
// header. Verify issues them itself in ChallengeErrors.
func (v *Verifier) Challenge(session commit.SessionID) string {
	return v.challenge(session, v.now().UnixMilli())
}

// A server nonce is stateless: the verifier keeps nothing until it is
// echoed. It is 24 bytes,
//
//	issued (8, big-endian Unix ms) | random (4) | mac (12)
//
// where mac is keyed blake3 under the verifier's secret over a context
// string, the audience, the session, issued and random. So it is valid
// only for the session it was issued to, only at this deployment, and only
// within the window after it was issued; the nonce cache makes it
// single-use.
func (v *Verifier) challenge(session commit.SessionID, now int64) string {
	var b [echoSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now))
	_, _ = rand.Read(b[8:12]) // crypto/rand.Read never fails
	copy(b[12:], v.mac(session, b[:12]))
	return b64.EncodeToString(b[:])
}

func (v *Verifier) mac(session commit.SessionID, issuedRandom []byte) []byte {
	h, _ := blake3.NewKeyed(v.secret[:]) // the key has the right size
	_, _ = h.WriteString("goatdb-nonce-v1\x00")
	_, _ = h.WriteString(v.audience)
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(session[:])
	_, _ = h.Write(issuedRandom)
	return h.Sum(nil)[:12]
}

// checkEcho checks an echoed server nonce and returns when it was issued
// and its id in the nonce cache.
func (v *Verifier) checkEcho(session commit.SessionID, echo string, now int64) (int64, [16]byte, error) {
	var id [16]byte
	b, err := decodeB64("e", echo, echoSize)
	if err != nil {
		return 0, id, errors.Join(ErrBadChallenge, err)
	}
	if subtle.ConstantTimeCompare(v.mac(session, b[:12]), b[12:]) != 1 {
		return 0, id, fmt.Errorf("%w: not issued by this server to session %s", ErrBadChallenge, session)
	}
	issued := int64(binary.BigEndian.Uint64(b[:8]))
	if age := now - issued; age > v.window || -age > v.window {
		return 0, id, fmt.Errorf("%w: issued %v ago, the window %v", ErrBadChallenge,
			time.Duration(age)*time.Millisecond, time.Duration(v.window)*time.Millisecond)
	}
	copy(id[:], b[8:])
	return issued, id, nil
}
