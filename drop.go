package goatdb

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/goatdb/goatdb/repo"
)

// ErrRepoChanged is DropRepo's error when the repository was written
// since the position it was asked to drop at.
var ErrRepoChanged = errors.New("goatdb: the repository changed")

// ErrRepoInUse is DropRepo's error when the repository is held (a lease
// of Acquire, a sync, a query); retry once it is released.
var ErrRepoInUse = errors.New("goatdb: the repository is in use")

// DropRepo removes repository path (/type/repo) from this data
// directory: it closes it and deletes its log, its quarantine and its
// saved query states. It drops the repository only if its log is still
// at position (epoch, seq) (repo.Repo's Epoch and Seq), so that a caller
// that copied the repository elsewhere up to that position (a server
// handing it to its new owners) never deletes a commit written after the
// copy: otherwise it fails with ErrRepoChanged and deletes nothing. A
// repository held by anyone (Acquire's lease, a sync, a query) fails with
// ErrRepoInUse. A missing repository fails with ErrNotFound.
//
// The check and the close happen under the database's lock, so no write
// starts between them. The files go in this order: the log first, then
// the rest; a crash in between leaves only files that hold no commit.
func (db *DB) DropRepo(path string, epoch, seq uint64) error {
	if err := CheckRepoPath(path); err != nil {
		return err
	}
	if err := db.writable(); err != nil {
		return err
	}
	h, err := db.takeForDrop(path, epoch, seq)
	if err != nil {
		return err
	}
	defer db.inflight.Done()
	defer func() {
		db.mu.Lock()
		done := db.closing[path]
		delete(db.closing, path)
		delete(db.gone, path)
		db.mu.Unlock()
		if done != nil {
			close(done)
		}
	}()
	if h != nil {
		if err := h.r.Close(); err != nil {
			db.opts.Logger.Warn("drop repository: closing it", "repo", path, "err", err)
		}
	}
	logPath := db.logPath(path)
	if err := db.fs.Remove(logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop %s: %w", path, err)
	}
	for _, extra := range []string{logPath + ".quarantine", logPath + repo.IndexSuffix, logPath + repo.IndexSuffix + ".tmp"} {
		if err := db.fs.Remove(extra); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drop %s: %w", path, err)
		}
	}
	queries := strings.TrimSuffix(logPath, ".log") + ".queries"
	if entries, err := db.fs.ReadDir(queries); err == nil {
		for _, e := range entries {
			if err := db.fs.Remove(filepath.Join(queries, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("drop %s: %w", path, err)
			}
		}
		if err := db.fs.Remove(queries); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drop %s: %w", path, err)
		}
	}
	if err := db.fs.SyncDir(filepath.Dir(logPath)); err != nil {
		return fmt.Errorf("drop %s: %w", path, err)
	}
	return nil
}

// takeForDrop takes the repository out of DB.repos for DropRepo, if it is
// open, unused and at (epoch, seq); or checks a closed one's log by
// opening it. It marks the path closing (so that no open starts until
// DropRepo ends) and counts the drop in DB.inflight.
func (db *DB) takeForDrop(path string, epoch, seq uint64) (*handle, error) {
	for {
		db.mu.Lock()
		if db.closed {
			db.mu.Unlock()
			return nil, ErrClosed
		}
		if wait, busy := db.closing[path]; busy {
			db.mu.Unlock()
			<-wait
			continue
		}
		h := db.repos[path]
		if h == nil {
			db.mu.Unlock()
			// Open it to check its position; the lease is released
			// before it is taken out again.
			r, release, err := db.hold(path, false)
			if err != nil {
				return nil, err
			}
			if r == nil {
				return nil, fmt.Errorf("drop %s: %w", path, ErrNotFound)
			}
			release()
			continue
		}
		select {
		case <-h.ready:
		default:
			db.mu.Unlock()
			<-h.ready
			continue
		}
		switch {
		case h.err != nil:
			db.mu.Unlock()
			return nil, h.err
		case h.pins.Load() > 0:
			db.mu.Unlock()
			return nil, fmt.Errorf("drop %s: %w", path, ErrRepoInUse)
		case h.r.Epoch() != epoch || h.r.Seq() != seq:
			db.mu.Unlock()
			return nil, fmt.Errorf("drop %s: %w: it is at %d.%d, not %d.%d", path, ErrRepoChanged, h.r.Epoch(), h.r.Seq(), epoch, seq)
		}
		delete(db.repos, path)
		db.nopen.Add(-1)
		db.bytes.Add(-h.size.Load())
		if db.closing == nil {
			db.closing = map[string]chan struct{}{}
		}
		db.closing[path] = make(chan struct{})
		db.inflight.Add(1)
		db.mu.Unlock()
		return h, nil
	}
}
