package main

// The cluster rig: three 'goatdb serve' processes of one deployment on
// loopback ports, each replicating with the two others, and clients
// (goatdb.DB) in the test process. Each node is the test binary started
// again as TestClusterRigNodeProcess, which runs the command as main
// does (SIGTERM stops it gracefully; SIGKILL kills it), so a node can be
// killed, stopped and restarted on the same directory and port.
//
// What a node holds is read over its JSON API with a web session's token
// (a user added on that node through its admin socket), which writes
// nothing: a client that synced with a node to look would also push.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// rigNodeEnv marks the test binary started as a node of the rig.
const rigNodeEnv = "GOATDB_TEST_RIG_NODE"

// rigNodeLifetime bounds how long a node process runs, should the test
// that started it die without killing it.
const rigNodeLifetime = 3 * time.Minute

// TestClusterRigNodeProcess is a node of the rig: it runs goatdb with the
// arguments after "--" as main does, until SIGINT or SIGTERM, and exits at
// once when its standard input ends (the test process is gone).
func TestClusterRigNodeProcess(t *testing.T) {
	if os.Getenv(rigNodeEnv) != "1" {
		t.Skip("a node process of the cluster rig")
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, rigNodeLifetime)
	i := slices.Index(os.Args, "--")
	code := run(ctx, os.Args[i+1:], strings.NewReader(""), os.Stdout, os.Stderr)
	cancel()
	stop()
	os.Exit(code)
}

// rigNode is one 'goatdb serve' process of the rig.
type rigNode struct {
	name  string
	dir   string
	url   string   // http://127.0.0.1:PORT, the same across restarts
	flags []string // serve's flags

	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *outBuffer // stdout and stderr of every run
	exit  chan struct{}
	token string // a web session's token for the JSON API; "" until asked
	users int    // users added for tokens
}

// rig is a deployment of three nodes.
type rig struct {
	nodes []*rigNode
	http  *http.Client
}

// rigOptions are the flags every node serves with.
type rigOptions struct {
	ackReplicas int
	ackTimeout  time.Duration
}

// skipRig skips tb under -short or where nodes cannot be killed.
func skipRig(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("the cluster rig starts three goatdb serve processes; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		tb.Skip("the cluster rig needs SIGKILL and SIGTERM")
	}
}

// freePorts returns n loopback ports that were free a moment ago: nodes
// need each other's URLs before any of them listens.
func freePorts(tb testing.TB, n int) []string {
	tb.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// rigCLI runs goatdb in-process with --dir dir; it must succeed.
func rigCLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"--dir", dir}, args...), strings.NewReader(""), &out, &errb); code != 0 {
		tb.Fatalf("goatdb --dir %s %s: exit %d: %s%s", dir, strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// newRig makes a deployment (root init, then node init for n1, n2, n3)
// and starts its three nodes, each with the others as peers, and returns
// once a write synced to n1 reached n2 and n3.
func newRig(tb testing.TB, o rigOptions) *rig {
	tb.Helper()
	base := tb.TempDir()
	rootFile := filepath.Join(base, "root.key")
	rigCLI(tb, base, "root", "init", "--out", rootFile)
	addrs := freePorts(tb, 3)
	r := &rig{http: &http.Client{Timeout: 10 * time.Second}}
	for i, addr := range addrs {
		n := &rigNode{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)), url: "http://" + addr, out: new(outBuffer)}
		rigCLI(tb, n.dir, "node", "init", "--root", rootFile, "--name", n.name)
		n.flags = []string{"serve", "--addr", addr, "--rules", "open", "--anonymous", "--log-level", "warn",
			// Every client of the rig is anonymous and on 127.0.0.1: one address.
			"--rate", "0", "--ip-rate", "0", "--user-rate", "0",
			"--ack-replicas", fmt.Sprint(o.ackReplicas), "--ack-timeout", o.ackTimeout.String()}
		for j, peer := range addrs {
			if j != i {
				n.flags = append(n.flags, "--peer", "http://"+peer)
			}
		}
		r.nodes = append(r.nodes, n)
	}
	tb.Cleanup(func() {
		for _, n := range r.nodes {
			n.kill(tb)
		}
		if tb.Failed() {
			for _, n := range r.nodes {
				tb.Logf("%s output:\n%s", n.name, n.out)
			}
		}
	})
	for _, n := range r.nodes {
		n.start(tb)
	}
	r.warmUp(tb)
	return r
}

