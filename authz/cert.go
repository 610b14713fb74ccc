package authz

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/goatdb/goatdb/commit"
)

// NodeFields are the fields of a node certificate.
type NodeFields struct {
	// Node names the node: 1–128 characters of A-Z a-z 0-9 . _ -.
	Node string
	// Key is the node's Ed25519 public key.
	Key ed25519.PublicKey
	// NotBefore is the first instant the certificate covers; Expires the
	// first it no longer covers. Times keep millisecond precision.
	NotBefore, Expires time.Time
}

// NodeCertificate binds a node's key to the deployment: it is signed by
// the deployment's root key. It is immutable and safe for concurrent use.
type NodeCertificate struct {
	node            string
	key             ed25519.PublicKey
	notBefore, exps uint64
	raw             []byte // body || signature
}

// IssueNode signs a node certificate with the deployment's root key.
func IssueNode(root ed25519.PrivateKey, f NodeFields) (*NodeCertificate, error) {
	if len(root) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: root key has %d bytes, not %d", ErrBadCertificate, len(root), ed25519.PrivateKeySize)
	}
	if len(f.Key) != keySize {
		return nil, fmt.Errorf("%w: node key has %d bytes, not %d", ErrBadCertificate, len(f.Key), keySize)
	}
	if err := checkName("node", f.Node, 1, maxNodeName); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	nb, ex, err := checkInterval(f.NotBefore, f.Expires)
	if err != nil {
		return nil, err
	}
	e := enc{make([]byte, 0, MaxNodeCertificateSize)}
	e.byte(recordVersion)
	e.byte(kindNode)
	e.raw(f.Key)
	e.time(nb)
	e.time(ex)
	e.name(f.Node)
	e.raw(ed25519.Sign(root, signedMessage(e.b)))
	return DecodeNodeCertificate(e.b)
}

// DecodeNodeCertificate decodes a node certificate. It accepts only the
// canonical encoding and does not check the signature (see Verify).
func DecodeNodeCertificate(b []byte) (*NodeCertificate, error) {
	d := &dec{what: "node certificate", b: b}
	if len(b) > MaxNodeCertificateSize {
		d.fail("%d bytes > %d", len(b), MaxNodeCertificateSize)
		return nil, d.err
	}
	d.header(kindNode)
	key := d.key("key")
	nb, ex := d.interval()
	node := d.name("node", 1, maxNodeName)
	d.signature()
	if d.err != nil {
		return nil, d.err
	}
	return &NodeCertificate{
		node: node, key: ed25519.PublicKey(bytes.Clone(key)),
		notBefore: nb, exps: ex, raw: bytes.Clone(b),
	}, nil
}

// Encode returns the certificate's canonical encoding.
func (c *NodeCertificate) Encode() []byte { return bytes.Clone(c.raw) }

// Node returns the node's name.
func (c *NodeCertificate) Node() string { return c.node }

// Key returns the node's public key.
func (c *NodeCertificate) Key() ed25519.PublicKey { return bytes.Clone(c.key) }

// NotBefore returns the first instant the certificate covers.
func (c *NodeCertificate) NotBefore() time.Time { return fromMillis(c.notBefore) }

// Expires returns the first instant the certificate no longer covers.
func (c *NodeCertificate) Expires() time.Time { return fromMillis(c.exps) }

// Fields returns the certificate's fields.
func (c *NodeCertificate) Fields() NodeFields {
	return NodeFields{Node: c.node, Key: c.Key(), NotBefore: c.NotBefore(), Expires: c.Expires()}
}

// Covers reports whether t is in [NotBefore, Expires).
func (c *NodeCertificate) Covers(t time.Time) bool { return covers(c.notBefore, c.exps, t) }

// Verify checks that the deployment's root key signed the certificate
// (ErrUntrusted) and that it covers t (ErrExpired).
func (c *NodeCertificate) Verify(root ed25519.PublicKey, t time.Time) error {
	if err := c.verifySignature(root); err != nil {
		return err
	}
	if !c.Covers(t) {
		return fmt.Errorf("%w: node certificate of %s covers %v to %v, not %v",
			ErrExpired, c.node, c.NotBefore(), c.Expires(), t.UTC())
	}
	return nil
}

func (c *NodeCertificate) verifySignature(root ed25519.PublicKey) error {
	body, sig := c.raw[:len(c.raw)-sigSize], c.raw[len(c.raw)-sigSize:]
	if len(root) != ed25519.PublicKeySize || !ed25519.Verify(root, signedMessage(body), sig) {
		return fmt.Errorf("%w: node certificate of %s is not signed by the root key", ErrUntrusted, c.node)
	}
	return nil
}

