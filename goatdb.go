package goatdb

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/schema"
	"github.com/goatdb/goatdb/vfs"
)

// Durability says when a write returns; see repo.Sync and repo.Async.
type Durability = repo.Durability

// The durability modes.
const (
	// Sync: writes return once on stable storage (the default).
	Sync = repo.Sync
	// Async: writes return at once and are flushed in the background.
	Async = repo.Async
)

// Options configure a database. The zero value (or nil) means: Sync
// durability, signed commits, no schemas registered, logs discarded.
type Options struct {
	// Durability of writes.
	Durability Durability
	// FlushInterval is how often Async durability flushes; 0 means 50ms.
	FlushInterval time.Duration
	// Trusted writes unsigned commits and accepts unsigned ones: for a
	// database that never syncs with peers it does not trust.
	Trusted bool
	// Schemas is the schema registry; nil means a new empty one.
	Schemas *schema.Registry
	// Logger receives warnings such as recovered logs; nil discards.
	Logger *slog.Logger
	// FS is the filesystem; nil means the operating system's.
	FS vfs.FS
	// ReadOnly opens for reading only, beside a running writer if there is
	// one: nothing is created, repaired or written (not the directory, the
	// lock file or the session key), and writes fail with ErrReadOnly.
	// Each repository is read, when first used, up to its last complete
	// record; a writer's later commits are not seen.
	ReadOnly bool
	// MaxOpenRepos bounds the repositories kept open at once (an open
	// repository holds its items in memory and one file descriptor); 0
	// means no bound. Over it, the least recently used repositories not
	// in use are flushed and closed, and reopened on their next use (see
	// Acquire for what "in use" means).
	MaxOpenRepos int
	// MaxOpenRepoBytes bounds the estimated memory of the open
	// repositories in the same way; 0 means no bound. A repository is
	// estimated at 80 KiB plus 8 bytes per byte of its log.
	MaxOpenRepoBytes int64
	// RepoIdleTimeout closes a repository not in use for this long; 0
	// means never.
	RepoIdleTimeout time.Duration
	// MustExist makes Open fail, creating nothing, when dir is not a goatdb
	// data directory: when it does not exist, is not a directory, or holds
	// no session key (session.key, which every Open that may write creates
	// on a directory's first use, and keeps). The error matches
	// ErrNotDataDir and names the directory and what it lacks. Tools set
	// it so that a mistyped path is an error rather than a new, empty
	// database; it applies to read-only opens too.
	MustExist bool
	// Now is the clock: commits are stamped with it, requests to servers
	// signed with it and certificates checked against it. nil means
	// time.Now. Setting it is for tests and simulations (days of history in
	// a second); a clock behind or ahead of the servers' makes them refuse
	// this peer's requests and commits.
	Now func() time.Time
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Durability != Sync && o.Durability != Async {
		return fmt.Errorf("goatdb: unknown durability %d", o.Durability)
	}
	if o.FlushInterval < 0 {
		return errors.New("goatdb: negative flush interval")
	}
	if o.MaxOpenRepos < 0 || o.MaxOpenRepoBytes < 0 || o.RepoIdleTimeout < 0 {
		return errors.New("goatdb: negative MaxOpenRepos, MaxOpenRepoBytes or RepoIdleTimeout")
	}
	return nil
}

