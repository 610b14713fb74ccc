package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
)

// TestAckReplicas: with AckReplicas 1, a client's sync that brought a
// commit is answered only once a peer stored it (so one holds it the
// moment the answer arrives); with every peer down the answer is 503
// after AckTimeout, naming how many stored it, and the commit is kept
// here for the retry.
func TestAckReplicas(t *testing.T) {
	idA, root, err := server.NewIdentity("ack")
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *server.Identity { return nodeIdentity(t, idA, root, name) }
	rules := authz.OpenRules()
	peer := func(name string) *running {
		return serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1,
			Auth: &server.AuthOptions{Identity: node(name), Rules: rules}}, "")
	}
	b, c := peer("b"), peer("c")
	if _, err := server.New(dbtest.OpenDB(t, nil), &server.Options{AckReplicas: 1, Peers: []string{b.url}}); err == nil {
		t.Fatal("AckReplicas without Auth was accepted")
	}
	a := newAuthRigWith(t, rules, func(o *server.AuthOptions) { o.Identity = idA },
		&server.Options{RateLimit: -1, Peers: []string{b.url, c.url}, AckReplicas: 1, AckTimeout: 2 * time.Second})

	alice := a.client().login("alice")
	for i := range 5 {
		cm := alice.put("/data/acked", "k", map[string]item.Value{"v": item.Int(int64(i))})
		if _, err := alice.sync("/data/acked"); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
		held := 0
		for _, n := range []*running{b, c} {
			if r, err := n.db.LookupRepo("/data/acked"); err == nil && r.Has(cm.ID()) {
				held++
			}
		}
		if held == 0 {
			t.Fatalf("write %d acknowledged before any peer stored it", i)
		}
	}

	b.stop()
	c.stop()
	cm := alice.put("/data/acked", "k", map[string]item.Value{"v": item.Int(99)})
	began := time.Now()
	_, err = alice.sync("/data/acked")
	if err == nil || !strings.Contains(err.Error(), "503") && !strings.Contains(err.Error(), "stored by 0 of the 1") {
		t.Fatalf("sync with every peer down: %v, want 503 naming the replicas", err)
	}
	if d := time.Since(began); d < 2*time.Second || d > 10*time.Second {
		t.Fatalf("the refusal came after %v, want about the 2 s AckTimeout", d)
	}
	if r, err := a.db.LookupRepo("/data/acked"); err != nil || !r.Has(cm.ID()) {
		t.Fatalf("the unreplicated commit is not kept on the node (%v)", err)
	}
}
