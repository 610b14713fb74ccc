package server_test

// Write-to-arrival latency through a server on loopback: client A writes
// an item, its background Syncer pushes it, the server notifies every
// event stream, and client B's Syncer fetches it. The time is from the
// start of A's Put to the moment B's repository holds the value.
//
//	go test -run='^$' -bench='^BenchmarkWriteToArrival$' -benchtime=1000x ./server
//
// With receivers=500, B is one of 500 listening clients (each its own
// HTTP client and connections, as separate machines would have). A, B and
// the server keep their data on disk with Sync durability; the other 499
// keep it in memory, since their fsyncs would happen on their own disks,
// not this one. All of them share this machine's CPUs, so the figure is
// pessimistic: every receiver's signature checks and HTTP work compete
// with B's and the server's.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/vfs"
)

const latencyRepo = "/bench/live"

func BenchmarkWriteToArrival(b *testing.B) {
	for _, n := range []int{1, 500} {
		b.Run(fmt.Sprintf("receivers=%d", n), func(b *testing.B) { benchArrival(b, n) })
	}
}

// TestWriteToArrivalHarness runs the benchmark's set-up and a few writes,
// so the harness itself stays working.
func TestWriteToArrivalHarness(t *testing.T) {
	l := newLatencyRig(t, 3)
	for i := range 5 {
		if d := l.write(t, i); d <= 0 {
			t.Fatalf("write %d: latency %v", i, d)
		}
	}
}

func benchArrival(b *testing.B, receivers int) {
	l := newLatencyRig(b, receivers)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		lat = append(lat, l.write(b, i))
		i++
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

type latencyRig struct {
	a      *goatdb.DB
	b      *goatdb.DB
	rb     *repo.Repo   // B's repository
	others []*repo.Repo // every receiver's repository, B's included
	base   int          // commits before the first measured write
}

func newLatencyRig(tb testing.TB, receivers int) *latencyRig {
	tb.Helper()
	srvDB := peer(tb, nil)
	srv := serve(tb, srvDB, &server.Options{RateLimit: -1}, "")
	l := &latencyRig{}
	client := func(db *goatdb.DB) {
		s, err := db.StartSync([]string{srv.url}, &goatdb.SyncOptions{
			Repos:  []string{latencyRepo},
			Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Stop() })
	}
	l.a = peer(tb, nil)
	mustPut(tb, l.a, latencyRepo+"/x", goatdb.Fields{"v": -1.0})
	mustSync(tb, l.a, srv.url)
	client(l.a)
	for i := range receivers {
		var db *goatdb.DB
		if i == 0 {
			db = peer(tb, nil)
			l.b = db
		} else {
			db = peer(tb, &goatdb.Options{FS: vfs.NewMem()})
		}
		client(db)
		r, err := db.Repo(latencyRepo)
		if err != nil {
			tb.Fatal(err)
		}
		l.others = append(l.others, r)
	}
	l.rb = l.others[0]
	l.base = 1
	l.waitAll(tb, l.base)
	return l
}

// write makes write i on A and returns the time until B holds it; it then
// waits until every receiver does, so writes do not pile up.
func (l *latencyRig) write(tb testing.TB, i int) time.Duration {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := float64(i)
	seq := l.rb.Seq()
	began := time.Now()
	if _, err := l.a.Put(latencyRepo+"/x", goatdb.Fields{"v": want}); err != nil {
		tb.Fatal(err)
	}
	for {
		if v, err := l.b.Get(latencyRepo + "/x"); err == nil && v.Get("v") == want {
			break
		}
		if err := l.rb.Wait(ctx, seq); err != nil {
			tb.Fatalf("write %d never reached B: %v", i, err)
		}
		seq = l.rb.Seq()
	}
	d := time.Since(began)
	l.waitAll(tb, l.base+i+1)
	return d
}

// waitAll waits until every receiver holds n commits.
func (l *latencyRig) waitAll(tb testing.TB, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, r := range l.others {
		for {
			seq := r.Seq()
			if r.Stats().Commits >= n {
				break
			}
			if err := r.Wait(ctx, seq); err != nil {
				tb.Fatalf("receiver %d has %d of %d commits: %v", i, r.Stats().Commits, n, err)
			}
		}
	}
}
