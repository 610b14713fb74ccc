package main

// The scale benchmark's child processes: the bench binary started again
// with scaleChildEnv set to a role. A child reads its orders on stdin as
// JSON (one line) and answers one JSON line on stdout ({"error": …} if it
// failed); a server child answers its URL, then serves until its stdin
// closes. Progress goes to stderr.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

// scaleChildEnv, set in the environment, makes the bench binary a child
// of the scale benchmark, of the role it names.
const scaleChildEnv = "GOATDB_BENCH_SCALE_CHILD"

// The children's roles.
const (
	roleBuildRepo   = "build-repo"
	roleBuildServer = "build-server"
	roleOpen        = "open"
	roleServe       = "serve"
	roleSync        = "sync"
)

// scaleOrders is what a child does; each role reads the fields it needs.
type scaleOrders struct {
	Dir       string `json:"dir"`
	Items     int    `json:"items"`
	Commits   int    `json:"commits"`
	Repos     int    `json:"repos"`
	RepoItems int    `json:"repo_items"`
	Batch     int    `json:"batch"`
	Workers   int    `json:"workers"`
	Keys      int    `json:"keys"`
	Queries   int    `json:"queries"`
	Seed      uint64 `json:"seed"`
	Bounded   bool   `json:"bounded"` // serve: goatdb serve's bounds on open repositories
	URL       string `json:"url"`     // sync: the server
	Syncs     int    `json:"syncs"`   // sync: syncs after the first
}

func (o *scaleOrders) config() *scaleConfig {
	return &scaleConfig{items: o.Items, commits: o.Commits}
}

// scaleChildMain runs a child of role: 0 on success.
func scaleChildMain(role string, stdin io.Reader, stdout io.Writer) int {
	in := bufio.NewReader(stdin)
	var o scaleOrders
	line, err := in.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale child: orders: %v\n", err)
		return 2
	}
	var out any
	switch role {
	case roleBuildRepo:
		out, err = buildRepoChild(&o)
	case roleBuildServer:
		out, err = buildServerChild(&o)
	case roleOpen:
		out, err = openChild(&o)
	case roleSync:
		out, err = syncChild(&o)
	case roleServe:
		err = serveChild(&o, in, stdout)
		out = struct{}{}
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		b, _ := json.Marshal(map[string]string{"error": role + ": " + err.Error()})
		fmt.Fprintf(stdout, "%s\n", b)
		return 1
	}
	if role != roleServe {
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return 0
}

// buildResult is a build child's answer.
type buildResult struct {
	Commits int   `json:"commits"`
	HWM     int64 `json:"hwm"` // VmHWM at the end
}

// buildRepoChild writes the big repository: version 0 of every item, then
// version 1 of those written twice or more, and so on, each version in
// batches of o.Batch items written by o.Workers goroutines at once (a
// batch hashes and signs its commits on every core), Async durability.
func buildRepoChild(o *scaleOrders) (*buildResult, error) {
	schemas, err := testSchema()
	if err != nil {
		return nil, err
	}
	db, err := goatdb.Open(o.Dir, &goatdb.Options{Durability: goatdb.Async, Schemas: schemas})
	if err != nil {
		return nil, err
	}
	cfg := o.config()
	began, written, next := time.Now(), 0, 0.1
	for j := 0; ; j++ {
		n := 0 // items written a (j+1)-th time: a prefix of the items
		for n < o.Items && cfg.writesOf(n) > j {
			n++
		}
		if n == 0 {
			break
		}
		batches := make(chan int)
		errs := make([]error, o.Workers)
		var wg sync.WaitGroup
		for w := range o.Workers {
			wg.Go(func() {
				for lo := range batches {
					if errs[w] != nil {
						continue
					}
					b := db.Batch()
					for i := lo; i < min(lo+o.Batch, n); i++ {
						b.Put(scalePath(i), fieldsOf(scaleRecord(o.Items, i, j)), withTest)
					}
					_, errs[w] = b.Commit()
				}
			})
		}
		for lo := 0; lo < n; lo += o.Batch {
			batches <- lo
		}
		close(batches)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, errors.Join(err, db.Close())
		}
		written += n
		if f := float64(written) / float64(o.Commits); f >= next || written == o.Commits {
			fmt.Fprintf(os.Stderr, "scale: build: %d of %d commits, %v\n", written, o.Commits, time.Since(began).Round(time.Second))
			for next <= f {
				next += 0.1
			}
		}
	}
	if err := db.Flush(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	err = db.Close()
	return &buildResult{Commits: written, HWM: procStatusBytes(os.Getpid(), "VmHWM")}, err
}

