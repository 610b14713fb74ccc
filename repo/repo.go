package repo

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// Durability says when a write returns.
type Durability int

const (
	// Sync: a write returns after its record is on stable storage (fdatasync).
	// Concurrent writers share one fsync. Nothing acknowledged is lost.
	Sync Durability = iota
	// Async: a write returns at once; the log is flushed and synced in the
	// background every FlushInterval. A crash loses at most the writes of
	// the last interval, and never leaves the log inconsistent.
	Async
)

// String returns "sync" or "async".
func (d Durability) String() string {
	if d == Async {
		return "async"
	}
	return "sync"
}

// Upgrader converts items between versions of a schema (schema.Registry is
// one). Merges upgrade every leaf to the newest schema among them.
type Upgrader interface {
	Upgrade(it item.Item, from commit.Schema, to uint32) (item.Item, error)
}

// Options configure a repository. The zero value is valid.
type Options struct {
	// FS is the filesystem; nil means vfs.OS.
	FS vfs.FS
	// Durability of writes; Sync by default.
	Durability Durability
	// FlushInterval is how often Async durability flushes; 0 means 50ms.
	FlushInterval time.Duration
	// Key is the session key local commits are written with. Nil means a
	// repository that only reads and receives.
	Key ed25519.PrivateKey
	// Trusted writes unsigned commits and accepts unsigned ones.
	Trusted bool
	// Schemas upgrades items in merges; nil means no upgrades.
	Schemas Upgrader
	// ReadOnly opens without repairing or writing anything.
	ReadOnly bool
	// Logger receives warnings (recovered tails, damaged records); nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Durability != Sync && o.Durability != Async {
		return fmt.Errorf("repo: unknown durability %d", o.Durability)
	}
	if o.Key != nil && len(o.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("repo: session key is %d bytes, want %d", len(o.Key), ed25519.PrivateKeySize)
	}
	if o.FlushInterval < 0 {
		return fmt.Errorf("repo: negative flush interval")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Repo is one repository: an append-only log file and the commit graphs of
// its items. It is safe for concurrent use.
type Repo struct {
	path    string
	opts    Options
	session commit.SessionID
	owner   commit.SessionID // the log's owner (from its header): stored without session bytes
	epoch   uint64           // the log's epoch (from its header)
	log     *logWriter       // nil when read-only

	mu      sync.RWMutex // guards everything below
	commits map[commit.ID]*node
	items   map[string]*itemState
	list    []*itemState          // every item in order of first commit, for iteration
	waiting map[commit.ID][]*node // id awaited → commits waiting for it to complete
	entries []*node               // every commit in log order
	seq     uint64                // log position after the last commit
	live    int                   // items whose head is not deleted
	changed chan struct{}         // closed and replaced when seq advances, if watched
	watched atomic.Bool           // someone took changed since it was last replaced
	damage  []Damage
	closed  bool
	// untrusted holds the ids Receive is inserting: merges among them are
	// recomputed when they complete, even when their parents arrived in
	// the same batch (their contents are unsigned).
	untrusted map[commit.ID]bool

	stop chan struct{} // closed by Close to stop the flusher
	wg   sync.WaitGroup
}

// Open opens the repository log at path, creating it if needed, and
// rebuilds the commit graphs from it. A torn tail is cut off; damaged
// records in the middle are skipped and reported by Damage and Check.
func Open(path string, opts *Options) (*Repo, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	r := &Repo{path: path, opts: o, commits: map[commit.ID]*node{}, items: map[string]*itemState{},
		waiting: map[commit.ID][]*node{}, changed: make(chan struct{}), stop: make(chan struct{})}
	if o.Key != nil {
		copy(r.session[:], o.Key.Public().(ed25519.PublicKey))
	}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if r.log != nil && o.Durability == Async {
		r.wg.Add(1)
		go r.flusher()
	}
	return r, nil
}

// load reads the log, repairs a torn tail and replays every record.
func (r *Repo) load() error {
	data, err := r.opts.FS.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !r.opts.ReadOnly:
		if data, err = r.create(); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	h, err := checkHeader(data)
	if err != nil {
		return err
	}
	r.owner, r.epoch = h.owner, h.epoch
	recs, damage, end := scanLog(data)
	if end < int64(len(data)) {
		r.opts.Logger.Warn("cut torn tail of log", "path", r.path, "offset", end, "bytes", int64(len(data))-end)
	}
	if !r.opts.ReadOnly {
		if err := r.openForAppend(end, int64(len(data))); err != nil {
			return err
		}
	}
	r.damage = damage
	r.replay(recs)
	r.seq = uint64(end)
	return r.settle()
}

// create writes a new log holding only the header, atomically, and
// returns its bytes.
func (r *Repo) create() ([]byte, error) {
	if err := r.opts.FS.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return nil, err
	}
	var e [8]byte
	if _, err := rand.Read(e[:]); err != nil {
		return nil, err
	}
	data := appendHeader(nil, logHeader{owner: r.session, epoch: binary.LittleEndian.Uint64(e[:])})
	return data, vfs.WriteFileAtomic(r.opts.FS, r.path, data, 0o644)
}

// openForAppend opens the log for writing, cutting it at end if the file is
// longer (a torn tail).
func (r *Repo) openForAppend(end, size int64) error {
	f, err := r.opts.FS.OpenFile(r.path, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			return errors.Join(fmt.Errorf("cut torn tail at offset %d: %w", end, err), f.Close())
		}
		if err := f.Sync(); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	r.log = newLogWriter(f, end)
	return nil
}

