package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// ErrLocked is returned by Lock and LockShared when a conflicting lock is
// held, by another process or by another call in this one.
var ErrLocked = errors.New("vfs: locked by another process")

// ErrInjected is the error returned by operations a test made fail.
var ErrInjected = errors.New("vfs: injected fault")

// File is an open file.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	// WriterAt writes at an offset, leaving the file offset alone; it
	// fails on a file opened with os.O_APPEND.
	io.WriterAt
	io.Closer
	// Sync makes the file's written bytes and its size durable (fdatasync
	// on Linux; see OS for other systems).
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
}

// Allocator is a File that can reserve space ahead of its writes. Writing
// into reserved space and syncing costs less than appending and syncing,
// since the file's size, which a Sync must make durable, does not change:
// a log reserves space past its end and overwrites it. OS files implement
// it on Linux (fallocate(2)); MemFS files implement it everywhere, so the
// crash model covers it.
type Allocator interface {
	// Allocate makes the file at least off+n bytes long, the bytes past
	// its old end reading as zeros, and reserves disk space for the
	// range. A file's new size is durable after its next Sync, like any
	// other.
	Allocate(off, n int64) error
}

// FS is the filesystem goatdb uses.
type FS interface {
	// OpenFile opens a file with os.OpenFile's flags.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	ReadFile(name string) ([]byte, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm fs.FileMode) error
	ReadDir(dir string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the directory's entries (created, renamed, removed
	// files and directories) durable. OS on Windows does nothing here and
	// returns nil; see OS.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the named file, creating it if it is
	// missing. It fails at once, with an error wrapping ErrLocked, while any
	// other lock, exclusive or shared, is held on the file. Closing the
	// result releases the lock.
	Lock(name string) (io.Closer, error)
	// LockShared takes a shared (read) lock on the named file, which must
	// exist: it is never created, and a missing file is an error wrapping
	// fs.ErrNotExist. Any number of shared locks may be held at once; it
	// fails at once, with an error wrapping ErrLocked, while an exclusive
	// lock is held. Closing the result releases the lock.
	LockShared(name string) (io.Closer, error)
}

// OS is the operating system's filesystem. What Sync, SyncDir and the locks
// do differs by platform (datasync, syncDir and lockFile in the per-OS
// files):
//
//   - File.Sync is fdatasync on Linux and (*os.File).Sync elsewhere, which
//     is fsync, or fcntl F_FULLFSYNC on macOS so the drive's cache is
//     flushed too.
//   - SyncDir fsyncs the directory, except on Windows, which cannot open one
//     for syncing: there it does nothing and returns nil, relying on NTFS
//     journaling its metadata (a crash leaves directories consistent but
//     may lose their latest changes).
//   - Lock and LockShared are flock(2) locks on Unix, held by the open file
//     description: they are advisory, and two calls conflict even within one
//     process. On Windows they are LockFileEx locks over the whole file,
//     which are mandatory: while one is held, other handles cannot write the
//     file (nor read it, under Lock), so lock a file used for nothing else.
//     Elsewhere (js, wasip1, plan9) and on AIX, which lacks flock, both fail
//     with an error wrapping errors.ErrUnsupported.
var OS FS = osFS{}

type osFS struct{}

type osFile struct{ *os.File }

// Sync implements File with the platform's cheapest call that makes the
// written bytes and the file size durable: see datasync.
func (f osFile) Sync() error {
	if err := datasync(f.File); err != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return nil
}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := openFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) ReadFile(name string) ([]byte, error)        { return os.ReadFile(name) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) Rename(o, n string) error                    { return os.Rename(o, n) }
func (osFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]fs.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Stat(name string) (fs.FileInfo, error)       { return os.Stat(name) }
func (osFS) SyncDir(dir string) error                    { return syncDir(dir) }

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return lockFile(f, "lock", true)
}

func (osFS) LockShared(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return lockFile(f, "lock shared", false)
}