// DB is a goatdb database: a data directory holding one log file per
// repository. It is safe for concurrent use by many goroutines.
type DB struct {
	dir     string
	opts    Options
	fs      vfs.FS
	lock    io.Closer
	key     ed25519.PrivateKey
	session commit.SessionID

	// keyMu guards unsaved: a new session key, and the directories made
	// for it, not yet durable (saveKey).
	keyMu   sync.Mutex
	unsaved func() error

	// mu guards repos, closing, failed, gone and closed; pins go from 0
	// to 1 only under it (see lifecycle.go).
	mu       sync.RWMutex
	repos    map[string]*handle       // open (or opening) repositories by path /type/repo
	closing  map[string]chan struct{} // repositories closing for idleness; closed when done
	failed   map[string]openFailure   // repositories whose log could not be opened
	gone     map[string]RepoHealth    // state (not ok) of repositories closed for idleness
	closed   bool
	nopen    atomic.Int64   // len(repos)
	bytes    atomic.Int64   // estimated memory of the open repositories
	started  time.Time      // for handle.used
	inflight sync.WaitGroup // opens and idle closes under way; Close waits for them
	stopIdle chan struct{}  // stops closeIdleLoop (RepoIdleTimeout)
	idleDone chan struct{}  // closed when closeIdleLoop returns

	queries queryRegistry // open queries (query.go); closed first by Close

	remotesMu sync.Mutex         // guards remotes and syncers
	remotes   map[string]*remote // sync servers by normalised URL (sync.go)
	syncers   map[*Syncer]bool   // running background syncers (syncer.go)
	hooks     map[*openHook]bool // OnRepoOpen callbacks
	resumes   resumeFile         // sync resume points (sync.go)
	creds     credFile           // logins to servers (credentials.go)
}

// Open opens the database in dir, creating the directory and this peer's
// session key on first use. Only one process may have a directory open for
// writing; a second gets an error wrapping ErrLocked.
//
// With Options.ReadOnly, Open creates nothing: a missing directory is an
// error wrapping ErrNotFound, and a missing session key leaves the
// database without one (reads need none). A read-only open takes a shared
// lock on DIR/LOCK when it can, so that no writer starts (and repairs logs)
// while it reads; when a writer holds the directory it proceeds without a
// lock and reads beside it.
//
// With Options.MustExist, Open creates nothing and fails with an error
// matching ErrNotDataDir on a directory that is not a data directory.
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.Schemas == nil {
		o.Schemas = schema.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	db := &DB{dir: dir, opts: o, fs: o.FS, repos: map[string]*handle{}, started: time.Now()}
	db.resumes.db = db
	db.creds.db = db
	if err := db.open(); err != nil {
		if errors.Is(err, ErrNotDataDir) {
			return nil, err // it names the directory
		}
		return nil, fmt.Errorf("goatdb: open %s: %w", dir, err)
	}
	if o.RepoIdleTimeout > 0 {
		db.stopIdle, db.idleDone = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(db.idleDone)
			db.closeIdleLoop(db.stopIdle)
		}()
	}
	return db, nil
}

func (db *DB) open() error {
	if db.opts.MustExist {
		if err := checkDataDir(db.fs, db.dir); err != nil {
			return err
		}
	}
	if db.opts.ReadOnly {
		return db.openReadOnly()
	}
	// A new directory's entry, like a new session key, is made durable
	// at the first use that needs it (saveKey), before anything in the
	// directory is acknowledged.
	syncDirs, err := vfs.MkdirAllDeferred(db.fs, db.dir, 0o755)
	if err != nil {
		return err
	}
	lock, err := db.fs.Lock(db.filePath(lockFile))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("%w: the data directory is in use by another goatdb process; stop it or use another --dir", ErrLocked)
		}
		return err
	}
	db.lock = lock
	created := false
	if db.key, created, err = loadOrCreateKey(db.fs, db.filePath(keyFile)); err != nil {
		return errors.Join(err, lock.Close())
	}
	copy(db.session[:], db.key.Public().(ed25519.PublicKey))
	if created { // else the directories were there, and nothing waits
		db.unsaved = func() error {
			if err := syncDirs(); err != nil {
				return err
			}
			return vfs.WriteFileAtomic(db.fs, db.filePath(keyFile), db.key, 0o600)
		}
	}
	return nil
}

