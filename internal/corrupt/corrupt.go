// Package corrupt is the one mark every layer's corruption errors carry,
// as pebble's MarkCorruptionError: bytes that should be goatdb's own (a
// commit encoding, an item value, a log record or header, a key file) are
// not what was written. Each package keeps its own sentinel, with its own
// message, made by New; errors.Is(err, Err) holds for all of them, and the
// root package exports Err as goatdb.ErrCorrupt.
//
// Invariant: Err is never returned alone, only through a sentinel of New.
package corrupt

import "errors"

// Err is what every corruption sentinel is.
var Err = errors.New("goatdb: data corrupt")

// New returns a sentinel error with message msg for which errors.Is(_, Err)
// holds.
func New(msg string) error { return &mark{msg} }

type mark struct{ msg string }

func (m *mark) Error() string        { return m.msg }
func (m *mark) Is(target error) bool { return target == Err }