// buildServerChild writes o.Repos repositories of o.RepoItems items each
// (one write per repository; o.Workers repositories at once), Async
// durability, keeping at most 64 of them open.
func buildServerChild(o *scaleOrders) (*buildResult, error) {
	schemas, err := testSchema()
	if err != nil {
		return nil, err
	}
	db, err := goatdb.Open(o.Dir, &goatdb.Options{Durability: goatdb.Async, Schemas: schemas, MaxOpenRepos: 64})
	if err != nil {
		return nil, err
	}
	began := time.Now()
	repos := make(chan int)
	errs := make([]error, o.Workers)
	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Go(func() {
			for j := range repos {
				if errs[w] != nil {
					continue
				}
				b := db.Batch()
				for k := range o.RepoItems {
					b.Put(scaleRepoItem(j, k), fieldsOf(recordOf(k)), withTest)
				}
				_, errs[w] = b.Commit()
			}
		})
	}
	for j := range o.Repos {
		repos <- j
		if (j+1)%max(o.Repos/10, 1) == 0 {
			fmt.Fprintf(os.Stderr, "scale: build: %d of %d repositories, %v\n", j+1, o.Repos, time.Since(began).Round(time.Second))
		}
	}
	close(repos)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := db.Flush(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	err = db.Close()
	return &buildResult{Commits: o.Repos * o.RepoItems, HWM: procStatusBytes(os.Getpid(), "VmHWM")}, err
}

// openResult is what one open of the big repository measured.
type openResult struct {
	OpenNS   float64   `json:"open_ns"`   // goatdb.Open and DB.Repo of the big repository
	RSS      int64     `json:"rss"`       // VmRSS right after
	HWM      int64     `json:"hwm"`       // VmHWM right after: the peak while opening
	HeapLive int64     `json:"heap_live"` // Go heap after a GC
	HeapSys  int64     `json:"heap_sys"`  // Go heap obtained from the system
	Cold     []float64 `json:"cold_ns"`   // the first read of each key
	Hot      []float64 `json:"hot_ns"`    // later reads of the same keys
	Query    []float64 `json:"query_ns"`  // each QueryOnce
	Results  int       `json:"query_results"`
	RSSAfter int64     `json:"rss_after"` // VmRSS after the reads and queries
}

// scaleQuery returns the query the open child times, count ≥ the count of
// the top 1% of items, and how many items it keeps.
func scaleQuery(cfg *scaleConfig) (goatdb.QuerySpec, int) {
	counts := make([]float64, cfg.items)
	for i := range counts {
		counts[i] = float64(i + (cfg.writesOf(i)-1)*cfg.items)
	}
	slices.Sort(counts)
	keep := max(cfg.items/100, 1)
	least := counts[cfg.items-keep]
	return goatdb.QuerySpec{Repo: scaleRepo, Where: func(it goatdb.Item) bool {
		c, _ := it.Value("count")
		return c.Float() >= least
	}}, keep
}

