package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/goatdb/goatdb"
)

// metrics are the server's counters, written in the Prometheus text
// exposition format (version 0.0.4). A handful of series needs no
// library: counters are atomics, the one labelled family a map.
type metrics struct {
	mu       sync.Mutex // guards requests
	requests map[routeCode]uint64

	bytesIn, bytesOut     atomic.Uint64
	commitsIn, commitsOut atomic.Uint64
	rejected              atomic.Uint64
	badRequests           atomic.Uint64
	rateLimited           atomic.Uint64
	unauthorized          atomic.Uint64
	overBudget            atomic.Uint64
	slowBodies            atomic.Uint64
	memInUse              func() int64 // the memory budget's bytes in use
	panics                atomic.Uint64
	streams               atomic.Int64
	connections           atomic.Int64
	repositories          atomic.Int64
	// storage state, read from the database at each scrape
	quarantined, unavailable, failing atomic.Int64
	syncSeconds                       *histogram
}

type routeCode struct {
	route string
	code  int
}

func newMetrics() *metrics {
	return &metrics{requests: map[routeCode]uint64{}, syncSeconds: newHistogram(
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)}
}

func (m *metrics) request(route string, code int) {
	m.mu.Lock()
	m.requests[routeCode{route, code}]++
	m.mu.Unlock()
}

// write writes every series.
func (m *metrics) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	family(bw, "goatdb_http_requests_total", "counter", "HTTP requests served, by route pattern and status code.")
	m.mu.Lock()
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeCode) int {
		if a.route != b.route {
			if a.route < b.route {
				return -1
			}
			return 1
		}
		return a.code - b.code
	})
	for _, k := range keys {
		fmt.Fprintf(bw, "goatdb_http_requests_total{route=%s,code=\"%d\"} %d\n", strconv.Quote(k.route), k.code, m.requests[k])
	}
	m.mu.Unlock()
	counter(bw, "goatdb_sync_received_bytes_total", "Sync request bytes received (on the wire, compressed).", m.bytesIn.Load())
	counter(bw, "goatdb_sync_sent_bytes_total", "Sync response bytes sent (on the wire, compressed).", m.bytesOut.Load())
	counter(bw, "goatdb_sync_commits_received_total", "Commits received in sync requests, accepted or not.", m.commitsIn.Load())
	counter(bw, "goatdb_sync_commits_sent_total", "Commits sent in sync responses.", m.commitsOut.Load())
	counter(bw, "goatdb_sync_commits_rejected_total", "Received commits refused (bad id, signature, parents, policy).", m.rejected.Load())
	counter(bw, "goatdb_sync_bad_requests_total", "Sync requests refused as malformed, oversized or of an unknown version.", m.badRequests.Load())
	counter(bw, "goatdb_http_rate_limited_total", "Requests refused with 429 by the per-client rate limit.", m.rateLimited.Load())
	counter(bw, "goatdb_http_unauthorized_total", "Requests refused with 401: unsigned, badly signed, replayed, stale, or from a session without a valid certificate.", m.unauthorized.Load())
	counter(bw, "goatdb_http_panics_total", "Handler panics recovered.", m.panics.Load())
	counter(bw, "goatdb_http_slow_bodies_total", "Requests cut (408) because their body arrived slower than the minimum rate.", m.slowBodies.Load())
	counter(bw, "goatdb_memory_budget_refused_total", "Sync requests answered 503 because the memory budget for requests had no room.", m.overBudget.Load())
	if m.memInUse != nil {
		gauge(bw, "goatdb_memory_budget_in_use_bytes", "Bytes of the memory budget that requests in flight hold.", m.memInUse())
	}
	gauge(bw, "goatdb_event_streams", "Event streams connected.", m.streams.Load())
	gauge(bw, "goatdb_http_connections", "Connections open (at most Options.MaxConnections).", m.connections.Load())
	gauge(bw, "goatdb_repositories", "Repositories open.", m.repositories.Load())
	gauge(bw, "goatdb_storage_quarantined_ranges", "Damaged log ranges quarantined and not yet resolved by a sync.", m.quarantined.Load())
	gauge(bw, "goatdb_storage_unavailable_repositories", "Repositories that cannot be opened.", m.unavailable.Load())
	gauge(bw, "goatdb_storage_failing_repositories", "Repositories whose writes are failing (full or failing disk).", m.failing.Load())
	m.syncSeconds.write(bw, "goatdb_sync_duration_seconds", "Time to read, handle and answer a sync request.")
	return bw.Flush()
}

func family(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func counter(w io.Writer, name, help string, v uint64) {
	family(w, name, "counter", help)
	fmt.Fprintf(w, "%s %d\n", name, v)
}

func gauge(w io.Writer, name, help string, v int64) {
	family(w, name, "gauge", help)
	fmt.Fprintf(w, "%s %d\n", name, v)
}

// histogram is a cumulative histogram with fixed upper bounds.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v)
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) write(w io.Writer, name, help string) {
	family(w, name, "histogram", help)
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
	fmt.Fprintf(w, "%s_sum %s\n", name, strconv.FormatFloat(math.Float64frombits(h.sum.Load()), 'g', -1, 64))
	fmt.Fprintf(w, "%s_count %d\n", name, cum)
}

// storage reads the database's storage state into the gauges.
func (m *metrics) storage(db *goatdb.DB) {
	h, err := db.Health()
	if err != nil {
		return
	}
	var q, u, f int64
	for _, rh := range h.Repos {
		q += int64(len(rh.Quarantined))
		switch {
		case rh.Status == goatdb.StatusDegraded:
			f++
		case rh.Err != nil && len(rh.Quarantined) == 0:
			u++
		}
	}
	m.quarantined.Store(q)
	m.unavailable.Store(u)
	m.failing.Store(f)
}
