package raftstore

import (
	"errors"

	"github.com/goatdb/goatdb/internal/corrupt"
)

var (
	// ErrCorrupt is returned by Open when the log or the stable file is
	// damaged in a way a crash cannot explain: a bad header, a damaged
	// frame with a valid one after it, entries out of order, a stable
	// file that fails its checksum, or stable state without a log. Errors
	// that wrap it say which file and at which offset. Like every
	// corruption error, it matches goatdb.ErrCorrupt.
	ErrCorrupt = corrupt.New("raftstore: corrupt")

	// ErrVersion is returned by Open when a file was written by a format
	// version this build cannot read.
	ErrVersion = errors.New("raftstore: unsupported format version")

	// ErrKeyNotFound is returned by Get for a key that was never set. Its
	// message is "not found", without the package prefix, because raft
	// recognises a missing key by comparing err.Error() with that string
	// (NewRaft, HasExistingState, and the vote it restores).
	ErrKeyNotFound = errors.New("not found")

	// ErrNotUint64 is returned by GetUint64 for a key whose value was set
	// by Set and is not 8 bytes long.
	ErrNotUint64 = errors.New("raftstore: value is not a uint64")

	// ErrOutOfOrder is returned by StoreLogs when an entry's index is 0, is
	// not above the last index stored, or is not above the index before
	// it in the batch. Raft never stores an index twice: it deletes a
	// conflicting suffix with DeleteRange first.
	ErrOutOfOrder = errors.New("raftstore: log index out of order")

	// ErrTooLarge is returned by StoreLogs for an entry whose encoding is
	// over MaxFrame, and by Set when the stable file would be.
	ErrTooLarge = errors.New("raftstore: too large")

	// ErrFailed is returned by a write whose file operation failed, and by
	// every write after it: once a write or fsync has failed, what the
	// disk holds is unknown, so the Store takes no more writes until it is
	// closed and opened again (Open then reads what the disk kept). Reads
	// still answer from memory, which holds only what was acknowledged.
	ErrFailed = errors.New("raftstore: write failed")

	// ErrClosed is returned when the Store is used after Close.
	ErrClosed = errors.New("raftstore: closed")
)