// openChild opens the big repository, then reads o.Keys random keys
// once each (cold), then three times more in new orders (hot), and
// evaluates the query o.Queries times, checking every answer.
func openChild(o *scaleOrders) (*openResult, error) {
	schemas, err := testSchema()
	if err != nil {
		return nil, err
	}
	cfg := o.config()
	spec, want := scaleQuery(cfg)
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	keys := slices.Clone(rng.Perm(o.Items)[:min(o.Keys, o.Items)]) // the permutation is garbage before the open
	paths := make([]string, len(keys))
	for n, i := range keys {
		paths[n] = scalePath(i)
	}
	runtime.GC()
	began := time.Now()
	db, err := goatdb.Open(o.Dir, &goatdb.Options{Schemas: schemas, MustExist: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Repo(scaleRepo); err != nil {
		return nil, err
	}
	res := &openResult{OpenNS: float64(time.Since(began).Nanoseconds())}
	res.RSS, res.HWM = procStatusBytes(os.Getpid(), "VmRSS"), procStatusBytes(os.Getpid(), "VmHWM")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapLive, res.HeapSys = int64(ms.HeapAlloc), int64(ms.HeapSys)
	read := func(n int) (float64, error) {
		t0 := time.Now()
		it, err := db.Get(paths[n])
		d := float64(time.Since(t0).Nanoseconds())
		if err != nil {
			return 0, err
		}
		i := keys[n]
		c, _ := it.Value("count")
		if want := float64(i + (cfg.writesOf(i)-1)*o.Items); c.Float() != want {
			return 0, fmt.Errorf("read %s: count %v, want %v", paths[n], c.Float(), want)
		}
		return d, nil
	}
	for n := range keys {
		d, err := read(n)
		if err != nil {
			return nil, err
		}
		res.Cold = append(res.Cold, d)
	}
	for range 3 {
		for _, n := range rng.Perm(len(keys)) {
			d, err := read(n)
			if err != nil {
				return nil, err
			}
			res.Hot = append(res.Hot, d)
		}
	}
	for range o.Queries {
		t0 := time.Now()
		items, err := db.QueryOnce(context.Background(), spec)
		d := float64(time.Since(t0).Nanoseconds())
		if err != nil {
			return nil, err
		}
		if len(items) != want {
			return nil, fmt.Errorf("query: %d results, want %d", len(items), want)
		}
		res.Query, res.Results = append(res.Query, d), len(items)
	}
	res.RSSAfter = procStatusBytes(os.Getpid(), "VmRSS")
	return res, nil
}

// serveChild serves o.Dir without authentication (server.New, no rate
// limit) on 127.0.0.1, with goatdb serve's bounds on open repositories
// if o.Bounded, until stdin closes. It answers {"url": …} once it
// listens.
func serveChild(o *scaleOrders, stdin io.Reader, stdout io.Writer) error {
	schemas, err := testSchema()
	if err != nil {
		return err
	}
	opts := &goatdb.Options{Schemas: schemas, MustExist: true}
	if o.Bounded {
		limit := raiseFileLimit()
		opts.MaxOpenRepos, opts.MaxOpenRepoBytes = 1000, 512<<20
		if limit > 0 {
			opts.MaxOpenRepos = int(min(limit/4, 1000))
		}
	}
	db, err := goatdb.Open(o.Dir, opts)
	if err != nil {
		return err
	}
	srv, err := server.New(db, &server.Options{RateLimit: -1})
	if err != nil {
		return errors.Join(err, db.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return errors.Join(err, srv.Close(), db.Close())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b, _ := json.Marshal(map[string]string{"url": "http://" + ln.Addr().String()})
	fmt.Fprintf(stdout, "%s\n", b)
	io.Copy(io.Discard, stdin)
	cancel()
	return errors.Join(<-done, srv.Close(), db.Close())
}

// syncStat is what one sync of the sync child moved.
type syncStat struct {
	NS       float64 `json:"ns"`
	Sent     int64   `json:"bytes_sent"`
	Received int64   `json:"bytes_received"`
	Rounds   int     `json:"rounds"`
	Commits  int     `json:"commits_sent"`
}

// syncResult is the sync child's answer.
type syncResult struct {
	OpenNS float64    `json:"open_ns"`
	First  syncStat   `json:"first"`   // the first sync: no resume point
	Later  []syncStat `json:"later"`   // the next ones: with one
	RSS    int64      `json:"rss_end"` // VmRSS at the end
}

// syncChild opens a copy of the big repository, and o.Syncs+1 times
// writes one new commit (an update of one item) and syncs it with the
// server at o.URL, which holds the same data.
func syncChild(o *scaleOrders) (*syncResult, error) {
	schemas, err := testSchema()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	db, err := goatdb.Open(o.Dir, &goatdb.Options{Schemas: schemas}) // makes a session key
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Repo(scaleRepo); err != nil {
		return nil, err
	}
	res := &syncResult{OpenNS: float64(time.Since(began).Nanoseconds())}
	rng := rand.New(rand.NewPCG(o.Seed, 9))
	ctx := context.Background()
	for s := range o.Syncs + 1 {
		i := rng.IntN(o.Items)
		r := scaleRecord(o.Items, i, o.Commits+s)
		if _, err := db.Put(scalePath(i), fieldsOf(r), withTest); err != nil {
			return nil, err
		}
		t0 := time.Now()
		st, err := db.Sync(ctx, o.URL, scaleRepo)
		d := float64(time.Since(t0).Nanoseconds())
		if err != nil {
			return nil, fmt.Errorf("sync %d: %w", s, err)
		}
		if st.CommitsSent != 1 || st.CommitsReceived != 0 {
			return nil, fmt.Errorf("sync %d: %d commits sent and %d received, want 1 and 0", s, st.CommitsSent, st.CommitsReceived)
		}
		one := syncStat{NS: d, Sent: st.BytesSent, Received: st.BytesReceived, Rounds: st.Rounds, Commits: st.CommitsSent}
		if s == 0 {
			res.First = one
		} else {
			res.Later = append(res.Later, one)
		}
	}
	res.RSS = procStatusBytes(os.Getpid(), "VmRSS")
	return res, nil
}

// copyData copies a data directory (its regular files, streamed) for a
// peer of its own: unless keepKey, without its session key, so that the
// copy makes a new session.
func copyData(src, dst string, keepKey bool) error {
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case !d.Type().IsRegular():
			return nil // the admin socket
		}
		return copyScaleFile(path, target)
	})
	if err != nil {
		return err
	}
	if !keepKey {
		if err := os.Remove(filepath.Join(dst, "session.key")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func copyScaleFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
