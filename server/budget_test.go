package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// bomb is a sync request of a few kilobytes that decompresses to size
// bytes (of zeros: not a valid payload, but that is found only once it is
// decompressed). declared says whether its frame declares its size.
func bomb(t testing.TB, size int, declared bool) []byte {
	t.Helper()
	msg := []byte{1, 1, 1} // version 1, a request, zstd
	if declared {
		enc, _ := zstd.NewWriter(nil)
		return enc.EncodeAll(make([]byte, size), msg)
	}
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	zero := make([]byte, 1<<20)
	for i := 0; i < size; i += len(zero) {
		w.Write(zero)
		w.Flush() // no single block: the frame cannot declare its size
	}
	w.Close()
	return append(msg, buf.Bytes()...)
}

// postSync sends a raw sync body and returns the status, the headers and
// whether the server closes the connection.
func postSync(t testing.TB, url string, body []byte) (int, http.Header, bool) {
	t.Helper()
	resp, err := http.Post(url+"/v1/sync", goatdb.SyncContentType, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil, false
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header, resp.Close
}

// TestMemoryBudgetRefusesBombs: a request of a few kilobytes whose frame
// declares more than one client may hold of the memory budget is answered
// 413 before anything is decompressed; one
// that declares no size is decompressed only up to
// syncproto.UndeclaredBound and refused with 413; within the budget it is
// decoded (and refused as malformed); the budget is all given back after.
func TestMemoryBudgetRefusesBombs(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MemoryBudget: 16 << 20, RateLimit: -1}, "")
	b := bomb(t, 32<<20, true)
	if len(b) > 64<<10 {
		t.Fatalf("the bomb is %d bytes", len(b))
	}
	if st, h, _ := postSync(t, srv.url, b); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 32 MiB bomb under a 16 MiB budget: %d %v", st, h)
	}
	// A frame that declares no size is decompressed only up to
	// syncproto.UndeclaredBound bytes, and refused as too large.
	if st, _, _ := postSync(t, srv.url, bomb(t, 32<<20, false)); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 32 MiB bomb that declares no size: %d", st)
	}
	if st, _, _ := postSync(t, srv.url, bomb(t, 2<<20, true)); st != http.StatusBadRequest {
		t.Fatalf("a 2 MiB bomb within a client's share of the budget: %d, want 400 (decoded, malformed)", st)
	}
	m := scrape(t, srv.url)
	if m.get("goatdb_memory_budget_refused_total") != 0 || m.get("goatdb_memory_budget_in_use_bytes") != 0 {
		t.Fatalf("refused %v, in use %v", m.get("goatdb_memory_budget_refused_total"), m.get("goatdb_memory_budget_in_use_bytes"))
	}
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/t/x", goatdb.Fields{"v": 1})
	mustSync(t, cli, srv.url, "/data/t")
}

// TestMemoryBudgetHeldUntilAnswered: a request in flight holds its share
// of the budget (its body and payload) until it is answered; meanwhile a
// second one that does not fit is answered 503, and once the first is done
// the second goes through.
func TestMemoryBudgetHeldUntilAnswered(t *testing.T) {
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": 1})
	req := pushRequest(t, cli, "/data/p")
	// A client's share (a quarter) has room for one request's body,
	// payload and answer, not for two.
	budget := int64(4 * (len(req) + syncproto.PayloadBound(req) + 1024)) // 1 KiB for an answer
	g := &gatePolicy{entered: make(chan struct{}), open: make(chan struct{})}
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{Policy: g, MemoryBudget: budget, RateLimit: -1}, "")
	openGate := sync.OnceFunc(func() { close(g.open) })
	t.Cleanup(openGate)
	first := make(chan int, 1)
	go func() {
		st, _, _ := postSync(t, srv.url, req)
		first <- st
	}()
	select {
	case <-g.entered:
	case st := <-first:
		t.Fatalf("the first request was answered %d before reaching the policy", st)
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the policy")
	}
	if st, _, _ := postSync(t, srv.url, req); st != http.StatusServiceUnavailable {
		t.Fatalf("a second request while the first holds the budget: %d", st)
	}
	openGate()
	if st := <-first; st != http.StatusOK {
		t.Fatalf("the first request: %d", st)
	}
	if st, _, _ := postSync(t, srv.url, req); st != http.StatusOK {
		t.Fatalf("after the first was answered: %d", st)
	}
}

// BenchmarkBombs sends 60 zstd bombs at once (a few kilobytes each that
// declare 60 MiB) and reports the server's peak Go heap, with the default
// memory budget and without one, in one run:
//
//	go test -run='^$' -bench='^BenchmarkBombs$' -benchtime=1x ./server
func BenchmarkBombs(b *testing.B) {
	for _, budget := range []int64{0, -1} {
		name := "budget=default"
		if budget < 0 {
			name = "budget=none"
		}
		b.Run(name, func(b *testing.B) {
			srv := serve(b, dbtest.OpenDB(b, nil), &server.Options{MemoryBudget: budget, RateLimit: -1}, "")
			body := bomb(b, 60<<20, true)
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				peak := peakHeap(func() {
					var wg sync.WaitGroup
					for range 60 {
						wg.Go(func() { postSync(b, srv.url, body) })
					}
					wg.Wait()
				})
				b.ReportMetric(float64(peak-base.HeapInuse)/(1<<20), "peak-heap-MiB")
			}
		})
	}
}

