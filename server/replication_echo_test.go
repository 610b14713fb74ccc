package server_test

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// peeredPair starts two servers that list each other as peers, as nodes
// of one deployment when nodes is set, and returns them.
func peeredPair(t testing.TB, nodes bool) (a, b *running) {
	t.Helper()
	addrs := make([]string, 2)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	fast := &goatdb.SyncOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	var auth []*server.AuthOptions
	if nodes {
		idA, root, err := server.NewIdentity("pair")
		if err != nil {
			t.Fatal(err)
		}
		rules := authz.OpenRules()
		for _, name := range []string{"a", "b"} {
			_, key, _ := ed25519.GenerateKey(nil)
			now := time.Now()
			nc, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
				NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			auth = append(auth, &server.AuthOptions{Rules: rules,
				Identity: &server.Identity{Audience: idA.Audience, Root: idA.Root, NodeKey: key, Node: nc}})
		}
	}
	start := func(i int) *running {
		o := &server.Options{RateLimit: -1, Peers: []string{"http://" + addrs[1-i]}, PeerSync: fast}
		if nodes {
			o.Auth = auth[i]
		}
		var dbo *goatdb.Options
		if testing.Verbose() && os.Getenv("ECHO_DEBUG") != "" {
			dbo = &goatdb.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)}
			o.Logger = dbo.Logger
		}
		return serve(t, dbtest.OpenDB(t, dbo), o, addrs[i])
	}
	return start(0), start(1)
}

// syncTotals reads a server's sync counters in-process: commits
// received in requests and sent in answers, and wire bytes both ways.
func syncTotals(t testing.TB, r *running) (in, out, bytes float64) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "goatdb_sync_commits_received_total":
			in = v
		case "goatdb_sync_commits_sent_total":
			out = v
		case "goatdb_sync_received_bytes_total", "goatdb_sync_sent_bytes_total":
			bytes += v
		}
	}
	return in, out, bytes
}

// flow is what crossed between two servers a and b: commits from a to b
// (a's pushes and b's fetches), from b to a, and wire bytes both ways.
type flow struct{ aToB, bToA, bytes float64 }

func (f flow) minus(g flow) flow { return flow{f.aToB - g.aToB, f.bToA - g.bToA, f.bytes - g.bytes} }

// quiet waits until neither server's sync counters move for a while, and
// returns them.
func quiet(t testing.TB, a, b *running) flow {
	t.Helper()
	read := func() flow {
		aIn, aOut, aBytes := syncTotals(t, a)
		bIn, bOut, bBytes := syncTotals(t, b)
		// a's pushes are b's requests' commits, b's fetches a's answers'.
		return flow{aToB: bIn + aOut, bToA: aIn + bOut, bytes: aBytes + bBytes}
	}
	f := read()
	for still := 0; still < 6; {
		time.Sleep(50 * time.Millisecond)
		g := read()
		if g == f {
			still++
			continue
		}
		f, still = g, 0
	}
	return f
}

// TestReplicationTransfersPerWrite: between two servers that list each
// other as peers, a commit written on one crosses at most twice. Before,
// it crossed 4 to 6 times: the peer it was pushed to fetched it too, up
// to 8 times in one sync (its own copy, still on its way to the log, was
// not in its set yet, so the writer kept sending it), and pushed it back.
// What is left is a second transfer per write: the writer pushes the
// commit while the peer, told by the writer's event stream, fetches it
// (A to B twice), or the peer's next sync pushes back, from its resume
// point, the commit its server stored from the writer's push (B to A).
func TestReplicationTransfersPerWrite(t *testing.T) {
	for _, nodes := range []bool{false, true} {
		t.Run(fmt.Sprintf("nodes=%v", nodes), func(t *testing.T) {
			a, b := peeredPair(t, nodes)
			mustPut(t, a.db, "/data/echo/warm", goatdb.Fields{"v": 0.0})
			eventually(t, 10*time.Second, "the first write on B", func() bool {
				_, err := b.db.Get("/data/echo/warm")
				return err == nil
			})
			f0 := quiet(t, a, b)
			const writes = 10
			for i := range writes {
				key := fmt.Sprintf("/data/echo/k%d", i)
				mustPut(t, a.db, key, goatdb.Fields{"v": float64(i)})
				eventually(t, 10*time.Second, "the write on B", func() bool {
					_, err := b.db.Get(key)
					return err == nil
				})
				quiet(t, a, b)
			}
			f := quiet(t, a, b).minus(f0)
			t.Logf("%d writes on A: %v commits A to B, %v B to A, %v wire bytes (%.0f per write)",
				writes, f.aToB, f.bToA, f.bytes, f.bytes/writes)
			if got := (f.aToB + f.bToA) / writes; got > 2.2 {
				t.Errorf("%.2f commit transfers per replicated write, want at most 2", got)
			}
		})
	}
}