// saveKey makes a new session key durable, with the directories Open made
// for it: at the first use that needs it, not at Open, so that an
// instance costs no fsync until it is used. Whatever depends on the key
// calls it first: opening a repository (whose commits the key signs),
// talking to a server (which learns the session), saving resume points or
// logins, a backup, Session and Close. Until then a crash loses the key
// and nothing else: the next Open makes another. An error is returned
// again by every later call until a retry succeeds.
func (db *DB) saveKey() error {
	db.keyMu.Lock()
	defer db.keyMu.Unlock()
	if db.unsaved == nil {
		return nil
	}
	if err := db.unsaved(); err != nil {
		return fmt.Errorf("goatdb: save the session key in %s: %w", db.dir, err)
	}
	db.unsaved = nil
	return nil
}

// checkDataDir returns an error matching ErrNotDataDir unless dir is a
// goatdb data directory: a directory holding the session key, the file
// a writable open saves at the first use that needs it (saveKey), or at
// Close, and never removes.
func checkDataDir(fsys vfs.FS, dir string) error {
	info, err := fsys.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &notDataDirError{dir, "it does not exist"}
	case err != nil:
		return err
	case !info.IsDir():
		return &notDataDirError{dir, "it is not a directory"}
	}
	_, err = fsys.Stat(filepath.Join(dir, keyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &notDataDirError{dir, "it has no " + keyFile}
	case err != nil:
		return err
	}
	return nil
}

// notDataDirError is the error of Open with Options.MustExist on a
// directory that is not a data directory; it matches ErrNotDataDir.
type notDataDirError struct {
	dir, why string
}

func (e *notDataDirError) Error() string {
	return "goatdb: " + e.dir + " is not a goatdb data directory (" + e.why + ")"
}

func (e *notDataDirError) Is(target error) bool { return target == ErrNotDataDir }

// openReadOnly opens an existing directory without creating anything.
func (db *DB) openReadOnly() error {
	info, err := db.fs.Stat(db.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: the data directory does not exist", ErrNotFound)
	case err != nil:
		return err
	case !info.IsDir():
		return errors.New("the data directory is not a directory")
	}
	if db.lock, err = lockShared(db.fs, db.filePath(lockFile)); err != nil {
		return err
	}
	key, err := loadKey(db.fs, db.filePath(keyFile))
	if err != nil {
		return errors.Join(err, db.lock.Close())
	}
	if key != nil {
		db.key = key
		copy(db.session[:], key.Public().(ed25519.PublicKey))
	}
	return nil
}

// lockShared takes a shared lock on the lock file. When a writer holds it,
// when the file does not exist (no writer has opened the directory), or
// when the platform has no shared locks, it returns a no-op lock: a
// read-only open then reads beside whatever writer there is.
func lockShared(fsys vfs.FS, name string) (io.Closer, error) {
	l, err := fsys.LockShared(name)
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, vfs.ErrLocked), errors.Is(err, fs.ErrNotExist), errors.Is(err, errors.ErrUnsupported):
		return noLock{}, nil
	}
	return nil, err
}

type noLock struct{}

func (noLock) Close() error { return nil }

// Dir returns the data directory.
func (db *DB) Dir() string { return db.dir }

// Session returns this peer's session id (its Ed25519 public key). It is
// zero for a read-only database whose directory has no session key. A
// session key Open made is saved first, so that the id outlives a crash;
// if that fails, the error is logged and returned by the next use that
// needs the key.
func (db *DB) Session() commit.SessionID {
	if err := db.saveKey(); err != nil {
		db.opts.Logger.Error("session key", "err", err)
	}
	return db.session
}

// Schemas returns the schema registry.
func (db *DB) Schemas() *schema.Registry { return db.opts.Schemas }

// Close stops background syncers and queries, flushes and closes every
// repository (those in use too), and releases the directory.
func (db *DB) Close() error {
	serr := db.stopSyncers()      // before db.mu: syncers open repositories
	qerr := db.queries.closeAll() // before db.mu: subscribers may read the DB
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.mu.Unlock()
	if db.stopIdle != nil {
		close(db.stopIdle)
		<-db.idleDone
	}
	db.inflight.Wait() // opens and idle closes under way
	db.mu.Lock()
	defer db.mu.Unlock()
	errs := []error{serr, qerr, db.saveKey(), db.resumes.save()}
	for _, h := range db.repos {
		errs = append(errs, h.r.Close())
	}
	errs = append(errs, db.lock.Close())
	return errors.Join(errs...)
}

