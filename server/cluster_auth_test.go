package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/transport"
)

// TestRevocationPropagatesToPeersWithin1s: three nodes of one deployment
// (one root key, a node certificate each) replicate with each other as
// nodes. A user who logged in on one node works on the others; revoked on
// the first, the user's next request to the third is refused within a
// second, and a commit it made before the revocation stays on every node.
func TestRevocationPropagatesToPeersWithin1s(t *testing.T) {
	idA, root, err := server.NewIdentity("cluster")
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *server.Identity { return nodeIdentity(t, idA, root, name) }
	rules := authz.OpenRules()
	a := newAuthRig(t, rules, func(o *server.AuthOptions) { o.Identity = idA })
	start := func(id *server.Identity) *running {
		db := dbtest.OpenDB(t, nil)
		return serve(t, db, &server.Options{RateLimit: -1, Peers: []string{a.run.url},
			Auth: &server.AuthOptions{Identity: id, Rules: rules}}, "")
	}
	b := start(node("b"))
	c := start(node("c"))

	alice := a.client().login("alice")
	kept := alice.put("/data/x", "k", map[string]item.Value{"v": item.Int(1)})
	if _, err := alice.sync("/data/x"); err != nil {
		t.Fatal(err)
	}
	// Alice's certificate and commit reach b and c through replication.
	for _, n := range []*running{b, c} {
		eventually(t, 10*time.Second, "alice known on a peer", func() bool {
			st, _, _ := alice.on(n).do("GET", "/v1/auth/whoami", nil)
			return st == http.StatusOK
		})
		eventually(t, 10*time.Second, "alice's commit on a peer", func() bool {
			rp, err := n.db.LookupRepo("/data/x")
			return err == nil && rp.Has(kept.ID())
		})
	}

	if err := a.acc.RevokeSession(alice.sid); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	onC := alice.on(c)
	for {
		st, _, _ := onC.do("GET", "/v1/auth/whoami", nil)
		if st == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("the revoked session still gets %d from a peer a second later", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation reached the third node in %v", time.Since(revoked))
	for _, n := range []*running{a.run, b, c} {
		rp, err := n.db.LookupRepo("/data/x")
		if err != nil || !rp.Has(kept.ID()) {
			t.Fatalf("a node lost the commit made before the revocation: %v", err)
		}
	}
}

// TestNodeCertificateChecked: a request that claims to be a node's must
// carry a node certificate of this deployment's root, valid now, for the
// key that signed it; otherwise it is refused, and the relayed commit of
// an unknown author with it. A node whose rules differ (or that names
// none) is refused with 403.
func TestNodeCertificateChecked(t *testing.T) {
	rig := newAuthRig(t, authz.DefaultRules(), nil)
	_, otherRoot, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	issue := func(root ed25519.PrivateKey, key ed25519.PrivateKey, from, to time.Time) string {
		nc, err := authz.IssueNode(root, authz.NodeFields{Node: "n", Key: key.Public().(ed25519.PublicKey), NotBefore: from, Expires: to})
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(nc.Encode())
	}
	c := rig.client()
	body := syncBody(t, c, "/data/x")
	rules := authz.DefaultRules().Fingerprint()
	send := func(cert string) int {
		req, _ := http.NewRequest("POST", rig.run.url+"/v1/sync", bytes.NewReader(body))
		req.Header.Set(authz.AuthHeaderName, c.header("POST", "/v1/sync", body))
		req.Header.Set(goatdb.NodeCertHeader, cert)
		req.Header.Set(transport.NodeRulesHeader, rules)
		req.Header.Set("Content-Type", goatdb.SyncContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	_, other, _ := ed25519.GenerateKey(nil)
	for name, cert := range map[string]string{
		"another root":      issue(otherRoot, c.key, now.Add(-time.Hour), now.Add(time.Hour)),
		"another key":       issue(rig.rootKey(t), other, now.Add(-time.Hour), now.Add(time.Hour)),
		"expired":           issue(rig.rootKey(t), c.key, now.Add(-2*time.Hour), now.Add(-time.Hour)),
		"not base64":        "%%%",
		"not a certificate": base64.StdEncoding.EncodeToString([]byte("nope")),
	} {
		if st := send(cert); st != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, st)
		}
	}
	if st := send(issue(rig.rootKey(t), c.key, now.Add(-time.Hour), now.Add(time.Hour))); st != http.StatusOK {
		t.Fatalf("a valid node certificate: %d", st)
	}
	// A node that enforces other rules is refused, and one that names none.
	for _, other := range []string{authz.OpenRules().Fingerprint(), ""} {
		rules = other
		if st := send(issue(rig.rootKey(t), c.key, now.Add(-time.Hour), now.Add(time.Hour))); st != http.StatusForbidden {
			t.Fatalf("a node with rules %q: %d, want 403", other, st)
		}
	}
}

// rootKey returns the root key of a rig that made its own identity.
func (r *authRig) rootKey(t *testing.T) ed25519.PrivateKey {
	if r.root == nil {
		t.Fatal("the rig does not hold its root key")
	}
	return r.root
}

// TestOpenIdentitySharedRoot: a second data directory given the first's
// audience and root key is a node of the same deployment, with a key and
// certificate of its own, even if it had started once on its own.
func TestOpenIdentitySharedRoot(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := server.OpenIdentity(dirA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.OpenIdentity(dirB); err != nil { // a deployment of its own first
		t.Fatal(err)
	}
	for _, f := range []string{"audience", "root.key"} {
		b, err := os.ReadFile(filepath.Join(dirA, "auth", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, "auth", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := server.OpenIdentity(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if b.Audience != a.Audience || !b.Root.Equal(a.Root) || b.NodeKey.Equal(a.NodeKey) {
		t.Fatalf("b: audience %q root %x; a: %q %x", b.Audience, b.Root, a.Audience, a.Root)
	}
	if err := b.Node.Verify(a.Root, time.Now()); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dirB, "auth", "node.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("node.key: %v %v", info, err)
	}
}

// TestPeersRefuseDifferentHistory: a node that keeps another length of
// history (gc.Policy) is refused by its peer with 403 naming the
// difference, since each would refuse as below its horizon commits the
// other still accepts; a node configured alike replicates.
func TestPeersRefuseDifferentHistory(t *testing.T) {
	idA, root, err := server.NewIdentity("cluster")
	if err != nil {
		t.Fatal(err)
	}
	rules := authz.OpenRules()
	a := newAuthRig(t, rules, func(o *server.AuthOptions) { o.Identity = idA })
	start := func(name string, policy gc.Policy) *running {
		_, key, _ := ed25519.GenerateKey(nil)
		now := time.Now()
		nc, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
			NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		id := &server.Identity{Audience: idA.Audience, Root: idA.Root, NodeKey: key, Node: nc}
		return serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1, Peers: []string{a.run.url}, GC: policy,
			Auth: &server.AuthOptions{Identity: id, Rules: rules}}, "")
	}
	a.client().login("alice") // something in /sys to replicate
	other := start("longer", gc.Policy{CertLifetime: 60 * 24 * time.Hour})
	alike := start("alike", gc.Policy{})
	ms := httptest.NewServer(other.srv.MetricsHandler())
	defer ms.Close()
	eventually(t, 10*time.Second, "the longer-history node's replication refused", func() bool {
		return scrape(t, ms.URL).sum("goatdb_peer_sync_errors_total") > 0
	})
	eventually(t, 10*time.Second, "the alike node replicates /sys", func() bool {
		_, err := alike.db.LookupRepo("/sys/sessions")
		return err == nil
	})
	if _, err := other.db.LookupRepo("/sys/sessions"); err == nil {
		t.Error("the node with another history length replicated /sys/sessions")
	}
}
