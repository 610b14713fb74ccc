package server_test

// A server killed with SIGKILL loses no commit it acknowledged: the test
// binary re-executes itself as a child process that serves a data
// directory; clients write and sync against it until the parent kills it,
// then the parent opens the directory and looks for every acknowledged
// value.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// killServerEnv names the data directory the child process serves.
const killServerEnv = "GOATDB_TEST_SERVER_KILL_DIR"

// killRepos are the repositories the clients of TestServerKill write to.
var killRepos = []string{"/data/kill", "/data/kill2"}

// TestServerKillChild is the child process of TestServerKill: it serves
// the directory in $GOATDB_TEST_SERVER_KILL_DIR with the default (Sync)
// durability, prints "url URL", and serves until it is killed, its
// standard input ends (the parent is gone) or a minute passes.
func TestServerKillChild(t *testing.T) {
	dir := os.Getenv(killServerEnv)
	if dir == "" {
		t.Skip("child process of TestServerKill")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		fail(err)
	}
	srv, err := server.New(db, &server.Options{RateLimit: -1})
	if err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	if _, err := fmt.Printf("url http://%s\n", ln.Addr()); err != nil {
		os.Exit(3)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(3) // the parent is gone
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Serve(ctx, ln); err != nil {
		fail(err)
	}
	os.Exit(4)
}

// killClient is one client of TestServerKill: it writes its own keys,
// each with increasing values, and syncs after every few writes.
type killClient struct {
	db      *goatdb.DB
	name    string
	written map[string]int // key path → last value written
	acked   map[string]int // key path → last value written before a sync that succeeded
}

// step writes two to four items (in both repositories), then syncs; it
// reports whether the sync succeeded, in which case everything written so
// far is acknowledged.
func (c *killClient) step(ctx context.Context, url string, i int) (bool, error) {
	for j := range 2 + i%3 {
		n := 4*i + j
		path := fmt.Sprintf("%s/%s-k%02d", killRepos[n%len(killRepos)], c.name, n%17)
		if _, err := c.db.Put(path, goatdb.Fields{"v": float64(n)}); err != nil {
			return false, err
		}
		c.written[path] = n
	}
	if _, err := c.db.Sync(ctx, url); err != nil {
		return false, nil
	}
	for k, v := range c.written {
		c.acked[k] = v
	}
	return true, nil
}

// startKillChild starts the child process on dir and returns it with the
// URL it serves.
func startKillChild(t *testing.T, dir string) (*exec.Cmd, string, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killServerEnv+"="+dir)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "url "); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			cmd.Wait()
			t.Fatalf("child printed no URL\n%s", stderr)
		}
		return cmd, u, stderr
	case <-time.After(20 * time.Second):
		t.Fatalf("child printed no URL in 20s\n%s", stderr)
	}
	return nil, "", nil
}

// TestServerKill kills a serving child process with SIGKILL while clients
// sync with it, at several points, and checks that every value a
// successful sync acknowledged is on the server's disk and that its logs
// check clean.
func TestServerKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	points := []int{3, 10, 30} // acknowledged syncs before the kill
	if dbtest.Long() {
		points = append(points, 100, 300)
	}
	for _, target := range points {
		t.Run(fmt.Sprintf("after=%d", target), func(t *testing.T) {
			dir := t.TempDir()
			cmd, url, stderr := startKillChild(t, dir)

			clients := make([]*killClient, 3)
			for i := range clients {
				clients[i] = &killClient{db: dbtest.OpenDB(t, nil), name: fmt.Sprintf("c%d", i), written: map[string]int{}, acked: map[string]int{}}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var acks atomic.Int64
			reached := make(chan struct{})
			var once sync.Once
			errs := make(chan error, len(clients))
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						ok, err := c.step(ctx, url, i)
						if err != nil {
							errs <- fmt.Errorf("%s: %w", c.name, err)
							return
						}
						if ok && acks.Add(1) >= int64(target) {
							once.Do(func() { close(reached) })
						}
					}
				})
			}
			// The other clients are mid-sync when the child dies.
			select {
			case <-reached:
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(30 * time.Second):
				t.Fatalf("%d syncs acknowledged in 30s, want %d\n%s", acks.Load(), target, stderr)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
			werr := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v\n%s", werr, stderr)
			}
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("killed after %d acknowledged syncs", acks.Load())

			sdb := dbtest.OpenDBIn(t, dir, nil)
			checkKilled(t, sdb, clients)
		})
	}
}

// checkKilled fails unless the server holds every acknowledged value (or
// a later one written by the same client), nothing that was never
// written, and repositories that check clean.
func checkKilled(t *testing.T, sdb *goatdb.DB, clients []*killClient) {
	t.Helper()
	written := map[string]int{}
	nacked := 0
	for _, c := range clients {
		for k, v := range c.written {
			written[k] = v
		}
		for k, want := range c.acked {
			nacked++
			it, err := sdb.Get(k)
			if err != nil {
				t.Errorf("acknowledged %s=%d: %v", k, want, err)
				continue
			}
			got, ok := it.Get("v").(float64)
			if !ok || int(got) < want || int(got) > c.written[k] {
				t.Errorf("%s = %v on the server, acknowledged %d, last written %d", k, it.Get("v"), want, c.written[k])
			}
		}
	}
	if nacked == 0 {
		t.Fatal("no value was acknowledged")
	}
	for _, p := range killRepos {
		r, err := sdb.LookupRepo(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if d := r.Damage(); len(d) > 0 {
			t.Errorf("%s: the kill left damage: %v", p, d)
		}
		if ps := r.Check(); len(ps) > 0 {
			t.Errorf("%s: %d problems, first: %v", p, len(ps), ps[0])
		}
		for it, err := range sdb.All(p) {
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := written[it.Path()]; !ok {
				t.Errorf("the server holds %s, which no client wrote", it.Path())
			}
		}
	}
}