// start runs the node's serve process and returns once it serves.
func (n *rigNode) start(tb testing.TB) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	mark := len(n.out.String())
	cmd := exec.Command(exe, append([]string{"-test.run=^TestClusterRigNodeProcess$", "-test.count=1", "--", "--dir", n.dir}, n.flags...)...)
	cmd.Env = append(os.Environ(), rigNodeEnv+"=1")
	cmd.Stdout, cmd.Stderr = n.out, n.out
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	n.cmd, n.exit, n.token = cmd, make(chan struct{}), ""
	go func(exit chan struct{}) {
		cmd.Wait()
		close(exit)
	}(n.exit)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(n.out.String()[mark:], "goatdb: serving ") {
		select {
		case <-n.exit:
			tb.Fatalf("%s exited before serving: %s", n.name, n.out.String()[mark:])
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s does not serve after 30s: %s", n.name, n.out.String()[mark:])
		}
	}
}

// running reports whether the node's process runs.
func (n *rigNode) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exit:
		return false
	default:
		return true
	}
}

// signal sends sig to the node's process and waits until it exits.
func (n *rigNode) signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if !n.running() {
		return
	}
	if err := n.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Errorf("signal %s: %v", n.name, err) // Errorf: kill may run on another goroutine
		return
	}
	select {
	case <-n.exit:
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		<-n.exit
		tb.Errorf("%s did not exit within 20s of %v", n.name, sig)
	}
	n.stdin.Close()
}

// kill kills the node with SIGKILL.
func (n *rigNode) kill(tb testing.TB) { tb.Helper(); n.signal(tb, syscall.SIGKILL) }

// stop stops the node with SIGTERM (a graceful shutdown), which must
// succeed.
func (n *rigNode) stop(tb testing.TB) {
	tb.Helper()
	n.signal(tb, syscall.SIGTERM)
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		tb.Errorf("%s exited %d after SIGTERM", n.name, code)
	}
}

// ensureUp starts every node that does not run: each scenario begins with
// the whole cluster, whatever the previous one left.
func (r *rig) ensureUp(tb testing.TB) {
	tb.Helper()
	for _, n := range r.nodes {
		if !n.running() {
			n.start(tb)
		}
	}
}

// warmUp writes through n1 until a sync is acknowledged, then waits until
// n2 and n3 hold the write: the mesh replicates.
func (r *rig) warmUp(tb testing.TB) {
	tb.Helper()
	c := dbtest.OpenDB(tb, nil)
	id, err := c.Put("/data/warm/k", goatdb.Fields{"v": 1})
	if err != nil {
		tb.Fatal(err)
	}
	r.syncUntil(tb, c, r.nodes[0], 30*time.Second, "/data/warm")
	for _, n := range r.nodes {
		r.waitHeld(tb, n, "/data/warm/k", id, 30*time.Second)
	}
}

// syncUntil syncs c with n until a sync succeeds, within limit.
func (r *rig) syncUntil(tb testing.TB, c *goatdb.DB, n *rigNode, limit time.Duration, repos ...string) goatdb.SyncStats {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		st, err := c.Sync(ctx, n.url, repos...)
		if err == nil {
			return st
		}
		if ctx.Err() != nil {
			tb.Fatalf("no sync with %s succeeded within %v: %v", n.name, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiToken returns a web session's token on n: a user added on n through
// its admin socket logs in with its code (tokens end with the process).
func (r *rig) apiToken(tb testing.TB, n *rigNode) string {
	tb.Helper()
	if n.token != "" {
		return n.token
	}
	if !n.running() {
		// user add would then write to the stopped node's directory.
		tb.Fatalf("a token for %s, which does not run", n.name)
	}
	n.users++
	user := fmt.Sprintf("ops-%s-%d", n.name, n.users)
	lines := strings.Split(strings.TrimSpace(rigCLI(tb, n.dir, "user", "add", user)), "\n")
	body, _ := json.Marshal(map[string]string{"user": user, "code": lines[len(lines)-1]})
	resp, err := r.http.Post(n.url+"/v1/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK || ans.Token == "" {
		tb.Fatalf("token on %s: %d %v", n.name, resp.StatusCode, err)
	}
	n.token = ans.Token
	return n.token
}

// get GETs a JSON API path on n into v and returns the status (0 if n
// could not be reached).
func (r *rig) get(tb testing.TB, n *rigNode, path string, v any) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.apiToken(tb, n))
	resp, err := r.http.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			tb.Fatalf("GET %s on %s: %v", path, n.name, err)
		}
	}
	return resp.StatusCode
}