// peakHeap runs fn and returns the largest HeapInuse seen meanwhile.
func peakHeap(fn func()) uint64 {
	done := make(chan struct{})
	var peak atomic.Uint64
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	return peak.Load()
}

// TestMemoryBudgetSizesAnswers: the room to build an answer is reserved
// before it is built, and the answer is made to fit it: a request for a
// repository larger than the budget gets part of it (More set), never an
// answer the budget cannot hold, and a client still converges round by
// round. (Without the reservation, each of many requests for everything
// built a whole answer at once, outside the budget.)
func TestMemoryBudgetSizesAnswers(t *testing.T) {
	const budget = 16 << 20
	const share = budget / 4 // one client's
	sdb := dbtest.OpenDB(t, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 24<<10)
	for i := range 160 { // about 4 MiB of commits that do not compress, more than a share
		for j := range big {
			big[j] = 'a' + byte(rng.IntN(26))
		}
		mustPut(t, sdb, fmt.Sprintf("/data/big/k%03d", i), goatdb.Fields{"v": string(big)})
	}
	srv := serve(t, sdb, &server.Options{MemoryBudget: budget, RateLimit: -1}, "")
	resp := askAll(t, srv.url, []syncproto.RepoRequest{{Path: "/data/big"}})
	var n int
	for _, c := range resp.Repos[0].Commits {
		n += len(c)
	}
	if n == 0 || n > share/3 || !resp.Repos[0].More {
		t.Errorf("answer of %d commit bytes (More %v), want some, at most a third of one client's share (%d) of the budget, and More", n, resp.Repos[0].More, share)
	}
	cli := dbtest.OpenDB(t, nil)
	mustSync(t, cli, srv.url, "/data/big")
	if got, err := cli.Count("/data/big"); err != nil || got != 160 {
		t.Errorf("client holds %d items (%v), want 160", got, err)
	}
}

// TestMemoryBudgetShare: one client holds at most a quarter of the
// budget, so its heavy requests leave room for everyone else's: while a
// client's request holds its share, its next one is answered 503 and
// another client's goes through.
func TestMemoryBudgetShare(t *testing.T) {
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": 1})
	req := pushRequest(t, cli, "/data/p")
	empty := emptySync(t)
	budget := int64(4 * (len(req) + syncproto.PayloadBound(req) + 1024)) // 1 KiB for an answer
	g := &gatePolicy{entered: make(chan struct{}), open: make(chan struct{})}
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{Policy: g, MemoryBudget: budget, RateLimit: -1,
		ClientKey: func(r *http.Request) string { return r.Header.Get("X-Client") }}, "")
	openGate := sync.OnceFunc(func() { close(g.open) })
	t.Cleanup(openGate)
	send := func(client string, body []byte) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/v1/sync", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Type", goatdb.SyncContentType)
		hr.Header.Set("X-Client", client)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Errorf("client %s: %v", client, err)
			return 0
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	first := make(chan int, 1)
	go func() { first <- send("a", req) }()
	select {
	case <-g.entered:
	case st := <-first:
		t.Fatalf("a's first request was answered %d before reaching the policy", st)
	case <-time.After(10 * time.Second):
		t.Fatal("a's first request never reached the policy")
	}
	if st := send("a", req); st != http.StatusServiceUnavailable {
		t.Errorf("a's second request while its first holds a's share: %d, want 503", st)
	}
	if st := send("b", empty); st != http.StatusOK {
		t.Errorf("b's request while a holds its share: %d, want 200", st)
	}
	openGate()
	if st := <-first; st != http.StatusOK {
		t.Fatalf("a's first request: %d", st)
	}
}

// TestMemoryBudgetFirstCommits: every commit of an answer is reserved,
// the first of each repository's section too: a request for many
// repositories of one large commit each gets what fits its client's
// share, not one commit per repository whatever their size.
func TestMemoryBudgetFirstCommits(t *testing.T) {
	const budget = 16 << 20
	const share = budget / 4
	sdb := dbtest.OpenDB(t, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	big := make([]byte, 600<<10)
	var repos []syncproto.RepoRequest
	for i := range 12 { // 7 MiB of commits that do not compress, in 12 repositories
		for j := range big {
			big[j] = 'a' + byte(rng.IntN(26))
		}
		p := fmt.Sprintf("/data/big%02d", i)
		mustPut(t, sdb, p+"/k", goatdb.Fields{"v": string(big)})
		repos = append(repos, syncproto.RepoRequest{Path: p})
	}
	srv := serve(t, sdb, &server.Options{MemoryBudget: budget, RateLimit: -1}, "")
	resp := askAll(t, srv.url, repos)
	var n, more int
	for _, r := range resp.Repos {
		for _, c := range r.Commits {
			n += len(c)
		}
		if r.More {
			more++
		}
	}
	if n == 0 || n > share/3 || more == 0 {
		t.Errorf("answer of %d commit bytes, %d sections with More; want some, at most a third of a client's share (%d), and More", n, more, share)
	}
}

// askAll sends one sync round for repos, as a peer that holds nothing of
// them, and returns the answer.
func askAll(t *testing.T, url string, repos []syncproto.RepoRequest) *syncproto.Response {
	t.Helper()
	msg, err := syncproto.EncodeRequest(&syncproto.Request{Repos: repos})
	if err != nil {
		t.Fatal(err)
	}
	st, body, _ := post(t, url, goatdb.SyncContentType, msg)
	if st != http.StatusOK {
		t.Fatalf("sync: %d %s", st, body)
	}
	resp, err := syncproto.DecodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
