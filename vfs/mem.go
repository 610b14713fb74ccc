package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS that can simulate crashes and inject faults.
//
// It keeps a tree of directories and files. Each directory holds its
// current entries and the entries its last SyncDir made durable; each file
// holds its current bytes and the bytes its last Sync made durable. What a
// crash keeps of the difference is described in the package documentation
// and decided by a [CrashPlan].
type MemFS struct {
	mu      sync.Mutex          // guards everything below and every node
	roots   map[string]*memNode // "/" and ".", where every name starts
	renames []memRename         // renames, in order, with a side not yet durable
	locks   map[string]int      // per name: -1 held by Lock, n > 0 held by n LockShared
	ops     int                 // mutating operations so far
	failAt  int                 // mutating operations allowed before faults; <0: none
	hook    func(op, name string) error
}

// memNode is a file or, when live is not nil, a directory.
type memNode struct {
	data   []byte // a file's current bytes
	synced []byte // a file's bytes as of its last Sync

	live    map[string]*memNode // a directory's current entries
	durable map[string]*memNode // a directory's entries as of its last SyncDir
}

func newMemDir() *memNode {
	return &memNode{live: map[string]*memNode{}, durable: map[string]*memNode{}}
}

func (n *memNode) isDir() bool { return n.live != nil }

// memKey names one entry: a name in a directory.
type memKey struct {
	dir  *memNode
	name string
}

// dirty reports whether the entry differs from what the directory's last
// SyncDir made durable.
func (k memKey) dirty() bool { return k.dir.live[k.name] != k.dir.durable[k.name] }

// memRename records a rename, whose two entries a crash keeps or loses
// together.
type memRename struct{ from, to memKey }

// errNotDir and the others are the Err of the PathErrors MemFS returns
// where the OS would return ENOTDIR, EISDIR and ENOTEMPTY.
var (
	errNotDir   = errors.New("not a directory")
	errIsDir    = errors.New("is a directory")
	errNotEmpty = errors.New("directory not empty")
)

// NewMem returns an empty in-memory filesystem: the directories "/" and
// "." exist, and always will, crash or not.
func NewMem() *MemFS {
	return &MemFS{roots: map[string]*memNode{"/": newMemDir(), ".": newMemDir()},
		locks: map[string]int{}, failAt: -1}
}

// FailAfter lets n more mutating operations (write, allocate, sync,
// truncate, rename, remove, create, sync dir) succeed and fails every later one with
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
// its name ("write", "allocate", "sync", "truncate", "rename", "remove",
// "create", "syncdir") and the file; an error it returns fails the operation.
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

func clean(name string) string { return path.Clean(name) }

// node returns the node at the cleaned name, or nil. m.mu must be held.
func (m *MemFS) node(name string) *memNode {
	if r, ok := m.roots[name]; ok {
		return r
	}
	if d := m.parent(name); d != nil {
		return d.live[path.Base(name)]
	}
	return nil
}

// parent returns the directory that holds the cleaned name's entry, or nil
// if there is none or name is a root. m.mu must be held.
func (m *MemFS) parent(name string) *memNode {
	if _, ok := m.roots[name]; ok {
		return nil
	}
	if d := m.node(path.Dir(name)); d != nil && d.isDir() {
		return d
	}
	return nil
}

// OpenFile implements FS.
func (m *MemFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.parent(name)
	n := m.node(name)
	switch {
	case n != nil && n.isDir():
		return nil, &fs.PathError{Op: "open", Path: name, Err: errIsDir}
	case n == nil && (d == nil || flag&os.O_CREATE == 0):
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	if n == nil || flag&os.O_TRUNC != 0 {
		if err := m.mutate("create", name); err != nil {
			return nil, err
		}
		if n == nil {
			n = &memNode{}
			d.live[path.Base(name)] = n
		}
		n.data = nil
	}
	return &memFile{fs: m, node: n, name: name, flag: flag}, nil
}

// ReadFile implements FS.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch n := m.node(name); {
	case n == nil:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n.isDir():
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	default:
		return slices.Clone(n.data), nil
	}
}

// Remove implements FS: it removes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, n := m.parent(name), m.node(name)
	switch {
	case n != nil && d == nil:
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrInvalid}
	case n == nil:
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	case n.isDir() && len(n.live) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: errNotEmpty}
	}
	if err := m.mutate("remove", name); err != nil {
		return err
	}
	delete(d.live, path.Base(name))
	return nil
}

