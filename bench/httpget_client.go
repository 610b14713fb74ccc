package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The load generator of the "http get" section: the bench binary started
// again with httpClientEnv set, so that its CPU is not the server's. It
// reads its orders on stdin as JSON (one line), opens its connections
// with warm-up requests, says "ready", waits for "go", sends the timed
// requests, and answers a clientResult as JSON on stdout.

// httpClientEnv, set in the environment, makes the bench binary the load
// generator.
const httpClientEnv = "GOATDB_BENCH_HTTP_CLIENT"

// clientOrders is what one load-generator process does.
type clientOrders struct {
	URL    string `json:"url"`    // item i is URL + "i" + i
	Auth   string `json:"auth"`   // the Authorization header, or ""
	Items  int    `json:"items"`  // keys i0..i(Items-1)
	Conns  int    `json:"conns"`  // keep-alive connections, one goroutine each
	Warmup int    `json:"warmup"` // untimed requests per connection first
	N      int    `json:"n"`      // timed requests, over all connections
	Seed   uint64 `json:"seed"`
}

// clientResult is what the client saw of the timed requests.
type clientResult struct {
	Requests int     `json:"requests"`
	WallNS   float64 `json:"wall_ns"`
	P50      float64 `json:"p50_ns"`
	P99      float64 `json:"p99_ns"`
	Max      float64 `json:"max_ns"`
	Error    string  `json:"error,omitempty"`
}

// httpClientMain runs the load generator: 0 on success.
func httpClientMain(stdin io.Reader, stdout io.Writer) int {
	in := bufio.NewReader(stdin)
	var o clientOrders
	line, err := in.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &o)
	}
	if err == nil && (o.Conns < 1 || o.Items < 1 || o.N < o.Conns) {
		err = fmt.Errorf("bad orders %+v", o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "http client: orders: %v\n", err)
		return 2
	}
	// A transport per connection: each goroutine keeps its own one, so
	// the warm-up opens every connection the timed requests use.
	cs := make([]*http.Client, o.Conns)
	for g := range cs {
		tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true, IdleConnTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		cs[g] = &http.Client{Transport: tr}
	}
	if _, err := fire(cs, &o, o.Warmup, o.Seed^0x5eed, false); err != nil {
		return clientFailed(stdout, fmt.Errorf("warm-up: %w", err))
	}
	fmt.Fprintln(stdout, "ready")
	if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
		return clientFailed(stdout, fmt.Errorf("waiting for go: %q, %v", line, err))
	}
	start := time.Now()
	lat, err := fire(cs, &o, o.N/o.Conns, o.Seed, true)
	wall := time.Since(start)
	if err != nil {
		return clientFailed(stdout, err)
	}
	slices.Sort(lat)
	res := clientResult{Requests: len(lat), WallNS: float64(wall.Nanoseconds()),
		P50: nearestRank(lat, 0.50), P99: nearestRank(lat, 0.99), Max: lat[len(lat)-1]}
	b, _ := json.Marshal(res)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func clientFailed(stdout io.Writer, err error) int {
	b, _ := json.Marshal(clientResult{Error: err.Error()})
	fmt.Fprintf(stdout, "%s\n", b)
	return 1
}

// fire sends per requests on each of o.Conns goroutines at once (each
// with its client, cs[g], and its connection), each
// for a random item, checks each answer, and returns the latencies in
// nanoseconds if timed.
func fire(cs []*http.Client, o *clientOrders, per int, seed uint64, timed bool) ([]float64, error) {
	lats := make([][]float64, o.Conns)
	errs := make([]error, o.Conns)
	var wg sync.WaitGroup
	for g := range o.Conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			if timed {
				lats[g] = make([]float64, 0, per)
			}
			for range per {
				i := rng.IntN(o.Items)
				start := time.Now()
				if err := getItem(cs[g], o, i); err != nil {
					errs[g] = err
					return
				}
				if timed {
					lats[g] = append(lats[g], float64(time.Since(start).Nanoseconds()))
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(lats...), nil
}

// getItem gets item i and checks that the answer is it: 200 and its
// title in the JSON. The body is read to the end, so that the
// connection is reused.
func getItem(c *http.Client, o *clientOrders, i int) error {
	s := strconv.Itoa(i)
	req, err := http.NewRequest(http.MethodGet, o.URL+"i"+s, nil)
	if err != nil {
		return err
	}
	if o.Auth != "" {
		req.Header.Set("Authorization", o.Auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET item %d: %s: %.200s", i, resp.Status, body)
	case !bytes.Contains(body, []byte(`"title":"Item `+s+`"`)):
		return fmt.Errorf("GET item %d: not the item: %.200s", i, body)
	}
	return nil
}
