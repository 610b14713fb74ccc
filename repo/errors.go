package repo

import (
	"errors"

	"github.com/goatdb/goatdb/internal/corrupt"
)

var (
	// ErrCorrupt is returned when a log file is damaged in a way recovery
	// cannot repair by itself: a header truncated or damaged with no
	// records after it. Errors that wrap it say what is wrong and at which
	// offset. Like every corruption error, it matches goatdb.ErrCorrupt.
	ErrCorrupt = corrupt.New("repo: log corrupt")

	// ErrNotLog is returned when a file is not a goatdb log at all.
	ErrNotLog = errors.New("repo: not a goatdb log")

	// ErrVersion is returned when a log was written by a format version this
	// build cannot read.
	ErrVersion = errors.New("repo: unsupported log version")

	// ErrLogFailed is returned by a write whose write or fsync failed, and
	// by writes while the failure lasts. Nothing of a failed Sync write is
	// kept; the log cuts the failed bytes off and takes writes again as
	// soon as the disk does (see Repo.Health).
	ErrLogFailed = errors.New("repo: log write failed")

	// ErrClosed is returned when the repository is used after Close.
	ErrClosed = errors.New("repo: closed")

	// ErrNotFound is returned when an item or commit does not exist.
	ErrNotFound = errors.New("repo: not found")

	// ErrNotExcluded is returned by Restore, Discard and Reauthor for a
	// commit that is not excluded, and by Reauthor for one that is
	// forgotten rather than quarantined.
	ErrNotExcluded = errors.New("repo: commit not excluded")

	// ErrExcludeMerge is returned by Exclude for a merge commit named
	// without any of its parents: the merge of the leaves that remain
	// would be the same commit again. Exclude a parent instead.
	ErrExcludeMerge = errors.New("repo: a merge is excluded only with a parent")

	// ErrRejected is returned (wrapped, with a reason) for a commit received
	// from elsewhere that fails validation: id, signature, item key, delta
	// base or merge recomputation.
	ErrRejected = errors.New("repo: commit rejected")
)
