package goatdb_test

// Benchmarks of GoatDB's workload: schema "test" v1 {title string, count
// number (default 0), tags set (default empty)}, item i =
// {title: "Item i", count: i, tags: {"tag"+i, "category"+(i%5)}} in
// /test/basic. Every benchmark runs over the modes {signed,trusted} x
// {sync,async} unless its name says otherwise.
//
//	go test -run='^$' -bench=. -benchmem .
//
// The 100,000-item data directories are built once per process (per
// signing mode; durability does not change what is on disk) in a temp dir
// that TestMain removes.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
	"github.com/goatdb/goatdb/vfs"
)

const benchRepo = "/test/basic"

// benchTmp holds the cached 100k-item directories; TestMain removes it.
var (
	benchTmpOnce sync.Once
	benchTmp     string
	benchTmpErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTmp != "" {
		os.RemoveAll(benchTmp)
	}
	os.Exit(code)
}

type benchMode struct {
	name       string
	trusted    bool
	durability goatdb.Durability
}

var benchModes = []benchMode{
	{"signed/sync", false, goatdb.Sync},
	{"signed/async", false, goatdb.Async},
	{"trusted/sync", true, goatdb.Sync},
	{"trusted/async", true, goatdb.Async},
}

func (m benchMode) signing() string {
	if m.trusted {
		return "trusted"
	}
	return "signed"
}

func benchSchemas(tb testing.TB) *schema.Registry {
	reg := schema.NewRegistry()
	err := reg.Register(schema.Schema{NS: "test", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString},
		{Name: "count", Type: item.TypeNumber, Default: item.Number(0)},
		{Name: "tags", Type: item.TypeSet, Default: item.StringSet()},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

func openBench(tb testing.TB, dir string, m benchMode) *goatdb.DB {
	db, err := goatdb.Open(dir, &goatdb.Options{Durability: m.durability, Trusted: m.trusted, Schemas: benchSchemas(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func benchFields(i int) goatdb.Fields {
	s := strconv.Itoa(i)
	return goatdb.Fields{
		"title": "Item " + s,
		"count": i,
		"tags":  []string{"tag" + s, "category" + strconv.Itoa(i%5)},
	}
}

var withTest = goatdb.WithSchema("test")

// createItems creates n items in one batch and returns their paths.
func createItems(tb testing.TB, db *goatdb.DB, n int) []string {
	b := db.Batch()
	paths := make([]string, n)
	for i := range n {
		paths[i] = b.Create(benchRepo, benchFields(i), withTest)
	}
	if _, err := b.Commit(); err != nil {
		tb.Fatal(err)
	}
	return paths
}

func forModes(b *testing.B, fn func(b *testing.B, m benchMode)) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			fn(b, m)
		})
	}
}

func BenchmarkCreate(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		i := 0
		for b.Loop() {
			if _, err := db.Create(benchRepo, benchFields(i), withTest); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkReadByPath(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		paths := createItems(b, db, 1000)
		i := 0
		for b.Loop() {
			if _, err := db.Get(paths[i%len(paths)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		paths := createItems(b, db, 1000)
		i := 0
		for b.Loop() {
			k := len(paths) + i
			s := strconv.Itoa(k)
			f := goatdb.Fields{"title": "Item " + s, "count": k, "tags": []string{"tag" + s, "category" + strconv.Itoa(k%5)}}
			if _, err := db.Put(paths[i%len(paths)], f, withTest); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkBulkCreate100(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		n := 0
		for b.Loop() {
			batch := db.Batch()
			for j := range 100 {
				batch.Create(benchRepo, benchFields(n*100+j), withTest)
			}
			if _, err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*100), "ns/item")
	})
}

func BenchmarkBulkRead100(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		paths := createItems(b, db, 100)
		n := 0
		for b.Loop() {
			for _, p := range paths {
				if _, err := db.Get(p); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*100), "ns/item")
	})
}

func BenchmarkCount(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		createItems(b, db, 100)
		for b.Loop() {
			if n, err := db.Count(benchRepo); err != nil || n != 100 {
				b.Fatal(n, err)
			}
		}
	})
}

func BenchmarkKeys(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		createItems(b, db, 100)
		for b.Loop() {
			if keys, err := db.Keys(benchRepo, false); err != nil || len(keys) != 100 {
				b.Fatal(len(keys), err)
			}
		}
	})
}

