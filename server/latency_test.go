package server_test

// Write-to-arrival latency through a server on loopback: client A writes
// an item, its background Syncer pushes it, the server notifies every
// event stream, and client B's Syncer fetches it. The time is from the
// start of A's Put to the moment B's repository holds the value. The rig
// is internal/syncbench's, which the bench program (bench/) also reports.
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
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/syncbench"
)

func BenchmarkWriteToArrival(b *testing.B) {
	for _, n := range []int{1, 500} {
		b.Run(fmt.Sprintf("receivers=%d", n), func(b *testing.B) { benchArrival(b, n, false) })
	}
	// With authentication: every client logged in, every request signed.
	b.Run("receivers=1/auth", func(b *testing.B) { benchArrival(b, 1, true) })
}

// TestWriteToArrivalHarness runs the benchmark's set-up and a few writes,
// so the harness itself stays working.
func TestWriteToArrivalHarness(t *testing.T) {
	rig := newRig(t, 3, true)
	for i := range 5 {
		d, err := rig.Write(t.Context())
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if d <= 0 {
			t.Fatalf("write %d: latency %v", i, d)
		}
	}
}

func benchArrival(b *testing.B, receivers int, auth bool) {
	rig := newRig(b, receivers, auth)
	var lat []time.Duration
	for b.Loop() {
		d, err := rig.Write(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(syncbench.Percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(syncbench.Percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// newRig starts a rig with its data under the test's directory, closed on
// cleanup.
func newRig(tb testing.TB, receivers int, auth bool) *syncbench.Rig {
	tb.Helper()
	rig, err := syncbench.NewRig(tb.Context(), syncbench.ArrivalOptions{Dir: tb.TempDir(), Receivers: receivers, Auth: auth})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := rig.Close(); err != nil {
			tb.Errorf("close the rig: %v", err)
		}
	})
	return rig
}