// Flush makes every write so far durable (useful under Async durability).
func (db *DB) Flush() error {
	var ls leases
	var rs []*repo.Repo
	var closing []chan struct{}
	db.mu.RLock()
	for _, h := range db.repos {
		if h.r == nil { // still opening: nothing written yet
			continue
		}
		h.pins.Add(1)
		ls.add(func() { db.release(h) })
		rs = append(rs, h.r)
	}
	for _, done := range db.closing {
		closing = append(closing, done) // their Close flushes them
	}
	db.mu.RUnlock()
	defer ls.release()
	var errs []error
	for _, r := range rs {
		errs = append(errs, r.Flush())
	}
	for _, done := range closing {
		<-done
	}
	return errors.Join(errs...)
}

// Repo returns the open repository at path /type/repo, opening (or
// creating) it on first use. On a read-only database a repository that
// does not exist is an error wrapping both ErrNotFound and ErrReadOnly.
// Reads that must not create a repository use LookupRepo.
//
// Repo takes no lease: with a bound on open repositories
// (Options.MaxOpenRepos, MaxOpenRepoBytes, RepoIdleTimeout) the
// repository may be closed once idle, and its writes then fail with
// repo.ErrClosed. Use Acquire to keep it open while it is used.
func (db *DB) Repo(path string) (*repo.Repo, error) {
	r, release, err := db.Acquire(path)
	release()
	return r, err
}

// openFailure is why a repository's log could not be opened, and the
// file's size and time then: a log that cannot be read is not read again
// (by every health check or sync that names it) until it changes.
type openFailure struct {
	err  error
	size int64
	mod  time.Time
}

func (f openFailure) same(fi fs.FileInfo) bool {
	return f.size == fi.Size() && f.mod.Equal(fi.ModTime())
}

// filePath is the path of a file at the top of the data directory.
func (db *DB) filePath(name string) string { return filepath.Join(db.dir, name) }

// LookupRepo returns the repository at path /type/repo if it exists,
// opening it on first use, or an error wrapping ErrNotFound if it does not.
// Like Repo it takes no lease (see AcquireExisting).
func (db *DB) LookupRepo(path string) (*repo.Repo, error) {
	r, release, err := db.AcquireExisting(path)
	release()
	return r, err
}

