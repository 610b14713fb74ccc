package vfs

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS that can simulate crashes and inject faults.
type MemFS struct {
	mu      sync.Mutex          // guards everything below and every node
	names   map[string]*memNode // the live namespace
	durable map[string]*memNode // the namespace as of the last SyncDir of each directory
	dirs    map[string]bool     // directories that exist
	locks   map[string]int      // per name: -1 held by Lock, n > 0 held by n LockShared
	ops     int                 // mutating operations so far
	failAt  int                 // mutating operations allowed before faults; <0: none
	hook    func(op, name string) error
}

type memNode struct {
	data   []byte
	synced []byte
}

// NewMem returns an empty in-memory filesystem.
func NewMem() *MemFS {
	return &MemFS{names: map[string]*memNode{}, durable: map[string]*memNode{},
		dirs: map[string]bool{"/": true, ".": true}, locks: map[string]int{}, failAt: -1}
}

// FailAfter lets n more mutating operations (write, sync, truncate, rename,
// remove, create, sync dir) succeed and fails every later one with
// ErrInjected. A negative n turns faults off.
func (m *MemFS) FailAfter(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 0 {
		m.failAt = -1
	} else {
		m.failAt = m.ops + n
	}
}

// SetHook installs a function called before every mutating operation with
// its name ("write", "sync", "truncate", "rename", "remove", "create",
// "syncdir") and the file; an error it returns fails the operation.
func (m *MemFS) SetHook(h func(op, name string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = h
}

// Ops returns how many mutating operations have been attempted.
func (m *MemFS) Ops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops
}

// mutate counts a mutating operation and returns the fault to report, if
// any. m.mu must be held.
func (m *MemFS) mutate(op, name string) error {
	m.ops++
	if m.failAt >= 0 && m.ops > m.failAt {
		return &fs.PathError{Op: op, Path: name, Err: ErrInjected}
	}
	if m.hook != nil {
		if err := m.hook(op, name); err != nil {
			return &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	return nil
}

// Crash returns the filesystem as it would be after a power loss now: the
// durable namespace, each file holding its synced bytes. torn, if not nil,
// is asked for each file how many of the bytes written since the last sync
// also reached the disk (a prefix: 0 to len(unsynced)).
func (m *MemFS) Crash(torn func(name string, unsynced []byte) int) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	for name, n := range m.durable {
		data := slices.Clone(n.synced)
		if torn != nil && len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
			extra := n.data[len(n.synced):]
			k := min(max(torn(name, extra), 0), len(extra))
			data = append(data, extra[:k]...)
		}
		node := &memNode{data: data, synced: slices.Clone(data)}
		c.names[name] = node
		c.durable[name] = node
	}
	return c
}

func clean(name string) string { return path.Clean(name) }

// OpenFile implements FS.
func (m *MemFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.names[name]
	switch {
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !m.dirs[path.Dir(name)]:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if !ok || flag&os.O_TRUNC != 0 {
		if err := m.mutate("create", name); err != nil {
			return nil, err
		}
		if !ok {
			n = &memNode{}
			m.names[name] = n
		}
		n.data = nil
	}
	return &memFile{fs: m, node: n, name: name, flag: flag}, nil
}

// ReadFile implements FS.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.names[clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(n.data), nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.names[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err := m.mutate("remove", name); err != nil {
		return err
	}
	delete(m.names, name)
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.names[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if err := m.mutate("rename", oldname); err != nil {
		return err
	}
	delete(m.names, oldname)
	m.names[newname] = n
	return nil
}

// MkdirAll implements FS. Directories are durable at once.
func (m *MemFS) MkdirAll(dir string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := clean(dir); !m.dirs[d]; d = path.Dir(d) {
		m.dirs[d] = true
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	seen := map[string]fs.DirEntry{}
	for name, n := range m.names {
		if path.Dir(name) == dir {
			seen[path.Base(name)] = fs.FileInfoToDirEntry(memInfo{path.Base(name), int64(len(n.data)), false})
		}
	}
	for d := range m.dirs {
		if d != dir && path.Dir(d) == dir {
			seen[path.Base(d)] = fs.FileInfoToDirEntry(memInfo{path.Base(d), 0, true})
		}
	}
	out := make([]fs.DirEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.names[name]; ok {
		return memInfo{path.Base(name), int64(len(n.data)), false}, nil
	}
	if m.dirs[name] {
		return memInfo{path.Base(name), 0, true}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// SyncDir implements FS: the directory's current entries become durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate("syncdir", dir); err != nil {
		return err
	}
	for name := range m.durable {
		if path.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, n := range m.names {
		if path.Dir(name) == dir {
			m.durable[name] = n
		}
	}
	return nil
}

// Lock implements FS. Like OS, it creates the file if it is missing: an
// empty file whose directory entry is not yet durable. The creation is not
// counted as a mutating operation and never fails by FailAfter or the hook.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.names[name]; !ok {
		if !m.dirs[path.Dir(name)] {
			return nil, &fs.PathError{Op: "lock", Path: name, Err: fs.ErrNotExist}
		}
		m.names[name] = &memNode{}
	}
	if m.locks[name] != 0 {
		return nil, &fs.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	m.locks[name] = -1
	return m.unlocker(name), nil
}

// LockShared implements FS.
func (m *MemFS) LockShared(name string) (io.Closer, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.names[name]; !ok {
		return nil, &fs.PathError{Op: "lock shared", Path: name, Err: fs.ErrNotExist}
	}
	if m.locks[name] < 0 {
		return nil, &fs.PathError{Op: "lock shared", Path: name, Err: ErrLocked}
	}
	m.locks[name]++
	return m.unlocker(name), nil
}

// unlocker returns the Closer that releases one lock on name, exclusive or
// shared; closing it again reports fs.ErrClosed and releases nothing.
func (m *MemFS) unlocker(name string) io.Closer {
	released := false // guarded by m.mu
	return closerFunc(func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if released {
			return &fs.PathError{Op: "unlock", Path: name, Err: fs.ErrClosed}
		}
		released = true
		if m.locks[name] <= 1 {
			delete(m.locks, name)
		} else {
			m.locks[name]--
		}
		return nil
	})
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

type memFile struct {
	fs     *MemFS
	node   *memNode
	name   string
	flag   int
	pos    int64
	closed bool
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if err := f.fs.mutate("write", f.name); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		f.pos = int64(len(f.node.data))
	}
	if end := f.pos + int64(len(p)); end > int64(len(f.node.data)) {
		f.node.data = append(f.node.data, make([]byte, end-int64(len(f.node.data)))...)
	}
	copy(f.node.data[f.pos:], p)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	if err := f.fs.mutate("sync", f.name); err != nil {
		return err
	}
	f.node.synced = slices.Clone(f.node.data)
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.mutate("truncate", f.name); err != nil {
		return err
	}
	if size < int64(len(f.node.data)) {
		f.node.data = f.node.data[:size:size]
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return memInfo{path.Base(f.name), int64(len(f.node.data)), false}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
