package goatdb

import (
	"errors"

	"github.com/goatdb/goatdb/internal/corrupt"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/transport"
	"github.com/goatdb/goatdb/vfs"
)

var (
	// ErrNotFound is returned when an item, commit or repository does not
	// exist, and (wrapped by ErrDeleted) when an item is deleted.
	ErrNotFound = errors.New("goatdb: not found")

	// ErrDeleted is returned by Get for a deleted item; it wraps
	// ErrNotFound. Put restores a deleted item.
	ErrDeleted = &deletedError{}

	// ErrInvalidPath is returned when a path is not /type/repo/item (or
	// /type/repo where a repository is expected) with parts of 1–128
	// characters of A-Z a-z 0-9 . _ - other than . and ..
	ErrInvalidPath = errors.New("goatdb: invalid path")

	// ErrLocked is returned by Open when another process has the data
	// directory open.
	ErrLocked = vfs.ErrLocked

	// ErrNotDataDir is matched (errors.Is) by the error Open returns with
	// Options.MustExist when the directory is not a goatdb data directory:
	// it does not exist, is not a directory, or holds no session key. The
	// error's message names the directory and which of these it is.
	ErrNotDataDir = errors.New("goatdb: not a goatdb data directory")

	// ErrReadOnly is returned when a write is attempted on a database
	// opened read-only (Options.ReadOnly): Put, Create, Delete,
	// Batch.Commit, Sync, StartSync, Query.Save, Discard, Reauthor,
	// Restore, and Repo for a repository that does not exist. Nothing is
	// written.
	ErrReadOnly = errors.New("goatdb: database is read-only")

	// ErrCollected is returned (wrapped, naming the time) when what was
	// asked lies in history that garbage collection removed: a value as of
	// a time before the oldest commit kept of the item (see package gc).
	ErrCollected = repo.ErrCollected

	// ErrConflict is returned (wrapped, naming the item, the head
	// expected and the head found) by a conditional write (IfHead,
	// IfAbsent) whose item's head is not the one given: another write
	// moved it since it was read. Nothing is written; read the item again
	// and retry, or use DB.Update, which retries by itself.
	ErrConflict = errors.New("goatdb: conflict")

	// ErrClosed is returned when the database is used after Close.
	ErrClosed = errors.New("goatdb: closed")

	// ErrCorrupt is matched by every corruption error of every layer
	// (errors.Is): a log or key file damaged beyond what recovery repairs
	// by itself, a commit or value that does not decode. Errors that wrap
	// it say what is wrong and where.
	ErrCorrupt = corrupt.Err

	// ErrSessionKey is returned (wrapped, naming the file) when the
	// peer's session key file is damaged. It matches ErrCorrupt.
	ErrSessionKey = corrupt.New("goatdb: session key damaged")

	// ErrUnreachable is returned (wrapped, with the cause) when a sync
	// server cannot be reached: refused connections, timeouts, broken
	// streams.
	ErrUnreachable = transport.ErrUnreachable

	// ErrUnauthenticated is returned (wrapped, together with the
	// *ServerError) when a server answers 401: it does not take this
	// peer's session as logged in (no login, or one that expired or was
	// revoked), or it refused a login's credentials. The message says
	// what to do, such as run 'goatdb login URL NAME --code CODE'
	// (DB.LoginCode).
	ErrUnauthenticated = transport.ErrUnauthenticated

	// ErrRejected is returned (wrapped, naming the first commit and why)
	// by Sync when the server refused commits. The sync itself completed;
	// SyncStats.Rejected lists every refusal, and DB.Rejected the writes
	// quarantined for them.
	ErrRejected = errors.New("goatdb: server rejected commits")

	// ErrAccessRemoved is returned (wrapped, naming the item and the
	// server) by Watch when the watched item leaves this database because
	// a server answered that this session may no longer read it: a sync
	// forgot its commits (see DB.Sync). QueryEvent.AccessRemoved marks a
	// query's QueryRemoved event for the same cause.
	ErrAccessRemoved = errors.New("goatdb: access removed")
)

type deletedError struct{}

func (*deletedError) Error() string { return "goatdb: item deleted" }
func (*deletedError) Unwrap() error { return ErrNotFound }