// HasRepo reports whether the repository at path /type/repo exists,
// without opening it.
func (db *DB) HasRepo(path string) (bool, error) {
	if err := CheckRepoPath(path); err != nil {
		return false, err
	}
	db.mu.RLock()
	r, closed := db.repos[path], db.closed
	db.mu.RUnlock()
	switch {
	case closed:
		return false, ErrClosed
	case r != nil:
		return true, nil
	}
	_, err := db.fs.Stat(db.logPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// LogSize returns the size in bytes of the log of the repository at path
// /type/repo, without opening it. An open repository's log may be shorter
// than its file, which reaches into space reserved for later writes.
func (db *DB) LogSize(path string) (int64, error) {
	if err := CheckRepoPath(path); err != nil {
		return 0, err
	}
	db.mu.RLock()
	h := db.repos[path]
	db.mu.RUnlock()
	if h != nil {
		select {
		case <-h.ready:
			if h.err == nil {
				return h.r.LogSize(), nil // its log stays readable after it closes
			}
		default: // opening: the file says enough
		}
	}
	fi, err := db.fs.Stat(db.logPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: repository %s", ErrNotFound, path)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// OnRepoOpen calls fn for every repository open now and for each one
// opened later, until remove is called. fn runs with the database's lock
// held: it must return quickly and must not call the database. A
// repository closed for idleness (see Options.MaxOpenRepos) reports
// Closed and closes its Changed channel; fn is called again, with a new
// *repo.Repo, when it is reopened.
func (db *DB) OnRepoOpen(fn func(path string, r *repo.Repo)) (remove func()) {
	h := &openHook{fn: fn}
	db.mu.Lock()
	db.remotesMu.Lock()
	if db.hooks == nil {
		db.hooks = map[*openHook]bool{}
	}
	db.hooks[h] = true
	for p, oh := range db.repos {
		if oh.r != nil { // one still opening calls fn when it is open
			fn(p, oh.r)
		}
	}
	db.remotesMu.Unlock()
	db.mu.Unlock()
	return func() {
		db.remotesMu.Lock()
		delete(db.hooks, h)
		db.remotesMu.Unlock()
	}
}

type openHook struct{ fn func(string, *repo.Repo) }

// logPath maps /type/repo to DIR/type/repo.log.
func (db *DB) logPath(path string) string {
	return filepath.Join(db.dir, filepath.FromSlash(path[1:])+".log")
}

// Repos lists the repositories in the data directory, sorted.
func (db *DB) Repos() ([]string, error) {
	types, err := db.fs.ReadDir(db.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range types {
		if !t.IsDir() {
			continue
		}
		logs, err := db.fs.ReadDir(filepath.Join(db.dir, t.Name()))
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			name, ok := strings.CutSuffix(l.Name(), ".log")
			p := "/" + t.Name() + "/" + name
			if ok && !l.IsDir() && checkRepoPath(p) == nil {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// The files at the top of the data directory.
const (
	keyFile  = "session.key"
	lockFile = "LOCK"
)

// loadOrCreateKey reads the peer's Ed25519 seed, or makes a new one if
// there is none (created true), which the caller saves (mode 0600) before
// its first use (DB.saveKey).
func loadOrCreateKey(fsys vfs.FS, path string) (key ed25519.PrivateKey, created bool, err error) {
	key, seedOnly, err := readKey(fsys, path)
	if err != nil {
		return nil, false, err
	}
	if key != nil {
		if seedOnly {
			// The seed alone: rewrite it with its check.
			if err := vfs.WriteFileAtomic(fsys, path, key, 0o600); err != nil {
				return nil, false, fmt.Errorf("write session key: %w", err)
			}
		}
		return key, false, nil
	}
	if _, key, err = ed25519.GenerateKey(nil); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// The session key file holds the peer's Ed25519 seed, then its public
// key (64 bytes), so that damage to either half is found: a seed that
// changed silently would make this peer another session. A file of the
// seed alone (32 bytes), as earlier versions wrote it, is read and
// rewritten in the new form by a writable open.

// loadKey reads the peer's Ed25519 key, or returns nil if there is none.
// A damaged file is an error wrapping ErrSessionKey.
func loadKey(fsys vfs.FS, path string) (ed25519.PrivateKey, error) {
	key, _, err := readKey(fsys, path)
	return key, err
}

// readKey is loadKey that also reports whether the file held the seed
// alone (the earlier form), read once.
func readKey(fsys vfs.FS, path string) (key ed25519.PrivateKey, seedOnly bool, err error) {
	b, err := fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read session key: %w", err)
	}
	switch {
	case len(b) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), true, nil
	case len(b) != ed25519.PrivateKeySize:
		return nil, false, fmt.Errorf("%w: %s is %d bytes, want %d; restore it from a backup, or remove it to make this peer a new session (its data stays readable)", ErrSessionKey, path, len(b), ed25519.PrivateKeySize)
	}
	key = ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(key.Public().(ed25519.PublicKey), b[ed25519.SeedSize:]) {
		return nil, false, fmt.Errorf("%w: in %s the public key does not match the seed; restore it from a backup, or remove it to make this peer a new session (its data stays readable)", ErrSessionKey, path)
	}
	return key, false, nil
}