// replay decodes the records in parallel, commit by commit, and inserts
// them in log order. A record with any bad commit is damaged as a whole.
func (r *Repo) replay(recs []scanned) {
	encs := make([][][]byte, len(recs))
	errs := make([]error, len(recs))
	parallel(len(recs), func(i int, _ *item.Interner, _ *[]byte) { encs[i], errs[i] = recordCommits(recs[i].payload) })
	type job struct{ rec, idx int }
	var jobs []job
	for i, es := range encs {
		for j := range es {
			jobs = append(jobs, job{i, j})
		}
	}
	r.commits = make(map[commit.ID]*node, len(jobs))
	r.items = make(map[string]*itemState, len(jobs))
	r.entries = make([]*node, 0, len(jobs))
	r.list = make([]*itemState, 0, len(jobs))
	decoded := make([]*commit.Commit, len(jobs))
	jobErrs := make([]error, len(jobs))
	decode := func(k int, in *item.Interner, arena *[]byte) {
		enc, err := loadStored(encs[jobs[k].rec][jobs[k].idx], r.owner, arena)
		if err == nil {
			decoded[k], err = commit.DecodeShared(enc, in)
		}
		jobErrs[k] = err
	}
	// Workers decode chunks of whole records in order while this goroutine
	// inserts the chunks already decoded.
	bounds := []int{0}
	for k := 0; k < len(jobs); {
		end := min(k+replayChunk, len(jobs))
		for end < len(jobs) && jobs[end].rec == jobs[end-1].rec {
			end++
		}
		bounds = append(bounds, end)
		k = end
	}
	chunks := len(bounds) - 1
	done := make([]chan struct{}, chunks)
	for c := range done {
		done[c] = make(chan struct{})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Go(func() {
			in := new(item.Interner)
			var arena []byte
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				for k := bounds[c]; k < bounds[c+1]; k++ {
					decode(k, in, &arena)
				}
				close(done[c])
			}
		})
	}
	for c := range chunks {
		<-done[c]
		for k := bounds[c]; k < bounds[c+1]; k++ {
			if i := jobs[k].rec; jobErrs[k] != nil && errs[i] == nil {
				errs[i] = jobErrs[k]
			}
		}
		for k := bounds[c]; k < bounds[c+1]; k++ {
			if i := jobs[k].rec; errs[i] == nil {
				r.insert(decoded[k], uint64(recs[i].end))
			}
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			d := Damage{Offset: recs[i].off, Length: recs[i].end - recs[i].off, Reason: err.Error()}
			r.damage = append(r.damage, d)
		}
	}
	slices.SortFunc(r.damage, func(a, b Damage) int { return cmp.Compare(a.Offset, b.Offset) })
	for _, d := range r.damage {
		r.opts.Logger.Warn("skipped damaged log record", "path", r.path, "offset", d.Offset, "bytes", d.Length, "reason", d.Reason)
	}
}

// replayChunk is about how many commits a replay worker decodes at a time.
const replayChunk = 2048

// parallel runs fn(i) for i in [0, n) on up to GOMAXPROCS goroutines, each
// with its own interner and byte arena.
func parallel(n int, fn func(i int, in *item.Interner, arena *[]byte)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			in := new(item.Interner)
			var arena []byte
			for i := w; i < n; i += workers {
				fn(i, in, &arena)
			}
		})
	}
	wg.Wait()
}

// decodeRecord decodes the commits of one record (for Check); any bad one
// makes the whole record damaged.
func decodeRecord(payload []byte, owner commit.SessionID) ([]*commit.Commit, error) {
	stored, err := recordCommits(payload)
	if err != nil {
		return nil, err
	}
	out := make([]*commit.Commit, len(stored))
	var arena []byte
	for i, st := range stored {
		enc, err := loadStored(st, owner, &arena)
		if err == nil {
			out[i], err = commit.Decode(enc)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// flusher syncs the log in the background under Async durability.
func (r *Repo) flusher() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if r.log.pending() > 0 {
				if err := r.log.syncAll(); err != nil {
					r.opts.Logger.Error("flush log", "path", r.path, "err", err)
				}
			}
		}
	}
}

// Path returns the log file's path.
func (r *Repo) Path() string { return r.path }

// Session returns the session local commits are written by.
func (r *Repo) Session() commit.SessionID { return r.session }

// Flush makes every commit written so far durable.
func (r *Repo) Flush() error {
	if r.log == nil {
		return nil
	}
	return r.log.syncAll()
}

// Close flushes the log and releases the repository.
func (r *Repo) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	close(r.changed) // wake waiters; they see closed
	r.mu.Unlock()
	close(r.stop)
	r.wg.Wait()
	if r.log == nil {
		return nil
	}
	return r.log.close()
}

// Changed returns a channel that is closed when the repository's sequence
// number next advances, or when the repository is closed.
func (r *Repo) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.watched.Store(true)
	return r.changed
}

// Closed reports whether Close was called.
func (r *Repo) Closed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.closed
}

// Wait blocks until the sequence number exceeds seq, ctx ends, or the
// repository is closed (ErrClosed).
func (r *Repo) Wait(ctx context.Context, seq uint64) error {
	for {
		r.mu.RLock()
		cur, ch, closed := r.seq, r.changed, r.closed
		r.watched.Store(true)
		r.mu.RUnlock()
		switch {
		case cur > seq:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