// Principal returns the principal of a session whose key is the node's.
func (c *NodeCertificate) Principal() Principal {
	var s commit.SessionID
	copy(s[:], c.key)
	return Principal{Session: s, Node: true}
}

// SessionFields are the fields of a session certificate.
type SessionFields struct {
	// Session is the certified session (its Ed25519 public key).
	Session commit.SessionID
	// User is the user the session acts for: "" (anonymous) or 1–128
	// characters of A-Z a-z 0-9 . _ -, so that /user/<User> is a path.
	User string
	// Roles are the user's roles: at most 32, each 1–64 characters of
	// A-Z a-z 0-9 . _ -. Issue sorts them and drops duplicates.
	Roles []string
	// NotBefore is the first instant the certificate covers and counts as
	// its issue time for revocations; Expires is the first instant it no
	// longer covers. Times keep millisecond precision.
	NotBefore, Expires time.Time
	// Audience names the deployment the certificate is for.
	Audience string
}

// SessionCertificate binds a session key to a user and roles for an
// interval. A node signs it, and it carries that node's certificate, so it
// verifies offline against the deployment's root key alone (root → node →
// session). It is immutable and safe for concurrent use.
type SessionCertificate struct {
	session         commit.SessionID
	user            string
	roles           []string
	notBefore, exps uint64
	audience        string
	node            *NodeCertificate
	raw             []byte
}

// Issue signs a session certificate with a node's key. node is that key's
// certificate; the session certificate's interval must lie inside it.
// Issue does not check node's own signature: a node issues with the
// certificate it was given.
func Issue(nodeKey ed25519.PrivateKey, node *NodeCertificate, f SessionFields) (*SessionCertificate, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: no node certificate", ErrBadCertificate)
	}
	if len(nodeKey) != ed25519.PrivateKeySize || !bytes.Equal(nodeKey.Public().(ed25519.PublicKey), node.key) {
		return nil, fmt.Errorf("%w: the key is not the key of node %s", ErrBadCertificate, node.node)
	}
	if f.Session.IsZero() {
		return nil, fmt.Errorf("%w: no session", ErrBadCertificate)
	}
	roles, err := checkFields(f)
	if err != nil {
		return nil, err
	}
	nb, ex, err := checkInterval(f.NotBefore, f.Expires)
	if err != nil {
		return nil, err
	}
	if nb < node.notBefore || ex > node.exps {
		return nil, fmt.Errorf("%w: interval %v to %v is not inside node %s's %v to %v", ErrBadCertificate,
			fromMillis(nb), fromMillis(ex), node.node, node.NotBefore(), node.Expires())
	}
	e := enc{make([]byte, 0, MaxSessionCertificateSize)}
	e.byte(recordVersion)
	e.byte(kindSession)
	e.raw(f.Session[:])
	e.time(nb)
	e.time(ex)
	e.name(f.Audience)
	e.name(f.User)
	e.byte(byte(len(roles)))
	for _, r := range roles {
		e.name(r)
	}
	e.cert(node.raw)
	e.raw(ed25519.Sign(nodeKey, signedMessage(e.b)))
	return DecodeSessionCertificate(e.b)
}

// checkFields checks a session certificate's names and returns its roles
// sorted and unique.
func checkFields(f SessionFields) ([]string, error) {
	if err := checkName("audience", f.Audience, 1, maxAudience); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if err := checkName("user", f.User, 0, MaxUserLen); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	roles := slices.Compact(slices.Sorted(slices.Values(f.Roles)))
	if len(roles) > MaxRoles {
		return nil, fmt.Errorf("%w: %d roles > %d", ErrBadCertificate, len(roles), MaxRoles)
	}
	for _, r := range roles {
		if err := checkName("role", r, 1, MaxRoleLen); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
		}
	}
	return roles, nil
}

