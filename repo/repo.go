package repo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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

// Validator checks an item value against its schema (schema.Registry is
// one).
type Validator interface {
	Validate(it item.Item, s commit.Schema) error
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
	// Validator, if set, checks the value of every commit ReceiveComplete
	// takes (from a peer not trusted to respect the schemas) against its
	// schema; a commit that fails is refused with the reason. Merges are
	// not checked: they combine values that were.
	Validator Validator
	// Name is the repository's path, /type/repo. A named repository writes
	// commits that name it (commit version 2), and Receive refuses a
	// commit that names another repository, or none. Empty writes and
	// takes commits that name no repository (version 1).
	Name string
	// MaxSkew is how far in the future of this peer's clock a received
	// commit may be stamped; 0 means DefaultMaxSkew. A commit stamped
	// later would win every last-writer-wins merge for ever.
	MaxSkew time.Duration
}

// DefaultMaxSkew is the clock skew Receive allows by default.
const DefaultMaxSkew = 5 * time.Minute

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
	if o.MaxSkew < 0 {
		return fmt.Errorf("repo: negative clock skew")
	}
	if o.Name != "" {
		if err := commit.ValidRepo(o.Name); err != nil {
			return fmt.Errorf("repo: name: %w", err)
		}
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
	if o.MaxSkew == 0 {
		o.MaxSkew = DefaultMaxSkew
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
	log     *logWriter       // nil when read-only

	// pins is read-held by Pin's holders and held by a compaction's swap,
	// which waits for them; taken before mu.
	pins sync.RWMutex

	ordMu  sync.Mutex   // held by whoever numbers commits and items (node.c.ord, itemState.ord)
	lazyMu sync.Mutex   // held to read from the log a lazy head value that does not decode (itemState.decode)
	mu     sync.RWMutex // guards everything below
	// schemas holds one copy of each schema, for nodes (internSchema),
	// and lastSchema the last asked for.
	schemas    map[commit.Schema]*commit.Schema
	lastSchema *commit.Schema
	epoch      uint64 // the log's epoch (from its header; compaction changes it)
	horizon    int64  // the log's horizon (Unix ms); 0 if never compacted
	commits    commitIndex
	items      itemIndex
	list       []*itemState          // every item in order of first commit, for iteration
	waiting    map[commit.ID][]*node // id awaited → commits waiting for it to complete
	entries    []*node               // every commit in log order
	slab       []byte                // where stored forms are packed (stored.go)
	fresh      []*node               // commits still holding their decoded form (stored.go)
	helds      []held                // where nodes' helds are allocated (stored.go)
	encFrom    int                   // entries before it hold no encoding once durable (stored.go)
	encHeld    int                   // bytes of encoding held by entries[encFrom:]
	nodeSlab   []node                // while a replay inserts: where its nodes are allocated
	decodes    atomic.Int64          // commits decoded again from their encoding or the log (stored.go)
	rd         logReader             // reads commits not in memory from the log (stored.go)
	logVer     uint32                // the log's format version (log.go)
	indexed    uint64                // the log length the head index read at open covers (headindex.go)
	noIndex    bool                  // load replays the whole log: the index did not fit it
	unsynced   func() error          // create: the syncs a new log's first record waits for (logWriter.pre)
	badWhy     map[*node]string      // why each bad node (node.bad) is invalid
	indexing   bool                  // a head index is being written in the background
	damageMet  atomic.Bool           // a read or compaction met damage: no head index (headindex.go)
	seq        uint64                // log position after the last commit
	live       int                   // items whose head is not deleted
	index      liveIndex             // the live items in key order (index.go)
	changed    chan struct{}         // closed and replaced when seq advances, if watched
	watched    atomic.Bool           // someone took changed since it was last replaced
	damage     []Damage              // damaged ranges found at open (kept in the log only when read-only)
	closed     bool

	// prevEpoch is the epoch of the log this one was compacted from;
	// listed holds, while the log is replayed, the shallow commits of its
	// horizon records (horizon.go).
	prevEpoch uint64
	listed    map[idPrefix]shallowEntry
	// While a compaction plans (compact.go): the log position it covers,
	// and the marks of the commits it keeps and of those that completed
	// since it began.
	planEnd            uint64
	keepMark, lateMark uint32
	compactions        uint32
	// quarantined lists the ranges in the quarantine file.
	quarantined []Quarantined
	rebuilt     bool // load rebuilt the log around damage once
	// tentative holds, under Sync durability, the batches logged but not
	// yet durable, in log order; held their commits' ids; inflight the
	// pending head of each item a local write changed (tentative.go).
	tentative []*batch
	held      map[commit.ID]bool
	inflight  map[string]*pendingHead
	// validating holds the ids of commits ReceiveComplete is inserting:
	// their values are checked by Options.Validator when they complete.
	validating map[commit.ID]bool
	// untrusted holds the ids Receive is inserting: merges among them are
	// recomputed when they complete, even when their parents arrived in
	// the same batch (their contents are unsigned).
	untrusted map[commit.ID]bool
	// excl holds the commits excluded by name (exclude.go); node.out
	// marks them and every commit descending from one. touched lists the
	// exclusion records that changed items, in log order, for Since;
	// exclSeq is the end of the last exclusion record. reinstated holds
	// the quarantined commits a Restore brought back (Reinstated).
	excl       map[commit.ID]*exclusion
	touched    []touch
	exclSeq    uint64
	reinstated map[commit.ID]bool

	// exclMu serializes Exclude, Restore, Discard and Reauthor, so each
	// one resolves its ids against the exclusions the previous one left.
	exclMu sync.Mutex

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
	r := &Repo{path: path, opts: o, commits: newCommitIndex(0), items: newItemIndex(0),
		waiting: map[commit.ID][]*node{}, changed: make(chan struct{}), stop: make(chan struct{}),
		held: map[commit.ID]bool{}, inflight: map[string]*pendingHead{}, excl: map[commit.ID]*exclusion{},
		badWhy: map[*node]string{}}
	if o.Key != nil {
		copy(r.session[:], o.Key.Public().(ed25519.PublicKey))
	}
	if err := r.load(); err != nil {
		if r.log != nil {
			r.log.close()
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.mu.Lock()
	r.releaseLocked()
	r.trimEncodingsLocked()
	r.mu.Unlock()
	if r.log != nil {
		// Merges written at open are held until durable (Sync).
		r.mu.Lock()
		last, held := r.confirmLocked()
		r.mu.Unlock()
		if held {
			r.settleDurable(last)
		}
	}
	if r.log != nil && o.Durability == Async {
		r.wg.Add(1)
		go r.flusher()
	}
	return r, nil
}

// replayHeld is how many decoded commits a replay holds before it drops
// those that are no longer leaves (releaseReplayedLocked).
var replayHeld = 1 << 20

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
			if r.log.pending() > 0 || r.log.Failure() != nil {
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
	if err := r.log.repair(); err != nil {
		return err
	}
	r.mu.RLock()
	t := ticket{}
	if n := len(r.tentative); n > 0 {
		t = r.tentative[n-1].t
	}
	r.mu.RUnlock()
	err := r.log.syncAll()
	if t.end > 0 {
		r.settleDurable(t)
	}
	return err
}

// Health is the state of a repository's storage.
type Health struct {
	// Failure is the write or fsync failure the log has not recovered from
	// yet: writes fail meanwhile (Sync) or wait in memory (Async), and the
	// next flush or write tries again.
	Failure error
	// Quarantined counts the damaged ranges recovery quarantined and that
	// are not resolved; Damaged counts those a read-only open found still
	// in the log.
	Quarantined, Damaged int
}

// OK reports whether nothing is wrong.
func (h Health) OK() bool { return h.Failure == nil && h.Quarantined == 0 && h.Damaged == 0 }

// Health reports the repository's storage state.
func (r *Repo) Health() Health {
	var h Health
	if r.log != nil {
		h.Failure = r.log.Failure()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, q := range r.quarantined {
		if !q.Resolved {
			h.Quarantined++
		}
	}
	h.Damaged = len(r.damage)
	return h
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
		return r.rd.reset()
	}
	err := r.log.close()
	if err == nil {
		r.mu.Lock()
		r.writeIndex()
		r.mu.Unlock()
	}
	return errors.Join(err, r.rd.reset())
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

// Wait blocks until the sequence number exceeds seq, the log is compacted
// (the epoch changes: sequence numbers start over), ctx ends, or the
// repository is closed (ErrClosed).
func (r *Repo) Wait(ctx context.Context, seq uint64) error {
	var epoch uint64
	for first := true; ; first = false {
		r.mu.RLock()
		cur, ch, closed := r.seq, r.changed, r.closed
		if first {
			epoch = r.epoch
		}
		moved := r.epoch != epoch
		r.watched.Store(true)
		r.mu.RUnlock()
		switch {
		case cur > seq, moved:
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