// The shared 100,000-item data directories, one per signing mode.
const bigN = 100_000

var big = map[string]*bigDir{"signed": {}, "trusted": {}}

type bigDir struct {
	once sync.Once
	dir  string
	path string // one item's path
	err  error
}

// bigDirFor returns the 100k-item data directory for m's signing mode,
// building it (async, in batches of 1000) on first use.
func bigDirFor(b *testing.B, m benchMode) *bigDir {
	benchTmpOnce.Do(func() { benchTmp, benchTmpErr = os.MkdirTemp("", "goatdb-bench-") })
	if benchTmpErr != nil {
		b.Fatal(benchTmpErr)
	}
	d := big[m.signing()]
	d.once.Do(func() {
		start := time.Now()
		d.dir = filepath.Join(benchTmp, m.signing())
		db, err := goatdb.Open(d.dir, &goatdb.Options{Durability: goatdb.Async, Trusted: m.trusted, Schemas: benchSchemas(b)})
		if err != nil {
			d.err = err
			return
		}
		for i := 0; i < bigN && d.err == nil; i += 1000 {
			batch := db.Batch()
			for j := i; j < i+1000; j++ {
				p := batch.Create(benchRepo, benchFields(j), withTest)
				if j == bigN/2 {
					d.path = p
				}
			}
			_, d.err = batch.Commit()
		}
		d.err = cmpErr(d.err, db.Close())
		b.Logf("built %d %s items in %v", bigN, m.signing(), time.Since(start))
	})
	if d.err != nil {
		b.Fatal(d.err)
	}
	return d
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

var sink float64

func BenchmarkReadAll100k(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		d := bigDirFor(b, m)
		db := openBench(b, d.dir, m)
		defer db.Close()
		if _, err := db.Count(benchRepo); err != nil { // loads the repository
			b.Fatal(err)
		}
		for b.Loop() {
			n := 0
			for it, err := range db.All(benchRepo) {
				if err != nil {
					b.Fatal(err)
				}
				title, _ := it.Value("title")
				count, _ := it.Value("count")
				tags, _ := it.Value("tags")
				sink += float64(len(title.Str())) + count.Float() + float64(tags.Len())
				n++
			}
			if n != bigN {
				b.Fatalf("read %d items, want %d", n, bigN)
			}
		}
	})
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkOpen100k(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		d := bigDirFor(b, m)
		var heap float64
		n := 0
		for b.Loop() {
			b.StopTimer()
			before := heapAlloc()
			b.StartTimer()
			db := openBench(b, d.dir, m)
			if _, err := db.Get(d.path); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			after := heapAlloc()
			heap += float64(after) - float64(before)
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			n++
		}
		b.ReportMetric(heap/float64(n)/bigN, "heapB/item")
	})
}

// BenchmarkUpdateBytesOnDisk measures how much the log grows per one-field
// update (count) of an existing item.
func BenchmarkUpdateBytesOnDisk(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		dir := b.TempDir()
		db := openBench(b, dir, m)
		defer db.Close()
		paths := createItems(b, db, 1000)
		logPath := filepath.Join(dir, "test", "basic.log")
		size := func() int64 {
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(logPath)
			if err != nil {
				b.Fatal(err)
			}
			return fi.Size()
		}
		before := size()
		n := 0
		for b.Loop() {
			if _, err := db.Put(paths[n%len(paths)], goatdb.Fields{"count": len(paths) + n}, withTest); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(size()-before)/float64(n), "diskB/op")
	})
}

