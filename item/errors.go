package item

import (
	"errors"

	"github.com/goatdb/goatdb/internal/corrupt"
)

var (
	// ErrCorrupt is returned when bytes given to a decoder are not a canonical
	// encoding. Errors that wrap it say what is wrong and at which offset.
	// Like every corruption error, it matches goatdb.ErrCorrupt.
	ErrCorrupt = corrupt.New("item: corrupt encoding")

	// ErrInvalidValue is returned when a value cannot be stored: a NaN
	// number, a string that is not UTF-8, a set holding a set or a map, or a
	// value nested too deeply.
	ErrInvalidValue = errors.New("item: invalid value")

	// ErrTypeMismatch is returned when an edit expects a field of one type
	// and finds another (for example set operations on a string field).
	ErrTypeMismatch = errors.New("item: type mismatch")
)
