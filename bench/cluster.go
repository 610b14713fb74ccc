package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/syncbench"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
)

// The "cluster" section: what replication between the nodes of one
// deployment costs a client, in one run.
//
//   - Write latency: a client's durable signed write (DB.Put, Sync
//     durability) and DB.Sync of it to one node, timed together; the node
//     is either a single server without peers, or node 1 of 3 nodes that
//     replicate with each other (server.Options.Peers, every node with
//     AckReplicas 1), so that node 1 answers the sync only once another
//     node stored (fsynced) the commit. After every acknowledged write the
//     section checks that node 2 or node 3 holds it. Both servers
//     authenticate (AckReplicas needs it) and the clients log in; writes
//     alternate between the two setups in a new random order each round.
//   - Cross-node write-to-arrival: client A follows node 1, client B
//     follows node 3, both with DB.StartSync; the time from the start of
//     A's Put until B holds the value, as the sync section's
//     write-to-arrival (internal/syncbench) measures it with one server.
//
// Every node, server and client is a goatdb database on disk with the
// default options (signed commits, Sync durability), in this process,
// served on 127.0.0.1; the nodes enforce authz.OpenRules (every
// logged-in user reads and writes everything).

const (
	clusterPart      = "cluster" // what --only matches
	clusterSectionID = "cluster"
	clusterNodes     = 3
	clusterAckRepo   = "/bench/acked"
	clusterLiveRepo  = "/bench/live"
	clusterAckItem   = clusterAckRepo + "/w"
	clusterLiveItem  = clusterLiveRepo + "/x"
	clusterTimeout   = 30 * time.Second // a write not acknowledged or arrived by then fails the run
)

// The section's targets.
const (
	clusterWriteGoal   = "cluster write with --ack-replicas 1 (3 nodes): median ≤ 2× a single node's"
	clusterWriteFactor = 2.0
	clusterArrivalGoal = "cluster write-to-arrival across nodes (A on node 1, B on node 3): p99 ≤ 100 ms"
	clusterArrivalMax  = 100 * time.Millisecond
)

// clusterConfig is what the section measures.
type clusterConfig struct {
	on      bool
	writes  int // timed writes per setup, and timed cross-node arrivals
	warmups int // untimed writes first, of each kind
}

// clusterSelected reports whether the run includes the section.
func (c *config) clusterSelected() bool {
	return c.cluster.on && (c.only == nil || c.only.MatchString(clusterPart))
}

// clusterResults are the section's figures, in nanoseconds.
type clusterResults struct {
	Writes  int            `json:"writes"`
	Single  latencyFigures `json:"single_node_write"`
	Acked   latencyFigures `json:"ack_replicas_1_write"`
	Ratio   float64        `json:"median_ack_over_single"`
	RatioP  float64        `json:"p99_ack_over_single"`
	Arrival latencyFigures `json:"cross_node_arrival"`
}

// latencyFigures summarize sorted latencies.
type latencyFigures struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ns"`
	P99 float64 `json:"p99_ns"`
	Max float64 `json:"max_ns"`
}

func figuresOf(lat []time.Duration) latencyFigures {
	slices.Sort(lat)
	if len(lat) == 0 {
		return latencyFigures{}
	}
	return latencyFigures{N: len(lat), P50: ns(syncbench.Percentile(lat, 0.50)),
		P99: ns(syncbench.Percentile(lat, 0.99)), Max: ns(lat[len(lat)-1])}
}

// clusterLab holds what the section opened; close stops and closes it
// all, newest first, and removes the data.
type clusterLab struct {
	dir     string
	n       int
	closers []func() error
}

func (l *clusterLab) atClose(fn func() error) { l.closers = append(l.closers, fn) }

func (l *clusterLab) close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	return errors.Join(append(errs, os.RemoveAll(l.dir))...)
}

// open opens a database with the default options in a directory of its
// own.
func (l *clusterLab) open(name string) (*goatdb.DB, error) {
	l.n++
	db, err := goatdb.Open(filepath.Join(l.dir, fmt.Sprintf("%02d-%s", l.n, name)), nil)
	if err != nil {
		return nil, err
	}
	l.atClose(db.Close)
	return db, nil
}

// clusterNode is one server of the section.
type clusterNode struct {
	db  *goatdb.DB
	srv *server.Server
	url string
}

