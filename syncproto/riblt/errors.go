package riblt

import "errors"

var (
	// ErrMalformed is returned by DecodeRun when a symbol run does not
	// decode (truncated, trailing bytes, a non-canonical varint, a bound
	// broken), and by AppendRun when a run cannot be encoded within the
	// bounds. The wrapping error says what is wrong and where.
	ErrMalformed = errors.New("riblt: malformed symbol run")

	// ErrInconsistent is returned by a Decoder when the remote symbols
	// cannot come from any set against the local one: a count out of
	// range, an element peeled twice, a local-only element the local set
	// does not hold, a pure symbol whose element does not map to it, more
	// elements than symbols, or symbols left over once symbol 0 is empty.
	// The caller falls back (see the package documentation).
	ErrInconsistent = errors.New("riblt: symbols inconsistent with the local set")

	// ErrCollision is returned by a Decoder when two different elements of
	// one set share a short id under the key: two local elements (found
	// when the first symbol arrives), a remote-only element that the local
	// set also holds, or a symbol 0 whose sums cancel while its count does
	// not. A fresh key almost surely separates them; the caller falls back
	// as for ErrInconsistent.
	ErrCollision = errors.New("riblt: short-id collision")

	// ErrBudget is returned by a Decoder when a symbol would exceed
	// DecoderOptions.MaxSymbols, or peeling would exceed its work bound,
	// before the difference decoded.
	ErrBudget = errors.New("riblt: symbol budget spent")

	// ErrOutOfOrder is returned by Decoder.AddSymbols when a run starts
	// after the next symbol the decoder expects (a gap).
	ErrOutOfOrder = errors.New("riblt: symbols out of order")
)
