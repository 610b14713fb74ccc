package raftstore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/vfs"
)

// The names of the files in a store's directory.
const (
	logName    = "log"
	stableName = "stable"
	lockName   = "LOCK"
)

// Store is a raft.LogStore and raft.StableStore kept in one directory. It
// is safe for concurrent use.
type Store struct {
	fs         vfs.FS
	logPath    string
	stablePath string
	lock       io.Closer

	// writeMu serializes writers and guards the files and the fields
	// below it: what the log file holds on disk is salt's header and size
	// bytes of whole, synced frames.
	writeMu sync.Mutex
	f       vfs.File // the log, opened for appending; nil after a failure
	salt    uint64
	size    int64
	failed  error // the first failed file operation, if any

	// mu guards what readers see: the acknowledged log entries, in
	// increasing index order, and the stable keys. Writers change them
	// holding writeMu too, so a writer may read them holding writeMu
	// alone.
	mu     sync.RWMutex
	logs   []raft.Log
	kv     map[string][]byte
	closed bool
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens the store kept in dir on fsys, creating dir and an empty
// store if they are missing, and takes an exclusive lock on it until
// Close. It reads the whole log into memory. A torn last frame, left by a
// crash during StoreLogs, is cut off; any other damage is an error
// wrapping ErrCorrupt, and the files are left as they are.
func Open(fsys vfs.FS, dir string) (*Store, error) {
	if err := vfs.MkdirAllSync(fsys, dir, 0o700); err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", dir, err)
	}
	lock, err := fsys.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", dir, err)
	}
	s := &Store{fs: fsys, lock: lock,
		logPath: filepath.Join(dir, logName), stablePath: filepath.Join(dir, stableName)}
	if err := s.load(); err != nil {
		err = errors.Join(err, s.closeFiles())
		return nil, fmt.Errorf("open raft store %s: %w", dir, err)
	}
	return s, nil
}

// load reads both files, making the log if neither exists, and opens the
// log for appending.
func (s *Store) load() error {
	kv, hasStable, err := s.readStable()
	if err != nil {
		return err
	}
	s.kv = kv
	data, err := s.fs.ReadFile(s.logPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && hasStable:
		return fmt.Errorf("%w: %s exists but %s does not", ErrCorrupt, s.stablePath, s.logPath)
	case errors.Is(err, fs.ErrNotExist):
		data = encodeHeader(newSalt())
		if err := vfs.WriteFileAtomic(s.fs, s.logPath, data, 0o600); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if s.salt, err = decodeHeader(data); err != nil {
		return fmt.Errorf("%s: %w", s.logPath, err)
	}
	if s.logs, s.size, err = scan(data, s.salt); err != nil {
		return fmt.Errorf("%s: %w", s.logPath, err)
	}
	return s.openLog(s.size < int64(len(data)))
}

// openLog opens the log for appending, first cutting it to size and
// making that durable if cut is set.
func (s *Store) openLog(cut bool) error {
	f, err := s.fs.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if cut {
		if err = f.Truncate(s.size); err == nil {
			err = f.Sync()
		}
		if err != nil {
			return errors.Join(err, f.Close())
		}
	}
	s.f = f
	return nil
}

// newSalt returns a random salt for a new log file.
func newSalt() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails: it crashes the program instead
	return binary.LittleEndian.Uint64(b[:])
}

// scan returns the entries of the log file data, whose header holds salt,
// and the size of the whole frames that hold them. It stops at the first
// frame that is not whole and valid: that is a torn tail unless a valid
// frame starts anywhere after it, which no crash can leave (each frame is
// synced before the next is written), so it is damage, and so is a valid
// frame whose entries do not decode or do not follow the entries before.
func scan(data []byte, salt uint64) ([]raft.Log, int64, error) {
	var logs []raft.Log
	off := int64(headerSize)
	for {
		body, next, ok := readFrame(data, salt, off)
		if !ok {
			break
		}
		prev, entries, err := decodeBody(body)
		if err == nil && prev != lastOf(logs) {
			err = fmt.Errorf("follows index %d, but the frame before ends at %d", prev, lastOf(logs))
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: frame at offset %d: %w", ErrCorrupt, off, err)
		}
		logs = append(logs, entries...)
		off = next
	}
	for p := off + 1; p+frameHeader+minBody <= int64(len(data)); p++ {
		if _, _, ok := readFrame(data, salt, p); ok {
			return nil, 0, fmt.Errorf("%w: damaged frame at offset %d before a valid one at offset %d", ErrCorrupt, off, p)
		}
	}
	return logs, off, nil
}

// lastOf returns the index of the last of logs, or 0.
func lastOf(logs []raft.Log) uint64 {
	if len(logs) == 0 {
		return 0
	}
	return logs[len(logs)-1].Index
}

// writable returns why the store takes no writes, or nil. writeMu must be
// held.
func (s *Store) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.failed != nil:
		return fmt.Errorf("%w: %w", ErrFailed, s.failed)
	}
	return nil
}

