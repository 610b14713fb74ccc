package authz_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

// key returns a deterministic key named by b.
func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func sessionOf(k ed25519.PrivateKey) commit.SessionID {
	var s commit.SessionID
	copy(s[:], k.Public().(ed25519.PublicKey))
	return s
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

var (
	rootKey    = key(1)
	nodeKey    = key(2)
	sessionKey = key(3)
	otherKey   = key(4)

	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

const audience = "example.com"

// chain issues a node certificate for nodeKey valid for a year from t0,
// and a session certificate for sessionKey valid for 30 days from t0.
func chain(t testing.TB, user string, roles ...string) (*authz.NodeCertificate, *authz.SessionCertificate) {
	t.Helper()
	node, err := authz.IssueNode(rootKey, authz.NodeFields{
		Node: "node-1", Key: pub(nodeKey), NotBefore: t0, Expires: t0.AddDate(1, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authz.Issue(nodeKey, node, authz.SessionFields{
		Session: sessionOf(sessionKey), User: user, Roles: roles,
		NotBefore: t0, Expires: t0.AddDate(0, 0, 30), Audience: audience,
	})
	if err != nil {
		t.Fatal(err)
	}
	return node, cert
}