// head returns the head of the item at path on n, "" if n does not hold
// it (or cannot be reached).
func (r *rig) head(tb testing.TB, n *rigNode, path string) string {
	tb.Helper()
	var it struct {
		Head string `json:"head"`
	}
	if r.get(tb, n, "/v1/items"+path, &it) != http.StatusOK {
		return ""
	}
	return it.Head
}

// heads returns key → head of every item of repository rp on n.
func (r *rig) heads(tb testing.TB, n *rigNode, rp string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	after := ""
	for {
		var page struct {
			Items []struct {
				Key  string `json:"key"`
				Head string `json:"head"`
			} `json:"items"`
			Next string `json:"next"`
		}
		if st := r.get(tb, n, "/v1/repos"+rp+"/items?limit=500&after="+after, &page); st != http.StatusOK {
			return out
		}
		for _, it := range page.Items {
			out[it.Key] = it.Head
		}
		if page.Next == "" {
			return out
		}
		after = page.Next
	}
}

// repoCounts returns repository → items as n's /v1/repos lists them.
func (r *rig) repoCounts(tb testing.TB, n *rigNode) map[string]int {
	tb.Helper()
	var ans struct {
		Repos []struct {
			Path  string `json:"path"`
			Items int    `json:"items"`
		} `json:"repos"`
	}
	if st := r.get(tb, n, "/v1/repos", &ans); st != http.StatusOK {
		tb.Fatalf("GET /v1/repos on %s: %d", n.name, st)
	}
	out := map[string]int{}
	for _, e := range ans.Repos {
		out[e.Path] = e.Items
	}
	return out
}