// Rename implements FS for files; MemFS does not rename directories.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	od, n := m.parent(oldname), m.node(oldname)
	nd, over := m.parent(newname), m.node(newname)
	switch {
	case n == nil || od == nil:
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	case n.isDir():
		return &fs.PathError{Op: "rename", Path: oldname, Err: errors.ErrUnsupported}
	case nd == nil:
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrNotExist}
	case over != nil && over.isDir():
		return &fs.PathError{Op: "rename", Path: newname, Err: errIsDir}
	}
	if err := m.mutate("rename", oldname); err != nil {
		return err
	}
	from, to := memKey{od, path.Base(oldname)}, memKey{nd, path.Base(newname)}
	if from == to {
		return nil
	}
	delete(od.live, from.name)
	nd.live[to.name] = n
	m.renames = append(m.renames, memRename{from, to})
	return nil
}

// MkdirAll implements FS. Each directory it creates is a new entry in its
// parent, durable once the parent is synced (SyncDir) and lost by a crash
// before that, with everything under it. It is not a mutating operation:
// FailAfter and the hook do not see it.
func (m *MemFS) MkdirAll(dir string, perm fs.FileMode) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, at, rest := m.roots["."], ".", dir
	if strings.HasPrefix(dir, "/") {
		d, at, rest = m.roots["/"], "/", dir[1:]
	}
	if rest == "" || rest == "." {
		return nil // a root
	}
	for _, elem := range strings.Split(rest, "/") {
		at = path.Join(at, elem)
		n := d.live[elem]
		if n == nil {
			n = newMemDir()
			d.live[elem] = n
		}
		if !n.isDir() {
			return &fs.PathError{Op: "mkdir", Path: at, Err: errNotDir}
		}
		d = n
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.node(dir)
	switch {
	case d == nil:
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	case !d.isDir():
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: errNotDir}
	}
	out := make([]fs.DirEntry, 0, len(d.live))
	for _, name := range slices.Sorted(maps.Keys(d.live)) {
		out = append(out, fs.FileInfoToDirEntry(d.live[name].info(name)))
	}
	return out, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.node(name); n != nil {
		return n.info(path.Base(name)), nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

func (n *memNode) info(name string) memInfo {
	return memInfo{name, int64(len(n.data)), n.isDir()}
}

// SyncDir implements FS: the directory's current entries become durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.node(dir)
	switch {
	case d == nil:
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	case !d.isDir():
		return &fs.PathError{Op: "syncdir", Path: dir, Err: errNotDir}
	}
	if err := m.mutate("syncdir", dir); err != nil {
		return err
	}
	d.durable = maps.Clone(d.live)
	m.renames = slices.DeleteFunc(m.renames, func(r memRename) bool {
		return !r.from.dirty() && !r.to.dirty()
	})
	return nil
}

// Lock implements FS. Like OS, it creates the file if it is missing: an
// empty file whose directory entry is not yet durable. The creation is not
// counted as a mutating operation and never fails by FailAfter or the hook.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node(name) == nil {
		d := m.parent(name)
		if d == nil {
			return nil, &fs.PathError{Op: "lock", Path: name, Err: fs.ErrNotExist}
		}
		d.live[path.Base(name)] = &memNode{}
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
	if m.node(name) == nil {
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
	f.node.grow(f.pos + int64(len(p)))
	copy(f.node.data[f.pos:], p)
	f.pos += int64(len(p))
	return len(p), nil
}

// WriteAt implements File. Like *os.File's, it refuses a file opened with
// os.O_APPEND.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return 0, fs.ErrClosed
	case f.flag&os.O_APPEND != 0:
		return 0, errWriteAtAppend
	case off < 0:
		return 0, &fs.PathError{Op: "writeat", Path: f.name, Err: errors.New("negative offset")}
	}
	if err := f.fs.mutate("write", f.name); err != nil {
		return 0, err
	}
	f.node.grow(off + int64(len(p)))
	copy(f.node.data[off:], p)
	return len(p), nil
}

var errWriteAtAppend = errors.New("vfs: WriteAt on a file opened with O_APPEND")

// Allocate implements Allocator: the file grows with zeros to off+n bytes.
func (f *memFile) Allocate(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return fs.ErrClosed
	case off < 0 || n <= 0:
		return &fs.PathError{Op: "allocate", Path: f.name, Err: errors.New("invalid range")}
	}
	if err := f.fs.mutate("allocate", f.name); err != nil {
		return err
	}
	f.node.grow(off + n)
	return nil
}

// grow extends the file with zeros to at least size bytes.
func (n *memNode) grow(size int64) {
	if size > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
	}
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