// BenchmarkFdatasync is the baseline for Create under Sync durability:
// append 200 bytes to a file and fdatasync it.
func BenchmarkFdatasync(b *testing.B) {
	b.ReportAllocs()
	f, err := vfs.OS.OpenFile(filepath.Join(b.TempDir(), "f"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 200)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentWriters creates items under Sync durability from 1 and
// from 64 goroutines; writes/s is the total throughput.
func BenchmarkConcurrentWriters(b *testing.B) {
	for _, m := range []benchMode{benchModes[0], benchModes[2]} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/%d", m.signing(), writers), func(b *testing.B) {
				b.ReportAllocs()
				fsys := &countingFS{FS: vfs.OS}
				db, err := goatdb.Open(b.TempDir(), &goatdb.Options{Durability: m.durability, Trusted: m.trusted, Schemas: benchSchemas(b), FS: fsys})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				// Open the repository (its creation syncs too), then count.
				if _, err := db.Create(benchRepo, benchFields(0), withTest); err != nil {
					b.Fatal(err)
				}
				fsys.syncs.Store(0)
				fsys.syncNanos.Store(0)
				var next atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if _, err := db.Create(benchRepo, benchFields(int(i)), withTest); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
				if syncs := fsys.syncs.Load(); syncs > 0 {
					b.ReportMetric(float64(b.N)/float64(syncs), "writes/fsync")
					b.ReportMetric(float64(fsys.syncNanos.Load())/float64(syncs)/1e3, "µs/fsync")
				}
			})
		}
	}
}

// countingFS counts the Syncs of the files it opens and the time they take.
type countingFS struct {
	vfs.FS
	syncs     atomic.Int64
	syncNanos atomic.Int64
}

func (c *countingFS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c}, nil
}

type countingFile struct {
	vfs.File
	c *countingFS
}

func (f countingFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.c.syncNanos.Add(int64(time.Since(start)))
	f.c.syncs.Add(1)
	return err
}

// incrementCount is an Update function adding 1 to the field count.
func incrementCount(it goatdb.Item) (goatdb.Fields, error) {
	n, _ := it.Value("count")
	return goatdb.Fields{"count": n.Float() + 1}, nil
}

// BenchmarkUpdateVsPut sets the count of one uncontended item, in turns,
// with Put (the new value given) and with Update (the value read and
// incremented): ns/op is one of each; put-ns and update-ns each alone, and
// update/put their ratio.
func BenchmarkUpdateVsPut(b *testing.B) {
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		path := createItems(b, db, 1)[0]
		ctx := b.Context()
		var put, update time.Duration
		i := 0
		for b.Loop() {
			start := time.Now()
			// -i-1 differs from what the last Update left (-i+1), so
			// every Put writes.
			if _, err := db.Put(path, goatdb.Fields{"count": -i - 1}, withTest); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if _, err := db.Update(ctx, path, incrementCount, withTest); err != nil {
				b.Fatal(err)
			}
			put, update = put+mid.Sub(start), update+time.Since(mid)
			i++
		}
		b.ReportMetric(float64(put.Nanoseconds())/float64(i), "put-ns")
		b.ReportMetric(float64(update.Nanoseconds())/float64(i), "update-ns")
		b.ReportMetric(float64(update)/float64(put), "update/put")
	})
}

// BenchmarkUpdateContended increments the count of one item b.N times
// from one goroutine, then b.N times from 8 at once: ops/s for each, and
// contended/alone the ratio of their throughputs.
func BenchmarkUpdateContended(b *testing.B) {
	const writers = 8
	forModes(b, func(b *testing.B, m benchMode) {
		db := openBench(b, b.TempDir(), m)
		defer db.Close()
		path := createItems(b, db, 1)[0]
		ctx := b.Context()
		run := func(goroutines int) time.Duration {
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range goroutines {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := db.Update(ctx, path, incrementCount, withTest); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			return time.Since(start)
		}
		b.ResetTimer()
		alone := run(1)
		contended := run(writers)
		b.StopTimer()
		it, err := db.Get(path)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := it.Value("count"); n.Float() != float64(2*b.N) {
			b.Fatalf("count %v after %d increments", n.Float(), 2*b.N)
		}
		aloneRate := float64(b.N) / alone.Seconds()
		contendedRate := float64(b.N) / contended.Seconds()
		b.ReportMetric(aloneRate, "alone-ops/s")
		b.ReportMetric(contendedRate, "contended-ops/s")
		b.ReportMetric(contendedRate/aloneRate, "contended/alone")
	})
}