// waitHeld waits until n holds the commit id as the head of the item at
// path, and returns how long that took.
func (r *rig) waitHeld(tb testing.TB, n *rigNode, path string, id commit.ID, limit time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for r.head(tb, n, path) != id.String() {
		if time.Since(start) > limit {
			tb.Fatalf("%s does not hold %s of %s after %v", n.name, id, path, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// waitAll waits until n holds every item of want (key → head) in
// repository rp, and returns how long that took.
func (r *rig) waitAll(tb testing.TB, n *rigNode, rp string, want map[string]commit.ID, limit time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for {
		got := r.heads(tb, n, rp)
		var missing []string
		for k, id := range want {
			if got[k] != id.String() {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			slices.Sort(missing)
			tb.Fatalf("%s lacks %d of %d writes to %s after %v: %v", n.name, len(missing), len(want), rp, limit, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterRig runs the cluster scenarios on one deployment of three
// node processes with --ack-replicas 1: each scenario starts with every
// node running.
func TestClusterRig(t *testing.T) {
	skipRig(t)
	r := newRig(t, rigOptions{ackReplicas: 1, ackTimeout: 3 * time.Second})
	for _, sc := range []struct {
		name string
		fn   func(*testing.T, *rig)
	}{
		{"ConcurrentEditsMerge", rigConcurrentEdits},
		{"AckSurvivesKill", rigAckSurvivesKill},
		{"Failover", rigFailover},
		{"RevocationReachesPeers", rigRevocation},
		{"CompactionAtDifferentTimes", rigCompaction},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r.ensureUp(t)
			sc.fn(t, r)
		})
	}
}

// rigConcurrentEdits: two clients, one syncing with n1 and one with n3,
// edit different fields of the same item before either syncs; once all
// synced, the item's head is one merge commit, the same on every node and
// both clients, holding both edits.
func rigConcurrentEdits(t *testing.T, r *rig) {
	const rp, path = "/data/merge", "/data/merge/x"
	n1, n3 := r.nodes[0], r.nodes[2]
	c1, c3 := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	base, err := c1.Put(path, goatdb.Fields{"a": "base", "b": "base"})
	if err != nil {
		t.Fatal(err)
	}
	r.syncUntil(t, c1, n1, 20*time.Second, rp)
	r.waitHeld(t, n3, path, base, 20*time.Second)
	r.syncUntil(t, c3, n3, 20*time.Second, rp)
	if it, err := c3.Get(path); err != nil || it.Head() != base {
		t.Fatalf("c3 does not hold the base: %v %v", it.Head(), err)
	}
	edit := func(c *goatdb.DB, field string) commit.ID {
		id, err := c.Update(t.Context(), path, func(it goatdb.Item) (goatdb.Fields, error) {
			f := goatdb.Fields(it.Fields())
			f[field] = "edited by " + field
			return f, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	e1, e3 := edit(c1, "a"), edit(c3, "b")
	var wg sync.WaitGroup
	wg.Go(func() { c1.Sync(t.Context(), n1.url, rp) })
	wg.Go(func() { c3.Sync(t.Context(), n3.url, rp) })
	wg.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for {
		r.syncUntil(t, c1, n1, 10*time.Second, rp)
		r.syncUntil(t, c3, n3, 10*time.Second, rp)
		h1, _ := c1.Get(path)
		h3, _ := c3.Get(path)
		got := []string{h1.Head().String(), h3.Head().String()}
		for _, n := range r.nodes {
			got = append(got, r.head(t, n, path))
		}
		if h := got[0]; h != e1.String() && h != e3.String() && h != base.String() && !slices.ContainsFunc(got, func(s string) bool { return s != h }) {
			it, _ := c1.Get(path)
			if a, b := it.Get("a"), it.Get("b"); a != "edited by a" || b != "edited by b" {
				t.Fatalf("the merge holds a=%v b=%v, want both edits", a, b)
			}
			t.Logf("merge commit %s on both clients and all three nodes", h)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no common merge head after 30s: clients %s %s, nodes %s (edits %s %s)", got[0], got[1], got[2:], e1, e3)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rigAckSurvivesKill: a client writes through n1 (--ack-replicas 1)
// while n2 is killed with SIGKILL; every write whose sync succeeded is on
// n1 and on n2 or n3 right after the acknowledgment, and on n2 once it
// restarts. With n2 and n3 both killed, n1 answers 503, the client keeps
// its write, and its retry succeeds once they are back.
func rigAckSurvivesKill(t *testing.T, r *rig) {
	const rp = "/data/ack"
	n1, n2, n3 := r.nodes[0], r.nodes[1], r.nodes[2]
	c := dbtest.OpenDB(t, nil)
	acked := map[string]commit.ID{}
	var killed atomic.Bool
	write := func(i int) {
		key := fmt.Sprintf("w%03d", i)
		id, err := c.Put(rp+"/"+key, goatdb.Fields{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Sync(ctx, n1.url, rp); err != nil {
			t.Logf("write %d not acknowledged: %v", i, err)
			return
		}
		acked[key] = id
		// Acknowledged: on n1, and on a peer already.
		path := rp + "/" + key
		if r.head(t, n1, path) != id.String() {
			t.Errorf("acknowledged write %d is not on n1", i)
		}
		wasKilled := killed.Load()
		on2, on3 := !wasKilled && r.head(t, n2, path) == id.String(), r.head(t, n3, path) == id.String()
		if !on2 && !on3 {
			t.Errorf("acknowledged write %d is on neither n2 nor n3 (n2 killed: %v)", i, wasKilled)
		}
	}
	i := 0
	for ; i < 8; i++ {
		write(i)
	}
	// Kill n2 while writes are in flight.
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(20 * time.Millisecond)
		killed.Store(true)
		n2.kill(t)
	})
	for ; i < 24; i++ {
		write(i)
	}
	wg.Wait()
	if len(acked) < 16 {
		t.Fatalf("only %d of %d writes acknowledged with n1 and n3 up", len(acked), i)
	}
	if d := r.waitAll(t, n3, rp, acked, 10*time.Second); d > 0 {
		t.Logf("n3 held every acknowledged write %v after the last acknowledgment", d)
	}
	restarted := time.Now()
	n2.start(t)
	served := time.Since(restarted)
	d := r.waitAll(t, n2, rp, acked, 20*time.Second)
	t.Logf("n2 caught up on %d acknowledged writes %v after it served again (%v to start serving)", len(acked), d, served)

	// n2 and n3 down: n1 cannot acknowledge.
	n2.kill(t)
	n3.kill(t)
	last, err := c.Put(rp+"/lonely", goatdb.Fields{"i": -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	_, err = c.Sync(ctx, n1.url, rp)
	cancel()
	var se *goatdb.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Fatalf("sync with n1 alone: %v, want 503", err)
	}
	if it, err := c.Get(rp + "/lonely"); err != nil || it.Head() != last {
		t.Fatalf("the client lost its unacknowledged write: %v %v", it.Head(), err)
	}
	n2.start(t)
	n3.start(t)
	r.syncUntil(t, c, n1, 30*time.Second, rp)
	acked["lonely"] = last
	for _, n := range r.nodes {
		r.waitAll(t, n, rp, acked, 20*time.Second)
	}
}

// rigFailover: a client syncing in the background with n1, n2, n3 and
// Failover keeps writing while n1 is stopped; its writes reach n2, and
// n1, restarted, catches up on them.
func rigFailover(t *testing.T, r *rig) {
	const rp = "/data/failover"
	n1, n2 := r.nodes[0], r.nodes[1]
	c := dbtest.OpenDB(t, nil)
	s, err := c.StartSync([]string{n1.url, n2.url, r.nodes[2].url}, &goatdb.SyncOptions{
		Repos: []string{rp}, Failover: true, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	written := map[string]commit.ID{}
	put := func(i int) {
		key := fmt.Sprintf("w%03d", i)
		id, err := c.Put(rp+"/"+key, goatdb.Fields{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		written[key] = id
	}
	for i := range 5 {
		put(i)
	}
	r.waitAll(t, n2, rp, written, 20*time.Second)
	n1.stop(t)
	stopped := time.Now()
	for i := 5; i < 20; i++ {
		put(i)
		time.Sleep(20 * time.Millisecond)
	}
	d := r.waitAll(t, n2, rp, written, 20*time.Second)
	t.Logf("with n1 stopped, n2 held all %d writes %v after the last (%v after the stop)", len(written), d, time.Since(stopped))
	n1.start(t)
	d = r.waitAll(t, n1, rp, written, 20*time.Second)
	t.Logf("n1 caught up %v after it served again", d)
}

// rigRevocation: alice logs in on n1; once her certificate replicated, n3
// takes her session; revoked on n1, her session is refused by n3 within a
// second.
func rigRevocation(t *testing.T, r *rig) {
	n1, n3 := r.nodes[0], r.nodes[2]
	code := addUser(t, n1.dir, "alice")
	c := dbtest.OpenDB(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.LoginCode(ctx, n1.url, "alice", code); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		l, err := c.WhoAmI(ctx, n3.url)
		if err == nil && l.User == "alice" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("n3 does not take alice's session after %v: %+v %v", time.Since(start), l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("n3 took alice's session %v after her login on n1", time.Since(start))

	ok(t, n1.dir, "user", "revoke", "alice")
	revoked := time.Now()
	for {
		l, err := c.WhoAmI(ctx, n3.url)
		if errors.Is(err, goatdb.ErrUnauthenticated) {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("n3 still answers the revoked session %v after the revocation on n1: %+v %v", time.Since(revoked), l, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("n3 refused the revoked session %v after the revocation on n1", time.Since(revoked))
}

// rigCompaction: each node compacts at a different time (goatdb gc
// --force through its admin socket, while it serves), with writes through
// another node in between. A client in sync with every node moves no
// commit syncing with a node that just compacted, nor with any node at
// the end; the nodes list the same items with the same heads, and their
// /v1/repos counts agree.
func rigCompaction(t *testing.T, r *rig) {
	const rp = "/data/gc"
	c := dbtest.OpenDB(t, nil)
	written := map[string]commit.ID{}
	// round writes through via, waits until every node holds the writes,
	// then syncs the client with every node.
	round := func(from, to int, via *rigNode) {
		for i := from; i < to; i++ {
			key := fmt.Sprintf("k%03d", i%20)
			id, err := c.Put(rp+"/"+key, goatdb.Fields{"i": i})
			if err != nil {
				t.Fatal(err)
			}
			written[key] = id
		}
		r.syncUntil(t, c, via, 20*time.Second, rp)
		for _, n := range r.nodes {
			r.waitAll(t, n, rp, written, 20*time.Second)
		}
		for _, n := range r.nodes {
			if st := r.syncUntil(t, c, n, 20*time.Second, rp); st.CommitsSent+st.CommitsReceived > 0 && n != via {
				// Not compaction: the client does not know that n holds
				// by replication what it synced with via.
				t.Logf("the client re-sent %s %d commits it had synced with %s, which %s already held by replication", n.name, st.CommitsSent, via.name, n.name)
			}
		}
	}
	moved := func(when string) {
		for _, n := range r.nodes {
			st := r.syncUntil(t, c, n, 20*time.Second, rp)
			if st.CommitsSent != 0 || st.CommitsReceived != 0 {
				t.Errorf("%s, a sync with %s moved %d commits out and %d in, want none", when, n.name, st.CommitsSent, st.CommitsReceived)
			}
		}
	}
	for i, n := range r.nodes {
		round(20*i, 20*i+40, r.nodes[(i+1)%3])
		out := rigCLI(t, n.dir, "gc", "--force", rp)
		t.Logf("gc on %s: %s", n.name, strings.TrimSpace(out))
		if !strings.Contains(out, rp+":") || !strings.Contains(out, "(pause ") {
			t.Errorf("gc on %s printed %q, want %s compacted", n.name, out, rp)
		}
		moved("right after " + n.name + " compacted")
	}
	moved("after the compactions")
	want := r.heads(t, r.nodes[0], rp)
	counts := r.repoCounts(t, r.nodes[0])
	for _, n := range r.nodes[1:] {
		if got := r.heads(t, n, rp); !mapsEqual(got, want) {
			t.Errorf("%s lists other items or heads than n1: %v, n1 %v", n.name, got, want)
		}
		if got := r.repoCounts(t, n); !mapsEqual(got, counts) {
			t.Errorf("%s /v1/repos counts %v, n1 %v", n.name, got, counts)
		}
	}
	if counts[rp] != 20 {
		t.Errorf("/v1/repos counts %d items in %s, want 20", counts[rp], rp)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// BenchmarkCrossNodeArrival times a write from the start of its sync to
// n1 (--ack-replicas 1) until a second client, syncing in the background
// with n3, holds it; it reports the median and 99th percentile.
func BenchmarkCrossNodeArrival(b *testing.B) {
	skipRig(b)
	r := newRig(b, rigOptions{ackReplicas: 1, ackTimeout: 5 * time.Second})
	const rp, path = "/data/arrival", "/data/arrival/k"
	writer, reader := dbtest.OpenDB(b, nil), dbtest.OpenDB(b, nil)
	s, err := reader.StartSync([]string{r.nodes[2].url}, &goatdb.SyncOptions{Repos: []string{rp}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan int64, 1024)
	go func() {
		for it, err := range reader.Watch(ctx, path) {
			if err == nil && it.Exists() {
				if v, ok := it.Get("i").(int64); ok {
					seen <- v
				} else if f, ok := it.Get("i").(float64); ok {
					seen <- int64(f)
				}
			}
		}
	}()
	var times []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := writer.Put(path, goatdb.Fields{"i": i}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := writer.Sync(sctx, r.nodes[0].url, rp)
		scancel()
		if err != nil {
			b.Fatalf("sync %d with n1: %v", i, err)
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case v := <-seen:
				if v == int64(i) {
					break wait
				}
			case <-timeout:
				b.Fatalf("write %d did not reach the client of n3 in 10s", i)
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	pct := func(p float64) float64 {
		return float64(times[min(len(times)-1, int(p*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
