package goatdb

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb/repo"
)

// Repository lifecycle (see the package doc, "Open repositories").
//
// DB.repos holds a handle per repository open or opening. A lease is a
// count (handle.pins): taken under DB.mu (read or write), so that
// pickIdle, which holds DB.mu for writing, sees every lease taken and
// closes only a handle with none. A handle chosen to close leaves
// DB.repos at once and is listed in DB.closing until its Close returns:
// an open of the same path waits for it, so two Repos never have one log
// open. Opens and closes read and write files outside DB.mu; DB.inflight
// counts them for DB.Close.

// Memory estimate of an open repository, from measurements (Go heap): a
// repository of a few small items takes about 80 KiB (a 64 KiB arena and
// its maps), and a large one about 7 bytes per byte of its log.
const (
	repoBaseBytes    = 80 << 10
	repoBytesPerByte = 8
)

// repoSize estimates the memory an open repository takes.
func repoSize(r *repo.Repo) int64 {
	return repoBaseBytes + repoBytesPerByte*int64(r.Seq())
}

// handle is a repository in DB.repos: opening (ready not closed yet) or
// open.
type handle struct {
	path  string
	ready chan struct{} // closed when the open finished: r or err is set
	r     *repo.Repo
	err   error
	kept  bool         // never closed for idleness (/sys/)
	pins  atomic.Int64 // leases held; changed from 0 only under DB.mu
	used  atomic.Int64 // when a lease was last released (DB.now)
	size  atomic.Int64 // repoSize when last released
	retry atomic.Int64 // not closed for idleness before this time (DB.now): its flush failed
}

// nop is the release of a lease on nothing.
func nop() {}

// Acquire returns the repository at path /type/repo, opening (or
// creating) it as Repo does, and a lease on it: the repository stays open
// until release is called (or DB.Close), even under a bound on open
// repositories (Options.MaxOpenRepos). Call release once, when done;
// further calls do nothing, and on error it is a no-op.
func (db *DB) Acquire(path string) (r *repo.Repo, release func(), err error) {
	if db.opts.ReadOnly {
		r, release, err = db.hold(path, false)
		if err == nil && r == nil {
			err = fmt.Errorf("%w: repository %s (creating it: %w)", ErrNotFound, path, ErrReadOnly)
		}
		return r, release, err
	}
	return db.hold(path, true)
}

// AcquireExisting is Acquire for a repository that exists: one that does
// not is an error wrapping ErrNotFound, and nothing is created.
func (db *DB) AcquireExisting(path string) (r *repo.Repo, release func(), err error) {
	r, release, err = db.hold(path, false)
	if err == nil && r == nil {
		err = fmt.Errorf("%w: repository %s", ErrNotFound, path)
	}
	return r, release, err
}

// hold returns the repository at path with a lease on it, opening it if
// needed; without create, a repository that has no log is nil (and no
// error).
func (db *DB) hold(path string, create bool) (*repo.Repo, func(), error) {
	for {
		db.mu.RLock()
		h, closed := db.repos[path], db.closed
		if h != nil && !closed {
			h.pins.Add(1)
		}
		db.mu.RUnlock()
		if closed {
			return nil, nop, ErrClosed
		}
		if h == nil {
			if err := CheckRepoPath(path); err != nil {
				return nil, nop, err
			}
			if !create {
				if _, err := db.fs.Stat(db.logPath(path)); errors.Is(err, fs.ErrNotExist) {
					return nil, nop, nil
				}
			}
			var err error
			if h, err = db.openHandle(path); err != nil {
				return nil, nop, err
			}
			if h == nil {
				continue // it was being closed: open it again
			}
		}
		<-h.ready
		if h.err != nil {
			h.pins.Add(-1)
			return nil, nop, h.err
		}
		var once atomic.Bool
		return h.r, func() {
			if once.CompareAndSwap(false, true) {
				db.release(h)
			}
		}, nil
	}
}

// openHandle opens the repository at path and returns its handle with a
// lease taken, or the handle of the open under way. It returns nil (and
// no error) after waiting for the repository to finish closing: the
// caller tries again.
func (db *DB) openHandle(path string) (*handle, error) {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil, ErrClosed
	}
	if h := db.repos[path]; h != nil {
		h.pins.Add(1)
		db.mu.Unlock()
		return h, nil
	}
	if done := db.closing[path]; done != nil {
		db.mu.Unlock()
		<-done
		return nil, nil
	}
	fi, statErr := db.fs.Stat(db.logPath(path))
	if f, ok := db.failed[path]; ok && statErr == nil && f.same(fi) {
		db.mu.Unlock()
		return nil, f.err
	}
	h := &handle{path: path, ready: make(chan struct{}), kept: strings.HasPrefix(path, "/sys/")}
	h.pins.Store(1)
	db.repos[path] = h
	db.nopen.Add(1)
	db.inflight.Add(1)
	db.mu.Unlock()
	defer db.inflight.Done()

	var r *repo.Repo
	err := db.saveKey() // before a commit it signs is stored
	if err == nil {
		r, err = repo.Open(db.logPath(path), &repo.Options{
			FS: db.fs, Durability: db.opts.Durability, FlushInterval: db.opts.FlushInterval,
			Key: db.key, Trusted: db.opts.Trusted, Schemas: db.opts.Schemas, ReadOnly: db.opts.ReadOnly,
			Logger: db.opts.Logger.With("repo", path), Name: path, Validator: db.opts.Schemas, Now: db.opts.Now,
		})
	}
	db.mu.Lock()
	if err != nil {
		delete(db.repos, path)
		db.nopen.Add(-1)
		if statErr == nil && damaged(err) {
			if db.failed == nil {
				db.failed = map[string]openFailure{}
			}
			db.failed[path] = openFailure{err: err, size: fi.Size(), mod: fi.ModTime()}
		}
		h.err = err
		close(h.ready)
		db.mu.Unlock()
		return nil, err
	}
	delete(db.failed, path)
	delete(db.gone, path)
	h.r = r
	h.used.Store(db.now())
	h.size.Store(repoSize(r))
	db.bytes.Add(h.size.Load())
	if !db.closed {
		db.remotesMu.Lock() // lock order: mu, then remotesMu
		for hk := range db.hooks {
			hk.fn(path, r)
		}
		db.remotesMu.Unlock()
	}
	close(h.ready)
	db.mu.Unlock()
	db.evict() // h is in use: others go
	return h, nil
}

