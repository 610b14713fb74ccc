package repo

import "errors"

var (
	// ErrCorrupt is returned when a log file is damaged in a way recovery
	// cannot repair by itself (a damaged header). Errors that wrap it say
	// what is wrong and at which offset.
	ErrCorrupt = errors.New("repo: log corrupt")

	// ErrNotLog is returned when a file is not a goatdb log at all.
	ErrNotLog = errors.New("repo: not a goatdb log")

	// ErrVersion is returned when a log was written by a format version this
	// build cannot read.
	ErrVersion = errors.New("repo: unsupported log version")

	// ErrLogFailed is returned by every write after a write or fsync of the
	// log failed: the repository must be closed and opened again, which
	// recovers the log to its last durable state.
	ErrLogFailed = errors.New("repo: log write failed")

	// ErrClosed is returned when the repository is used after Close.
	ErrClosed = errors.New("repo: closed")

	// ErrNotFound is returned when an item or commit does not exist.
	ErrNotFound = errors.New("repo: not found")

	// ErrRejected is returned (wrapped, with a reason) for a commit received
	// from elsewhere that fails validation: id, signature, item key, delta
	// base or merge recomputation.
	ErrRejected = errors.New("repo: commit rejected")
)
