package commit

import (
	"errors"

	"github.com/goatdb/goatdb/internal/corrupt"
)

var (
	// ErrCorrupt is returned when bytes are not a canonical commit encoding.
	// Errors that wrap it say what is wrong and where. Like every
	// corruption error, it matches goatdb.ErrCorrupt.
	ErrCorrupt = corrupt.New("commit: corrupt encoding")

	// ErrInvalid is returned when a commit cannot be built from the given
	// fields (a bad key, unsorted parents, a session on a merge, ...).
	ErrInvalid = errors.New("commit: invalid commit")

	// ErrBadSignature is returned when a signature does not verify against
	// the commit's session, or a commit that must be signed is not.
	ErrBadSignature = errors.New("commit: bad signature")
)