// DecodeSessionCertificate decodes a session certificate with its node
// certificate. It accepts only the canonical encoding and checks no
// signature (see Verify).
func DecodeSessionCertificate(b []byte) (*SessionCertificate, error) {
	d := &dec{what: "session certificate", b: b}
	if len(b) > MaxSessionCertificateSize {
		d.fail("%d bytes > %d", len(b), MaxSessionCertificateSize)
		return nil, d.err
	}
	d.header(kindSession)
	c := &SessionCertificate{}
	copy(c.session[:], d.key("session"))
	c.notBefore, c.exps = d.interval()
	c.audience = d.name("audience", 1, maxAudience)
	c.user = d.name("user", 0, MaxUserLen)
	c.roles = d.roles()
	start := d.off
	nodeRaw := d.cert("issuer certificate")
	d.signature()
	if d.err != nil {
		return nil, d.err
	}
	node, err := DecodeNodeCertificate(nodeRaw)
	if err != nil {
		return nil, fmt.Errorf("%w: session certificate at byte %d: issuer: %w", ErrBadCertificate, start+2, err)
	}
	c.node, c.raw = node, bytes.Clone(b)
	return c, nil
}

func (d *dec) roles() []string {
	n := int(d.byte("role count"))
	if d.err == nil && n > MaxRoles {
		d.off--
		d.fail("%d roles > %d", n, MaxRoles)
	}
	if d.err != nil {
		return nil
	}
	roles := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		r := d.name("role", 1, MaxRoleLen)
		if d.err == nil && i > 0 && r <= roles[i-1] {
			d.fail("role %q does not sort after %q", r, roles[i-1])
		}
		roles = append(roles, r)
	}
	return roles
}

// Encode returns the certificate's canonical encoding.
func (c *SessionCertificate) Encode() []byte { return bytes.Clone(c.raw) }

// Session returns the certified session.
func (c *SessionCertificate) Session() commit.SessionID { return c.session }

// User returns the user, "" for an anonymous session.
func (c *SessionCertificate) User() string { return c.user }

// Roles returns the roles, sorted.
func (c *SessionCertificate) Roles() []string { return slices.Clone(c.roles) }

// NotBefore returns the first instant the certificate covers; it is also
// the certificate's issue time for revocations.
func (c *SessionCertificate) NotBefore() time.Time { return fromMillis(c.notBefore) }

// Expires returns the first instant the certificate no longer covers.
func (c *SessionCertificate) Expires() time.Time { return fromMillis(c.exps) }

// Audience returns the deployment the certificate is for.
func (c *SessionCertificate) Audience() string { return c.audience }

// Node returns the certificate of the node that signed this one.
func (c *SessionCertificate) Node() *NodeCertificate { return c.node }

// Issuer returns the public key of the node that signed the certificate.
func (c *SessionCertificate) Issuer() ed25519.PublicKey { return c.node.Key() }

// Fields returns the certificate's fields.
func (c *SessionCertificate) Fields() SessionFields {
	return SessionFields{
		Session: c.session, User: c.user, Roles: c.Roles(),
		NotBefore: c.NotBefore(), Expires: c.Expires(), Audience: c.audience,
	}
}

// Covers reports whether t is in [NotBefore, Expires).
func (c *SessionCertificate) Covers(t time.Time) bool { return covers(c.notBefore, c.exps, t) }

// Principal returns the principal the certificate makes of its session.
// It trusts the certificate: call Verify first.
func (c *SessionCertificate) Principal() Principal {
	return Principal{Session: c.session, User: c.user, Roles: c.Roles()}
}

// Verify checks the chain root → node → session (ErrUntrusted): the root
// key signed the node certificate, the node key signed this one, this
// one's interval lies inside the node's, and it is for audience. Then it
// checks that the certificate covers t (ErrExpired), which the node
// certificate then does too.
//
// Revocations are not part of Verify: see Revocation.Covers.
func (c *SessionCertificate) Verify(root ed25519.PublicKey, audience string, t time.Time) error {
	if c.audience != audience {
		return fmt.Errorf("%w: session certificate of %s is for audience %q, not %q", ErrUntrusted, c.session, c.audience, audience)
	}
	if err := c.node.verifySignature(root); err != nil {
		return err
	}
	body, sig := c.raw[:len(c.raw)-sigSize], c.raw[len(c.raw)-sigSize:]
	if !ed25519.Verify(c.node.key, signedMessage(body), sig) {
		return fmt.Errorf("%w: session certificate of %s is not signed by node %s", ErrUntrusted, c.session, c.node.node)
	}
	if c.notBefore < c.node.notBefore || c.exps > c.node.exps {
		return fmt.Errorf("%w: session certificate of %s outlives node %s's certificate", ErrUntrusted, c.session, c.node.node)
	}
	if !c.Covers(t) {
		return fmt.Errorf("%w: session certificate of %s covers %v to %v, not %v",
			ErrExpired, c.session, c.NotBefore(), c.Expires(), t.UTC())
	}
	return nil
}
