package authz_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
)

func TestSessionCertificateVerify(t *testing.T) {
	_, cert := chain(t, "alice", "team", "admin", "team")
	if got := cert.Roles(); !slices.Equal(got, []string{"admin", "team"}) {
		t.Errorf("roles %q, want sorted and unique", got)
	}
	otherRoot := key(9)
	foreignNode, err := authz.IssueNode(otherRoot, authz.NodeFields{
		Node: "node-1", Key: pub(nodeKey), NotBefore: t0, Expires: t0.AddDate(1, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := authz.Issue(nodeKey, foreignNode, cert.Fields())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cert     *authz.SessionCertificate
		root     []byte
		audience string
		at       time.Time
		want     error
	}{
		{"valid at NotBefore", cert, pub(rootKey), audience, t0, nil},
		{"valid just before Expires", cert, pub(rootKey), audience, cert.Expires().Add(-time.Millisecond), nil},
		{"not yet valid", cert, pub(rootKey), audience, t0.Add(-time.Millisecond), authz.ErrExpired},
		{"expired", cert, pub(rootKey), audience, cert.Expires(), authz.ErrExpired},
		{"another root", cert, pub(otherRoot), audience, t0, authz.ErrUntrusted},
		{"another audience", cert, pub(rootKey), "other.example", t0, authz.ErrUntrusted},
		{"node of another root", foreign, pub(rootKey), audience, t0, authz.ErrUntrusted},
		{"short root key", cert, pub(rootKey)[:31], audience, t0, authz.ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cert.Verify(tt.root, tt.audience, tt.at)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCertificateTampered flips every bit of a session certificate: each
// flip either fails to decode or fails to verify.
func TestCertificateTampered(t *testing.T) {
	_, cert := chain(t, "alice", "team")
	b := cert.Encode()
	for i := range b {
		for bit := range 8 {
			m := bytes.Clone(b)
			m[i] ^= 1 << bit
			c, err := authz.DecodeSessionCertificate(m)
			if err != nil {
				if !errors.Is(err, authz.ErrBadCertificate) {
					t.Fatalf("byte %d bit %d: decode error %v does not match ErrBadCertificate", i, bit, err)
				}
				continue
			}
			if err := c.Verify(pub(rootKey), audience, t0.Add(time.Hour)); err == nil {
				t.Fatalf("byte %d bit %d: tampered certificate verifies", i, bit)
			}
		}
	}
}

func TestIssueRefuses(t *testing.T) {
	node, cert := chain(t, "alice")
	ok := cert.Fields()
	tests := []struct {
		name   string
		key    []byte
		change func(*authz.SessionFields)
		want   string
	}{
		{"user too long", nodeKey, func(f *authz.SessionFields) { f.User = strings.Repeat("u", authz.MaxUserLen+1) }, "user"},
		{"user with a space", nodeKey, func(f *authz.SessionFields) { f.User = "a b" }, "user"},
		{"user ..", nodeKey, func(f *authz.SessionFields) { f.User = ".." }, "user"},
		{"too many roles", nodeKey, func(f *authz.SessionFields) {
			f.Roles = nil
			for i := range authz.MaxRoles + 1 {
				f.Roles = append(f.Roles, "r"+strings.Repeat("x", i))
			}
		}, "roles"},
		{"role too long", nodeKey, func(f *authz.SessionFields) { f.Roles = []string{strings.Repeat("r", authz.MaxRoleLen+1)} }, "role"},
		{"empty role", nodeKey, func(f *authz.SessionFields) { f.Roles = []string{""} }, "role"},
		{"no audience", nodeKey, func(f *authz.SessionFields) { f.Audience = "" }, "audience"},
		{"no session", nodeKey, func(f *authz.SessionFields) { f.Session = [32]byte{} }, "session"},
		{"empty interval", nodeKey, func(f *authz.SessionFields) { f.Expires = f.NotBefore }, "not before"},
		{"before 1970", nodeKey, func(f *authz.SessionFields) { f.NotBefore = time.Unix(-1, 0) }, "1970"},
		{"outlives the node", nodeKey, func(f *authz.SessionFields) { f.Expires = node.Expires().Add(time.Millisecond) }, "inside"},
		{"starts before the node", nodeKey, func(f *authz.SessionFields) { f.NotBefore = node.NotBefore().Add(-time.Millisecond) }, "inside"},
		{"key of another node", otherKey, func(*authz.SessionFields) {}, "not the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			f.Roles = slices.Clone(ok.Roles)
			tt.change(&f)
			_, err := authz.Issue(tt.key, node, f)
			if !errors.Is(err, authz.ErrBadCertificate) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Issue = %v, want ErrBadCertificate mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCertificateLargest checks MaxSessionCertificateSize against the
// largest certificate Issue makes, and that it decodes.
func TestCertificateLargest(t *testing.T) {
	node, err := authz.IssueNode(rootKey, authz.NodeFields{
		Node: strings.Repeat("n", 128), Key: pub(nodeKey), NotBefore: t0, Expires: t0.AddDate(1, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(node.Encode()); n != authz.MaxNodeCertificateSize {
		t.Errorf("largest node certificate has %d bytes, MaxNodeCertificateSize %d", n, authz.MaxNodeCertificateSize)
	}
	f := authz.SessionFields{
		Session: sessionOf(sessionKey), User: strings.Repeat("u", authz.MaxUserLen),
		NotBefore: t0, Expires: t0.Add(time.Hour), Audience: strings.Repeat("a", 128),
	}
	for i := range authz.MaxRoles {
		f.Roles = append(f.Roles, string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"[i])+strings.Repeat("r", authz.MaxRoleLen-1))
	}
	cert, err := authz.Issue(nodeKey, node, f)
	if err != nil {
		t.Fatal(err)
	}
	b := cert.Encode()
	if len(b) != authz.MaxSessionCertificateSize {
		t.Errorf("largest session certificate has %d bytes, MaxSessionCertificateSize %d", len(b), authz.MaxSessionCertificateSize)
	}
	if _, err := authz.DecodeSessionCertificate(b); err != nil {
		t.Fatal(err)
	}
	if _, err := authz.DecodeSessionCertificate(append(b, 0)); !errors.Is(err, authz.ErrBadCertificate) {
		t.Fatalf("one byte over the bound: %v", err)
	}
}

// TestDecodeRefusesNonCanonical builds encodings by hand, each breaking
// one rule of the format, and checks that the error says which.
func TestDecodeRefusesNonCanonical(t *testing.T) {
	node, cert := chain(t, "bob", "a", "b")
	good := cert.Encode()
	// Offsets in good: version 0, kind 1, session 2, notBefore 34,
	// expires 42, audience 50 (1 + 11 bytes), user 62 (1 + 3), roles 66.
	const nb, ex, aud, user, roles = 34, 42, 50, 62, 66
	set := func(off int, v ...byte) []byte { b := bytes.Clone(good); copy(b[off:], v); return b }
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "version"},
		{"version 2", set(0, 2), "version 2"},
		{"node kind", set(1, 1), "kind 1"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing"},
		{"truncated", good[:len(good)-1], "signature"},
		{"time after MaxTime", set(nb, 0x40, 0, 0, 0, 0, 0, 0, 1), "MaxTime"},
		{"empty interval", set(ex, good[nb:nb+8]...), "not before"},
		{"audience length 0", set(aud, 0), "audience"},
		{"audience byte", set(aud+1, '/'), "audience"},
		{"user byte", set(user+1, 0xff), "user"},
		{"roles unsorted", set(roles+1, 1, 'b', 1, 'a'), "sort"},
		{"roles repeated", set(roles+1, 1, 'a', 1, 'a'), "sort"},
		{"33 roles", set(roles, authz.MaxRoles+1), "roles"},
		{"issuer length too big", set(roles+5, 0xff, 0xff), "issuer certificate"},
		{"issuer not a node certificate", set(roles+7+1, 2), "issuer"},
		{"oversized", make([]byte, authz.MaxSessionCertificateSize+1), "bytes >"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authz.DecodeSessionCertificate(tt.b)
			if !errors.Is(err, authz.ErrBadCertificate) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode = %v, want ErrBadCertificate mentioning %q", err, tt.want)
			}
		})
	}
	// Each decoder refuses the other kinds.
	if _, err := authz.DecodeNodeCertificate(good); !errors.Is(err, authz.ErrBadCertificate) {
		t.Errorf("a session certificate decodes as a node certificate: %v", err)
	}
	if _, err := authz.DecodeRevocation(node.Encode()); !errors.Is(err, authz.ErrBadCertificate) {
		t.Errorf("a node certificate decodes as a revocation: %v", err)
	}
}

func TestCertificatePrincipal(t *testing.T) {
	node, cert := chain(t, "alice", "team")
	p := cert.Principal()
	if p.Session != sessionOf(sessionKey) || p.User != "alice" || !p.HasRole("team") || p.HasRole("admin") || p.Node || p.Root {
		t.Errorf("session principal %+v", p)
	}
	if p := node.Principal(); !p.Node || p.Root || p.Session != sessionOf(nodeKey) {
		t.Errorf("node principal %+v", p)
	}
	if p := authz.RootPrincipal(pub(rootKey)); !p.Root || p.Session != sessionOf(rootKey) {
		t.Errorf("root principal %+v", p)
	}
	if err := node.Verify(pub(rootKey), t0); err != nil {
		t.Error(err)
	}
	if err := node.Verify(pub(otherKey), t0); !errors.Is(err, authz.ErrUntrusted) {
		t.Errorf("node certificate under another root: %v", err)
	}
}

func TestRevocationCovers(t *testing.T) {
	node, cert := chain(t, "alice") // issued at t0
	revokedAt := t0.Add(time.Hour)
	type fields = authz.RevocationFields
	tests := []struct {
		name     string
		f        fields
		received time.Time
		want     bool
	}{
		{"session, received after", fields{Session: cert.Session(), RevokedAt: revokedAt, NotBeforeIssued: revokedAt}, revokedAt, true},
		{"session, received before", fields{Session: cert.Session(), RevokedAt: revokedAt, NotBeforeIssued: revokedAt}, revokedAt.Add(-time.Millisecond), false},
		{"other session", fields{Session: sessionOf(otherKey), RevokedAt: revokedAt, NotBeforeIssued: revokedAt}, revokedAt, false},
		{"session, certificate issued later", fields{Session: cert.Session(), RevokedAt: revokedAt, NotBeforeIssued: t0}, revokedAt, false},
		{"session for good", fields{Session: cert.Session(), RevokedAt: t0, NotBeforeIssued: authz.MaxTime}, revokedAt, true},
		{"user", fields{User: "alice", RevokedAt: revokedAt, NotBeforeIssued: revokedAt}, revokedAt.Add(time.Hour), true},
		{"other user", fields{User: "bob", RevokedAt: revokedAt, NotBeforeIssued: revokedAt}, revokedAt, false},
		{"user, certificate issued after", fields{User: "alice", RevokedAt: revokedAt, NotBeforeIssued: t0}, revokedAt, false},
		{"other audience", fields{User: "alice", RevokedAt: revokedAt, NotBeforeIssued: revokedAt, Audience: "other"}, revokedAt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.f.Audience == "" {
				tt.f.Audience = audience
			}
			r, err := authz.Revoke(nodeKey, node, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(pub(rootKey), tt.f.Audience); err != nil {
				t.Fatal(err)
			}
			if got := r.Covers(cert, tt.received); got != tt.want {
				t.Fatalf("Covers = %v, want %v", got, tt.want)
			}
			back, err := authz.DecodeRevocation(r.Encode())
			if err != nil || !bytes.Equal(back.Encode(), r.Encode()) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestRevocationVerify(t *testing.T) {
	node, _ := chain(t, "alice")
	f := authz.RevocationFields{User: "alice", RevokedAt: t0.Add(time.Hour), NotBeforeIssued: t0.Add(time.Hour), Audience: audience}
	byRoot, err := authz.Revoke(rootKey, nil, f)
	if err != nil {
		t.Fatal(err)
	}
	late := f
	late.RevokedAt = node.Expires()
	byExpiredNode, err := authz.Revoke(nodeKey, node, late)
	if err != nil {
		t.Fatal(err)
	}
	byStranger, err := authz.Revoke(otherKey, nil, f)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		r        *authz.Revocation
		audience string
		want     error
	}{
		{"root", byRoot, audience, nil},
		{"other audience", byRoot, "other", authz.ErrUntrusted},
		{"node past its certificate", byExpiredNode, audience, authz.ErrUntrusted},
		{"key that is not the root", byStranger, audience, authz.ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Verify(pub(rootKey), tt.audience)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []authz.RevocationFields{
		{RevokedAt: t0, Audience: audience},                                          // no target
		{User: "a", Session: sessionOf(otherKey), RevokedAt: t0, Audience: audience}, // two
		{User: "a b", RevokedAt: t0, Audience: audience},
	} {
		if _, err := authz.Revoke(rootKey, nil, bad); !errors.Is(err, authz.ErrBadCertificate) {
			t.Errorf("Revoke(%+v) = %v, want ErrBadCertificate", bad, err)
		}
	}
	if _, err := authz.Revoke(otherKey, node, f); !errors.Is(err, authz.ErrBadCertificate) {
		t.Errorf("Revoke with a key that is not the node's: %v", err)
	}
}
