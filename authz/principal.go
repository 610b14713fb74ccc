package authz

import (
	"crypto/ed25519"
	"slices"

	"github.com/goatdb/goatdb/commit"
)

// Principal is who a request or a commit acts for, as rules see it. A
// server builds it from what it verified: a session certificate
// (SessionCertificate.Principal), a node certificate
// (NodeCertificate.Principal) or the deployment's root key
// (RootPrincipal). A session with no certificate is anonymous: a Principal
// with only Session set.
type Principal struct {
	// Session is the session's Ed25519 public key.
	Session commit.SessionID
	// User is the user the session is certified for; "" is anonymous.
	User string
	// Roles are the user's roles, as certified.
	Roles []string
	// Node is true for a server node of the deployment. Nodes replicate
	// everything, so rules are not consulted for them.
	Node bool
	// Root is true for the deployment's root key. Rules are not consulted
	// for it.
	Root bool
}

// HasRole reports whether p holds role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// trusted reports whether p bypasses every rule.
func (p Principal) trusted() bool { return p.Node || p.Root }

// RootPrincipal returns the principal of a session whose key is the
// deployment's root key.
func RootPrincipal(root ed25519.PublicKey) Principal {
	var s commit.SessionID
	copy(s[:], root)
	return Principal{Session: s, Root: true}
}
