package authz

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/goatdb/goatdb/commit"
)

const (
	targetSession = 1
	targetUser    = 2

	issuerRoot = 1
	issuerNode = 2
)

// RevocationFields are the fields of a revocation record. Exactly one of
// Session and User names the target.
type RevocationFields struct {
	// Session is the revoked session (a lost device, a logout).
	Session commit.SessionID
	// User is the user whose sessions are revoked (a disabled account).
	User string
	// RevokedAt is when the revocation takes effect, on the issuer's
	// clock: a commit received at or after it under a certificate the
	// record covers is refused.
	RevokedAt time.Time
	// NotBeforeIssued voids the target's certificates whose NotBefore (their
	// issue time) is before it. RevokedAt is the usual value: certificates
	// issued later (a new login) are valid again. MaxTime voids every
	// certificate of the target for good (a stolen key).
	NotBeforeIssued time.Time
	// Audience names the deployment the record is for.
	Audience string
}

// Revocation is an immutable record that voids certificates: every
// certificate of one session, or of one user, issued before a time. The
// deployment's root key or a node's key signs it. It is safe for
// concurrent use.
type Revocation struct {
	session          commit.SessionID
	user             string
	revokedAt, nbIss uint64
	audience         string
	node             *NodeCertificate // nil: signed by the root key
	raw              []byte
}

// Revoke signs a revocation record. With node nil, key is the
// deployment's root key; otherwise key is node's key.
func Revoke(key ed25519.PrivateKey, node *NodeCertificate, f RevocationFields) (*Revocation, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: key has %d bytes, not %d", ErrBadCertificate, len(key), ed25519.PrivateKeySize)
	}
	if node != nil && !bytes.Equal(key.Public().(ed25519.PublicKey), node.key) {
		return nil, fmt.Errorf("%w: the key is not the key of node %s", ErrBadCertificate, node.node)
	}
	if f.Session.IsZero() == (f.User == "") {
		return nil, fmt.Errorf("%w: a revocation names a session or a user, not both or neither", ErrBadCertificate)
	}
	if err := checkName("user", f.User, 0, MaxUserLen); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if err := checkName("audience", f.Audience, 1, maxAudience); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	at, err := millis("RevokedAt", f.RevokedAt)
	if err != nil {
		return nil, err
	}
	nbIss, err := millis("NotBeforeIssued", f.NotBeforeIssued)
	if err != nil {
		return nil, err
	}
	e := enc{make([]byte, 0, MaxRevocationSize)}
	e.byte(recordVersion)
	e.byte(kindRevocation)
	if f.User != "" {
		e.byte(targetUser)
		e.name(f.User)
	} else {
		e.byte(targetSession)
		e.raw(f.Session[:])
	}
	e.time(at)
	e.time(nbIss)
	e.name(f.Audience)
	if node == nil {
		e.byte(issuerRoot)
	} else {
		e.byte(issuerNode)
		e.cert(node.raw)
	}
	e.raw(ed25519.Sign(key, signedMessage(e.b)))
	return DecodeRevocation(e.b)
}

// DecodeRevocation decodes a revocation record. It accepts only the
// canonical encoding and checks no signature (see Verify).
func DecodeRevocation(b []byte) (*Revocation, error) {
	d := &dec{what: "revocation", b: b}
	if len(b) > MaxRevocationSize {
		d.fail("%d bytes > %d", len(b), MaxRevocationSize)
		return nil, d.err
	}
	d.header(kindRevocation)
	r := &Revocation{}
	switch t := d.byte("target"); {
	case d.err != nil:
	case t == targetSession:
		copy(r.session[:], d.key("session"))
	case t == targetUser:
		r.user = d.name("user", 1, MaxUserLen)
	default:
		d.off--
		d.fail("target %d is neither 1 (session) nor 2 (user)", t)
	}
	r.revokedAt = d.time("revokedAt")
	r.nbIss = d.time("notBeforeIssued")
	r.audience = d.name("audience", 1, maxAudience)
	var nodeRaw []byte
	start := 0
	switch is := d.byte("issuer"); {
	case d.err != nil:
	case is == issuerRoot:
	case is == issuerNode:
		start = d.off + 2
		nodeRaw = d.cert("issuer certificate")
	default:
		d.off--
		d.fail("issuer %d is neither 1 (root) nor 2 (node)", is)
	}
	d.signature()
	if d.err != nil {
		return nil, d.err
	}
	if nodeRaw != nil {
		node, err := DecodeNodeCertificate(nodeRaw)
		if err != nil {
			return nil, fmt.Errorf("%w: revocation at byte %d: issuer: %w", ErrBadCertificate, start, err)
		}
		r.node = node
	}
	r.raw = bytes.Clone(b)
	return r, nil
}

// Encode returns the record's canonical encoding.
func (r *Revocation) Encode() []byte { return bytes.Clone(r.raw) }

// Fields returns the record's fields.
func (r *Revocation) Fields() RevocationFields {
	return RevocationFields{
		Session: r.session, User: r.user, RevokedAt: fromMillis(r.revokedAt),
		NotBeforeIssued: fromMillis(r.nbIss), Audience: r.audience,
	}
}

// Node returns the certificate of the node that signed the record, or nil
// if the root key did.
func (r *Revocation) Node() *NodeCertificate { return r.node }

// Verify checks that the record is for audience and chains to the root
// key: signed by it, or by a node whose certificate the root key signed
// and which covered RevokedAt. Failures are ErrUntrusted.
func (r *Revocation) Verify(root ed25519.PublicKey, audience string) error {
	if r.audience != audience {
		return fmt.Errorf("%w: revocation is for audience %q, not %q", ErrUntrusted, r.audience, audience)
	}
	key := root
	if r.node != nil {
		if err := r.node.verifySignature(root); err != nil {
			return err
		}
		if !r.node.Covers(fromMillis(r.revokedAt)) {
			return fmt.Errorf("%w: node %s's certificate did not cover the revocation's time %v",
				ErrUntrusted, r.node.node, fromMillis(r.revokedAt))
		}
		key = r.node.key
	}
	body, sig := r.raw[:len(r.raw)-sigSize], r.raw[len(r.raw)-sigSize:]
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, signedMessage(body), sig) {
		return fmt.Errorf("%w: revocation is not signed by its issuer", ErrUntrusted)
	}
	return nil
}

// Covers reports whether the record voids cert for something received at
// receivedAt (the receiver's clock, which an author cannot back-date):
// receivedAt is at or after RevokedAt, the record names cert's session or
// user and audience, and cert was issued (its NotBefore) before
// NotBeforeIssued. Covers trusts the record: call Verify first.
func (r *Revocation) Covers(cert *SessionCertificate, receivedAt time.Time) bool {
	ms := receivedAt.UnixMilli()
	switch {
	case ms < 0 || uint64(ms) < r.revokedAt:
		return false
	case r.audience != cert.audience || cert.notBefore >= r.nbIss:
		return false
	case r.user != "":
		return r.user == cert.user
	}
	return r.session == cert.session
}
