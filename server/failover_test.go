package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// TestClientFailover: a client syncing with two replicating nodes as a
// failover group writes through the first; when it stops, the client
// moves to the second and keeps writing; the first, restarted on its
// address, converges with the others. DB.Sync with a list of URLs skips
// an unreachable first node.
func TestClientFailover(t *testing.T) {
	db1, db2 := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	fast := &goatdb.SyncOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	n2 := serve(t, db2, &server.Options{RateLimit: -1}, "")
	n1 := serve(t, db1, &server.Options{RateLimit: -1, Peers: []string{n2.url}, PeerSync: fast}, "")

	cli := dbtest.OpenDB(t, nil)
	opts := *fast
	opts.Failover = true
	s, err := cli.StartSync([]string{n1.url, n2.url}, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	write := func(i int) string {
		path := fmt.Sprintf("/data/fo/k%d", i)
		mustPut(t, cli, path, goatdb.Fields{"v": i})
		return path
	}
	first := write(0)
	eventually(t, 10*time.Second, "the write on node 1", func() bool { _, err := db1.Get(first); return err == nil })
	if got := s.Status()[0].URL; got != n1.url {
		t.Fatalf("syncing with %s, want the first node %s", got, n1.url)
	}

	addr1 := n1.addr
	if err := n1.stop(); err != nil {
		t.Fatal(err)
	}
	var during []string
	for i := 1; i <= 5; i++ {
		during = append(during, write(i))
	}
	for _, p := range during {
		eventually(t, 15*time.Second, "a write after node 1 stopped, on node 2", func() bool { _, err := db2.Get(p); return err == nil })
	}
	if got := s.Status()[0].URL; got != n2.url {
		t.Fatalf("after node 1 stopped, syncing with %s, want %s", got, n2.url)
	}

	serve(t, db1, &server.Options{RateLimit: -1, Peers: []string{n2.url}, PeerSync: fast}, addr1)
	for _, p := range during {
		eventually(t, 15*time.Second, "node 1 converges after its restart", func() bool { _, err := db1.Get(p); return err == nil })
	}

	// One-shot sync with a list whose first node is down.
	other := dbtest.OpenDB(t, nil)
	mustPut(t, other, "/data/fo/once", goatdb.Fields{"v": 1})
	st, err := other.Sync(context.Background(), "http://127.0.0.1:1,"+n2.url, "/data/fo")
	if err != nil || st.CommitsSent == 0 {
		t.Fatalf("sync with a dead first node: %+v %v", st, err)
	}
	if _, err := db2.Get("/data/fo/once"); err != nil {
		t.Fatal(err)
	}
}
