package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// The environment of TestManyReposUnderFileLimit's child process.
const (
	fdChildDir   = "GOATDB_TEST_FDLIMIT_DIR"    // the data directory to serve
	fdChildLimit = "GOATDB_TEST_FDLIMIT_NOFILE" // RLIMIT_NOFILE to set
	fdChildRepos = "GOATDB_TEST_FDLIMIT_REPOS"  // how many repositories it holds
)

// TestManyReposUnderFileLimit: a server with many more repositories than
// it may open files starts and serves syncs spread over all of them. It
// creates the repositories, then re-runs the test binary with a low
// RLIMIT_NOFILE (2,000 repositories under 256 files; -long: 10,000 under
// 1,024), where a server bounded to a quarter of the limit serves a client
// that syncs a sample of them down and writes back to them.
func TestManyReposUnderFileLimit(t *testing.T) {
	if dir := os.Getenv(fdChildDir); dir != "" {
		fdLimitChild(t, dir)
		return
	}
	t.Parallel() // mostly waiting for fsyncs, here and in the child
	repos, limit := 2000, 256
	if dbtest.Long() {
		repos, limit = 10_000, 1024
	}
	dir := t.TempDir()
	createRepos(t, dir, repos)
	cmd := exec.Command(os.Args[0], "-test.run=^TestManyReposUnderFileLimit$", "-test.count=1", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), fdChildDir+"="+dir, fdChildLimit+"="+strconv.Itoa(limit), fdChildRepos+"="+strconv.Itoa(repos))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestManyReposUnderFileLimit") {
		t.Fatalf("the child process: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "fdlimit:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// fdRepo names the i-th repository.
func fdRepo(i int) string { return fmt.Sprintf("/data/r%05d", i) }

// createRepos writes one item in each of n repositories of a new data
// directory, quickly: Async, on several goroutines.
func createRepos(t *testing.T, dir string, n int) {
	t.Helper()
	db, err := goatdb.Open(dir, &goatdb.Options{Durability: goatdb.Async, FlushInterval: time.Hour, MaxOpenRepos: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 { // creating a log waits for fsyncs: overlap them
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := db.Put(fdRepo(i)+"/x", goatdb.Fields{"n": float64(i)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// fdLimitChild runs in the child process: it lowers RLIMIT_NOFILE, serves
// dir with a bound of a quarter of it, and syncs a sample of repositories
// down to a client and back.
func fdLimitChild(t *testing.T, dir string) {
	limit, _ := strconv.Atoi(os.Getenv(fdChildLimit))
	repos, _ := strconv.Atoi(os.Getenv(fdChildRepos))
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = uint64(limit)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	db, err := goatdb.Open(dir, &goatdb.Options{MaxOpenRepos: limit / 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := server.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	cli, err := goatdb.Open(t.TempDir(), &goatdb.Options{MaxOpenRepos: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	const sample = 100
	var paths []string
	for k := range sample {
		paths = append(paths, fdRepo((k*repos/sample+k*7)%repos))
	}
	// Down, a few repositories per sync: every one must succeed.
	for k := 0; k < len(paths); k += 5 {
		if _, err := cli.Sync(ctx, hs.URL, paths[k:k+5]...); err != nil {
			t.Fatalf("sync %v: %v", paths[k:k+5], err)
		}
	}
	for _, p := range paths {
		var i int
		fmt.Sscanf(p, "/data/r%d", &i)
		if it, err := cli.Get(p + "/x"); err != nil || it.Get("n") != float64(i) {
			t.Fatalf("%s/x on the client: %v, %v", p, it.Get("n"), err)
		}
		if _, err := cli.Put(p+"/back", goatdb.Fields{"from": "client"}); err != nil {
			t.Fatal(err)
		}
	}
	// Back up, all in one call (the client batches under its bound).
	if st, err := cli.Sync(ctx, hs.URL, paths...); err != nil || st.Converged != len(paths) {
		t.Fatalf("sync back: %v, %d converged", err, st.Converged)
	}
	for _, p := range paths {
		if _, err := db.Get(p + "/back"); err != nil {
			t.Fatalf("the server lacks %s/back: %v", p, err)
		}
	}
	if h, err := db.Health(); err != nil || h.Status != goatdb.StatusOK {
		t.Errorf("health %v, %v", h, err)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	t.Logf("fdlimit: %d repositories, RLIMIT_NOFILE %d, %d synced both ways, %d descriptors open at the end", repos, limit, len(paths), len(fds))
}