// fail records err as the failure that stops writes and returns it
// wrapped. writeMu must be held.
func (s *Store) fail(err error) error {
	s.failed = err
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// writeFile replaces name with data, atomically and durably, or fails
// the store.
func (s *Store) writeFile(name string, data []byte) error {
	if err := vfs.WriteFileAtomic(s.fs, name, data, 0o600); err != nil {
		return s.fail(err)
	}
	return nil
}

// FirstIndex implements raft.LogStore: the lowest index stored, or 0.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.logs[0].Index, nil
}

// LastIndex implements raft.LogStore: the highest index stored, or 0.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return lastOf(s.logs), nil
}

// GetLog implements raft.LogStore. It returns raft.ErrLogNotFound for an
// index not stored. log's Data and Extensions are shared with the store
// and must not be modified.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	i := sort.Search(len(s.logs), func(i int) bool { return s.logs[i].Index >= index })
	if i == len(s.logs) || s.logs[i].Index != index {
		return raft.ErrLogNotFound
	}
	*log = s.logs[i]
	return nil
}

// StoreLog implements raft.LogStore, as StoreLogs of one entry.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore: it appends logs, whose indexes must
// increase and be above LastIndex (gaps are allowed), and returns once
// they are durable. The store keeps its own copy of each entry. A batch
// whose encoding is over MaxFrame is written as several frames, each
// synced before the next.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	prev := lastOf(s.logs)
	if err := checkBatch(logs, prev); err != nil {
		return err
	}
	var stored []raft.Log
	for len(logs) > 0 {
		n := frameCount(logs)
		entries, err := s.appendFrame(prev, logs[:n])
		if err != nil {
			return err
		}
		prev = logs[n-1].Index
		stored = append(stored, entries...)
		logs = logs[n:]
	}
	s.mu.Lock()
	s.logs = append(s.logs, stored...)
	s.mu.Unlock()
	return nil
}

// checkBatch returns why logs may not follow the index last, or nil.
func checkBatch(logs []*raft.Log, last uint64) error {
	for _, l := range logs {
		if l.Index <= last {
			return fmt.Errorf("%w: index %d after %d", ErrOutOfOrder, l.Index, last)
		}
		if bodyHeader+entrySize(l) > MaxFrame {
			return fmt.Errorf("%w: entry %d of %d bytes", ErrTooLarge, l.Index, entrySize(l))
		}
		last = l.Index
	}
	return nil
}

// frameCount returns how many of logs, at least one, fit in one frame.
func frameCount(logs []*raft.Log) int {
	size := bodyHeader + entrySize(logs[0])
	n := 1
	for n < len(logs) && size+entrySize(logs[n]) <= MaxFrame {
		size += entrySize(logs[n])
		n++
	}
	return n
}

// appendFrame writes logs, which follow the index prev, as one frame at
// the end of the log and syncs it, and returns the entries as decoded from
// the bytes written.
func (s *Store) appendFrame(prev uint64, logs []*raft.Log) ([]raft.Log, error) {
	frame := appendFrame(nil, s.salt, prev, logs)
	if _, err := s.f.Write(frame); err != nil {
		return nil, s.fail(err)
	}
	if err := s.f.Sync(); err != nil {
		return nil, s.fail(err)
	}
	s.size += int64(len(frame))
	_, entries, err := decodeBody(frame[frameHeader:])
	if err != nil {
		return nil, s.fail(fmt.Errorf("decode the frame just written: %w", err))
	}
	return entries, nil
}

// DeleteRange implements raft.LogStore: it removes the entries from min
// to max, inclusive. If any are stored, it rewrites the log without them,
// atomically: a crash leaves the old log or the new one.
func (s *Store) DeleteRange(min, max uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	var keep []*raft.Log
	for i := range s.logs {
		if l := &s.logs[i]; l.Index < min || l.Index > max {
			keep = append(keep, l)
		}
	}
	if len(keep) == len(s.logs) {
		return nil
	}
	return s.rewrite(keep)
}

// rewrite replaces the log file with one holding logs, and the entries in
// memory with those decoded from it. It closes the append handle first:
// Windows cannot rename over an open file.
func (s *Store) rewrite(logs []*raft.Log) error {
	salt := newSalt()
	data := encodeHeader(salt)
	prev := uint64(0)
	for len(logs) > 0 {
		n := frameCount(logs)
		data = appendFrame(data, salt, prev, logs[:n])
		prev, logs = logs[n-1].Index, logs[n:]
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return s.fail(err)
	}
	if err := s.writeFile(s.logPath, data); err != nil {
		return err
	}
	entries, size, err := scan(data, salt)
	if err == nil && size != int64(len(data)) {
		err = fmt.Errorf("rewritten log scans to %d of %d bytes", size, len(data))
	}
	if err != nil {
		return s.fail(err)
	}
	s.salt, s.size = salt, size
	if err := s.openLog(false); err != nil {
		return s.fail(err)
	}
	s.mu.Lock()
	s.logs = entries
	s.mu.Unlock()
	return nil
}

// Close releases the store's files and lock. The store must not be used
// after; calls return ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.logs, s.kv = nil, nil
	return s.closeFiles()
}

// closeFiles closes the log and releases the lock.
func (s *Store) closeFiles() error {
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
	}
	return errors.Join(err, s.lock.Close())
}