// serve serves db on ln with opts until the lab closes.
func (l *clusterLab) serve(db *goatdb.DB, ln net.Listener, opts *server.Options) (*clusterNode, error) {
	srv, err := server.New(db, opts)
	if err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	l.atClose(func() error { cancel(); return errors.Join(<-done, srv.Close()) })
	return &clusterNode{db: db, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// client opens a client database and logs it in to n as a new user.
func (l *clusterLab) client(ctx context.Context, name string, n *clusterNode) (*goatdb.DB, error) {
	db, err := l.open(name)
	if err != nil {
		return nil, err
	}
	code, _, err := n.srv.Accounts().AddUser(name, nil)
	if err != nil {
		return nil, err
	}
	if _, err := db.LoginCode(ctx, n.url, name, code); err != nil {
		return nil, fmt.Errorf("%s logs in to %s: %w", name, n.url, err)
	}
	return db, nil
}

// nodeIdentity certifies a new node key with the deployment's root.
func nodeIdentity(first *server.Identity, root ed25519.PrivateKey, name string) (*server.Identity, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nc, err := authz.IssueNode(root, authz.NodeFields{Node: name, Key: key.Public().(ed25519.PublicKey),
		NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	return &server.Identity{Audience: first.Audience, Root: first.Root, NodeKey: key, Node: nc}, nil
}

// startCluster starts clusterNodes nodes of one deployment, each with the
// others as Peers and AckReplicas 1.
func (l *clusterLab) startCluster() ([]*clusterNode, error) {
	first, root, err := server.NewIdentity("bench-cluster")
	if err != nil {
		return nil, err
	}
	ids := []*server.Identity{first}
	for i := 2; i <= clusterNodes; i++ {
		id, err := nodeIdentity(first, root, "n"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	var lns []net.Listener
	var urls []string
	for range clusterNodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns, urls = append(lns, ln), append(urls, "http://"+ln.Addr().String())
	}
	rules := authz.OpenRules()
	var nodes []*clusterNode
	for i := range clusterNodes {
		db, err := l.open("node" + strconv.Itoa(i+1))
		if err != nil {
			return nil, errors.Join(err, closeListeners(lns[i:]))
		}
		peers := slices.Concat(urls[:i], urls[i+1:])
		n, err := l.serve(db, lns[i], &server.Options{RateLimit: -1, Peers: peers, AckReplicas: 1,
			Auth: &server.AuthOptions{Identity: ids[i], Rules: rules}})
		if err != nil {
			return nil, errors.Join(err, closeListeners(lns[i+1:]))
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func closeListeners(lns []net.Listener) error {
	var errs []error
	for _, ln := range lns {
		errs = append(errs, ln.Close())
	}
	return errors.Join(errs...)
}

// startSingle starts a server without peers, of a deployment of its own.
func (l *clusterLab) startSingle() (*clusterNode, error) {
	id, _, err := server.NewIdentity("bench-single")
	if err != nil {
		return nil, err
	}
	db, err := l.open("single")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return l.serve(db, ln, &server.Options{RateLimit: -1, Auth: &server.AuthOptions{Identity: id, Rules: authz.OpenRules()}})
}

// runCluster runs the section, with its data in a temporary directory
// under cfg.dir, removed at the end.
func runCluster(ctx context.Context, cfg *config, progress io.Writer) (res *clusterResults, err error) {
	dir, err := os.MkdirTemp(cfg.dir, "goatdb-cluster-")
	if err != nil {
		return nil, err
	}
	l := &clusterLab{dir: dir}
	defer func() { err = errors.Join(err, l.close()) }()
	t0 := time.Now()
	single, err := l.startSingle()
	if err != nil {
		return nil, fmt.Errorf("cluster: single node: %w", err)
	}
	nodes, err := l.startCluster()
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	fmt.Fprintf(progress, "setup %-22s %v\n", clusterPart, time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	cc := &cfg.cluster
	single1, acked1, err := clusterWrites(ctx, l, cc, single, nodes)
	if err != nil {
		return nil, fmt.Errorf("cluster writes: %w", err)
	}
	fmt.Fprintf(progress, "%-28s %v\n", "cluster writes", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	arr, err := clusterArrival(ctx, l, cc, nodes[0], nodes[clusterNodes-1])
	if err != nil {
		return nil, fmt.Errorf("cluster arrival: %w", err)
	}
	fmt.Fprintf(progress, "%-28s %v\n", "cluster arrival", time.Since(t0).Round(time.Millisecond))
	res = &clusterResults{Writes: cc.writes, Single: figuresOf(single1), Acked: figuresOf(acked1), Arrival: figuresOf(arr)}
	res.Ratio, res.RatioP = res.Acked.P50/res.Single.P50, res.Acked.P99/res.Single.P99
	return res, nil
}

// clusterWriter is a client that writes and syncs to one node.
type clusterWriter struct {
	db     *goatdb.DB
	node   *clusterNode
	check  []*clusterNode // one of these must hold each write once acknowledged
	lat    []time.Duration
	writes int
}

// write puts a new value and syncs it, and returns how long both took.
func (w *clusterWriter) write(ctx context.Context) (time.Duration, error) {
	w.writes++
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	began := time.Now()
	id, err := w.db.Put(clusterAckItem, goatdb.Fields{"v": float64(w.writes)})
	if err != nil {
		return 0, err
	}
	if _, err := w.db.Sync(ctx, w.node.url, clusterAckRepo); err != nil {
		return 0, err
	}
	d := time.Since(began)
	if len(w.check) > 0 && !heldByOne(w.check, clusterAckRepo, id) {
		return 0, fmt.Errorf("write %d acknowledged by %s before another node stored it", w.writes, w.node.url)
	}
	return d, nil
}

func heldByOne(nodes []*clusterNode, path string, id commit.ID) bool {
	for _, n := range nodes {
		if r, err := n.db.LookupRepo(path); err == nil && r.Has(id) {
			return true
		}
	}
	return false
}

// clusterWrites times cc.writes writes to the single node and as many to
// node 1 of the cluster, in rounds of one each in a random order.
func clusterWrites(ctx context.Context, l *clusterLab, cc *clusterConfig, single *clusterNode, nodes []*clusterNode) (s, a []time.Duration, err error) {
	sdb, err := l.client(ctx, "single-writer", single)
	if err != nil {
		return nil, nil, err
	}
	adb, err := l.client(ctx, "acked-writer", nodes[0])
	if err != nil {
		return nil, nil, err
	}
	ws := &clusterWriter{db: sdb, node: single}
	wa := &clusterWriter{db: adb, node: nodes[0], check: nodes[1:]}
	order := []*clusterWriter{ws, wa}
	for r := range cc.warmups + cc.writes {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, w := range order {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			d, err := w.write(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", w.node.url, err)
			}
			if r >= cc.warmups {
				w.lat = append(w.lat, d)
			}
		}
	}
	return ws.lat, wa.lat, nil
}

// clusterArrival times cc.writes writes of client A, which follows node
// 1, until client B, which follows n3, holds each.
func clusterArrival(ctx context.Context, l *clusterLab, cc *clusterConfig, n1, n3 *clusterNode) ([]time.Duration, error) {
	a, err := l.client(ctx, "writer-a", n1)
	if err != nil {
		return nil, err
	}
	b, err := l.client(ctx, "reader-b", n3)
	if err != nil {
		return nil, err
	}
	if _, err := a.Put(clusterLiveItem, goatdb.Fields{"v": -1.0}); err != nil {
		return nil, err
	}
	if _, err := a.Sync(ctx, n1.url, clusterLiveRepo); err != nil {
		return nil, fmt.Errorf("first sync of A: %w", err)
	}
	for _, f := range []struct {
		db  *goatdb.DB
		url string
	}{{a, n1.url}, {b, n3.url}} {
		tr := &http.Transport{MaxIdleConnsPerHost: 4}
		s, err := f.db.StartSync([]string{f.url}, &goatdb.SyncOptions{Repos: []string{clusterLiveRepo}, Client: &http.Client{Transport: tr}})
		if err != nil {
			return nil, err
		}
		l.atClose(func() error { err := s.Stop(); tr.CloseIdleConnections(); return err })
	}
	rb, err := b.Repo(clusterLiveRepo)
	if err != nil {
		return nil, err
	}
	if err := arrive(ctx, b, rb, -1); err != nil {
		return nil, fmt.Errorf("A's first write never reached B: %w", err)
	}
	var lat []time.Duration
	for i := range cc.warmups + cc.writes {
		want := float64(i)
		seq := rb.Seq()
		began := time.Now()
		if _, err := a.Put(clusterLiveItem, goatdb.Fields{"v": want}); err != nil {
			return nil, err
		}
		if err := arriveFrom(ctx, b, rb, want, seq); err != nil {
			return nil, fmt.Errorf("write %d never reached B: %w", i, err)
		}
		if i >= cc.warmups {
			lat = append(lat, time.Since(began))
		}
	}
	return lat, nil
}

// arrive waits until db holds want as clusterLiveItem's v.
func arrive(ctx context.Context, db *goatdb.DB, rb *repo.Repo, want float64) error {
	return arriveFrom(ctx, db, rb, want, rb.Seq())
}

func arriveFrom(ctx context.Context, db *goatdb.DB, rb *repo.Repo, want float64, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	for {
		if v, err := db.Get(clusterLiveItem); err == nil && v.Get("v") == want {
			return nil
		}
		if err := rb.Wait(ctx, seq); err != nil {
			return err
		}
		seq = rb.Seq()
	}
}

// clusterSection lays out the figures.
func clusterSection(res *clusterResults) section {
	t := table{Caption: "Write latency: DB.Put and DB.Sync to one node", Columns: []column{
		{name: "setup"}, {name: "writes", right: true}, {name: "p50", right: true}, {name: "p99", right: true},
		{name: "max", right: true}, {name: "÷ single node"},
	}}
	row := func(name string, f latencyFigures, ratio string) []string {
		return []string{name, strconv.Itoa(f.N), formatNS(f.P50), formatNS(f.P99), formatNS(f.Max), ratio}
	}
	t.Rows = append(t.Rows, row("single node, no peers", res.Single, ""),
		row("node 1 of 3, --ack-replicas 1", res.Acked, fmt.Sprintf("%s (p50), %s (p99)", formatRatio(res.Ratio), formatRatio(res.RatioP))))
	a := table{Caption: "Cross-node write-to-arrival (A on node 1, B on node 3)", Columns: []column{
		{name: "nodes", right: true}, {name: "writes", right: true}, {name: "p50", right: true}, {name: "p99", right: true}, {name: "max", right: true},
	}}
	a.Rows = append(a.Rows, []string{strconv.Itoa(clusterNodes), strconv.Itoa(res.Arrival.N),
		formatNS(res.Arrival.P50), formatNS(res.Arrival.P99), formatNS(res.Arrival.Max)})
	return section{ID: clusterSectionID, Title: "Cluster: 3 replicating goatdb nodes (authenticated, signed, Sync durability) on 127.0.0.1",
		Tables: []table{t, a}, Data: res}
}

func clusterNotes(cfg *config) []string {
	return []string{
		fmt.Sprintf("Cluster write: a client's DB.Put (signed, fdatasync) and DB.Sync of it to one node, timed together, %d times per setup after %d untimed, "+
			"the two setups in a new random order each round. Single node: a server without peers. Node 1 of 3: three nodes of one deployment "+
			"(one root key, a node certificate each), each with the other two as Peers and AckReplicas 1, so node 1 answers the sync "+
			"only once node 2 or node 3 stored (fdatasync) the commit; the run checks that one of them holds it when the answer arrives. "+
			"Both servers authenticate and the clients log in.", cfg.cluster.writes, cfg.cluster.warmups),
		"Cross-node write-to-arrival: client A follows node 1 and client B follows node 3, each with DB.StartSync (events carry small commits); " +
			"the time from the start of A's Put until B holds the value: A to node 1, node 1 to node 3 by replication, node 3's event to B.",
		"Every node, server and client is a database on disk in this process, so all of them share this machine's CPUs and disk: " +
			"each write is an fdatasync on the client, one on node 1 and one on each peer that stores it.",
	}
}

// judgeCluster returns the section's verdicts.
func judgeCluster(res *clusterResults) []verdict {
	w := verdict{Target: clusterWriteGoal, Engine: syncEngine}
	w.Status = metIf(res.Ratio <= clusterWriteFactor)
	w.Detail = fmt.Sprintf("p50 %s vs single node %s: %s (limit %s); p99 %s vs %s",
		formatNS(res.Acked.P50), formatNS(res.Single.P50), formatRatio(res.Ratio), formatRatio(clusterWriteFactor),
		formatNS(res.Acked.P99), formatNS(res.Single.P99))
	a := verdict{Target: clusterArrivalGoal, Engine: syncEngine}
	a.Status = metIf(res.Arrival.P99 <= float64(clusterArrivalMax))
	a.Detail = fmt.Sprintf("p50 %s, p99 %s over %d writes (limit %s)", formatNS(res.Arrival.P50), formatNS(res.Arrival.P99),
		res.Arrival.N, formatNS(float64(clusterArrivalMax)))
	return []verdict{w, a}
}

// addCluster adds the section's figures, notes and verdicts; res nil adds
// nothing.
func (r *report) addCluster(cfg *config, res *clusterResults) {
	if res == nil {
		return
	}
	r.Sections = append(r.Sections, clusterSection(res))
	r.Notes = append(r.Notes, clusterNotes(cfg)...)
	r.Targets = append(r.Targets, judgeCluster(res)...)
}