// release gives back a lease on h, and closes idle repositories if the
// database is over a bound.
func (db *DB) release(h *handle) {
	if db.bounded() {
		s := repoSize(h.r)
		db.bytes.Add(s - h.size.Swap(s))
	}
	h.used.Store(db.now())
	if h.pins.Add(-1) == 0 {
		db.evict()
	}
}

// bounded reports whether the database closes repositories over a bound.
func (db *DB) bounded() bool {
	return db.opts.MaxOpenRepos > 0 || db.opts.MaxOpenRepoBytes > 0
}

// closesIdle reports whether the database closes repositories that are
// not in use before Close.
func (db *DB) closesIdle() bool { return db.bounded() || db.opts.RepoIdleTimeout > 0 }

// over reports whether the open repositories exceed a bound.
func (db *DB) over() bool {
	return db.opts.MaxOpenRepos > 0 && db.nopen.Load() > int64(db.opts.MaxOpenRepos) ||
		db.opts.MaxOpenRepoBytes > 0 && db.bytes.Load() > db.opts.MaxOpenRepoBytes
}

// now is the time since Open, on the monotonic clock.
func (db *DB) now() int64 { return int64(time.Since(db.started)) }

// evict closes the least recently used repositories not in use until the
// bounds hold, or none is left to close.
func (db *DB) evict() {
	for db.over() {
		h, done := db.pickIdle(func(*handle) bool { return db.over() })
		if h == nil {
			return
		}
		db.closeIdle(h, done)
	}
}

// pickIdle takes out of DB.repos the least recently used repository that
// is open, not in use and may be closed for idleness, if want holds, and
// marks it closing. The caller must call closeIdle.
func (db *DB) pickIdle(want func(*handle) bool) (*handle, chan struct{}) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, nil
	}
	now := db.now()
	var best *handle
	for _, h := range db.repos {
		if h.r == nil || h.kept || h.pins.Load() > 0 || h.retry.Load() > now {
			continue
		}
		if best == nil || h.used.Load() < best.used.Load() {
			best = h
		}
	}
	if best == nil || !want(best) {
		return nil, nil
	}
	delete(db.repos, best.path)
	db.nopen.Add(-1)
	db.bytes.Add(-best.size.Load())
	done := make(chan struct{})
	if db.closing == nil {
		db.closing = map[string]chan struct{}{}
	}
	db.closing[best.path] = done
	db.remember(best.path, best.r)
	db.inflight.Add(1)
	return best, done
}

// closeIdle flushes and closes a repository pickIdle took out. If the
// flush fails the repository is put back, open: nothing acknowledged is
// lost, and it is not tried again for a minute.
func (db *DB) closeIdle(h *handle, done chan struct{}) {
	defer db.inflight.Done()
	if err := h.r.Flush(); err != nil {
		db.opts.Logger.Warn("keeping an idle repository open: flushing it failed", "repo", h.path, "err", err)
		db.mu.Lock()
		delete(db.closing, h.path)
		delete(db.gone, h.path)
		h.retry.Store(db.now() + int64(time.Minute))
		db.repos[h.path] = h
		db.nopen.Add(1)
		db.bytes.Add(h.size.Load())
		close(done)
		db.mu.Unlock()
		return
	}
	// The flush succeeded: a write failure remembered when it was taken
	// out has cleared, so remember its state afresh.
	db.mu.Lock()
	db.remember(h.path, h.r)
	db.mu.Unlock()
	err := h.r.Close()
	db.mu.Lock()
	delete(db.closing, h.path)
	if err != nil {
		db.opts.Logger.Error("close idle repository", "repo", h.path, "err", err)
		db.remembered(h.path, RepoHealth{Path: h.path, Status: StatusDegraded,
			Err: fmt.Errorf("closing it when idle: %w", err)})
	}
	close(done)
	db.mu.Unlock()
}

// remember keeps the storage state of a repository that is being closed,
// if it is not ok, for Health. db.mu is held.
func (db *DB) remember(path string, r *repo.Repo) {
	delete(db.gone, path)
	if rh := healthOf(path, r); rh.Status != StatusOK {
		db.remembered(path, rh)
	}
}

// remembered records rh as path's state while it is closed. db.mu is
// held.
func (db *DB) remembered(path string, rh RepoHealth) {
	if db.gone == nil {
		db.gone = map[string]RepoHealth{}
	}
	db.gone[path] = rh
}

// closeIdleLoop closes repositories unused for Options.RepoIdleTimeout
// until stop is closed.
func (db *DB) closeIdleLoop(stop <-chan struct{}) {
	timeout := db.opts.RepoIdleTimeout
	t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cutoff := db.now() - int64(timeout)
		for {
			h, done := db.pickIdle(func(h *handle) bool { return h.used.Load() <= cutoff })
			if h == nil {
				break
			}
			db.closeIdle(h, done)
		}
	}
}

// leases holds leases taken one after another, to release them together.
type leases []func()

func (l *leases) add(release func()) { *l = append(*l, release) }

func (l *leases) release() {
	for _, r := range *l {
		r()
	}
	*l = nil
}
