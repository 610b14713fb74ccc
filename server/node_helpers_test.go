package server_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/server"
)

// nodeIdentity returns the identity of another node named name of the
// deployment of base, whose root key is root: a node key of its own and
// a certificate from root valid from an hour ago for a day.
func nodeIdentity(t testing.TB, base *server.Identity, root ed25519.PrivateKey, name string) *server.Identity {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	nc, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return &server.Identity{Audience: base.Audience, Root: base.Root, NodeKey: key, Node: nc}
}
