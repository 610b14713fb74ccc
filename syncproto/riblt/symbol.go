package riblt

import (
	"encoding/binary"
	"fmt"
)

// A Symbol is one coded symbol: the elements mapped to its index, summed.
// In an Encoder's stream Count is the number of those elements; in a
// Decoder's difference it is the remote count minus the local one.
type Symbol struct {
	Sum   uint64 // XOR of the elements' short ids
	Check uint64 // XOR of their keyed checksums
	Count int64  // how many elements
}

// add adds (sign +1) or removes (sign -1) element x with checksum check.
func (s *Symbol) add(x, check uint64, sign int64) {
	s.Sum ^= x
	s.Check ^= check
	s.Count += sign
}

// Bounds of the symbol-run encoding, also enforced by a Decoder.
const (
	// MaxRunSymbols is the most symbols one run holds.
	MaxRunSymbols = 1 << 16
	// MaxIndex bounds symbol indices: a run's start plus its length is at
	// most MaxIndex, and no Decoder accepts more than MaxIndex symbols.
	MaxIndex = 1 << 40
	// MaxCount bounds the magnitude of a symbol's count.
	MaxCount = 1 << 48
)

// minSymbolSize is the fewest bytes a symbol takes in a run.
const minSymbolSize = 8 + 8 + 1

// A run is the encoding of the symbols [start, start+n) of one stream:
//
//	run:    +--------------+----------+----------+-----+------------+
//	        | start uvarint| n uvarint| symbol 0 | ... | symbol n-1 |
//	        +--------------+----------+----------+-----+------------+
//
//	symbol: +-----------------+-----------------+-----------------+
//	        | Sum  8 bytes LE | Check 8 bytes LE| Count  varint   |
//	        +-----------------+-----------------+-----------------+
//
// Sum and Check are uniformly random 64-bit values, so they are stored
// whole; Count is a zigzag varint (encoding/binary's Varint): an Encoder's
// counts fall with the index (about N/(1+j/2) at index j), a difference's
// are small, so a symbol takes 17–20 bytes (17 when |Count| < 64, 18
// below 8,192, 19 below 1,048,576). Varints must be minimal, counts within
// ±MaxCount, n at most MaxRunSymbols and start+n at most MaxIndex; nothing
// may follow the last symbol. The run has no version byte and no checksum:
// it travels inside a sync message, which carries both (and the key).

// AppendRun appends the encoding of syms, the symbols starting at index
// start, to dst. It fails (ErrMalformed) when the run breaks a bound.
func AppendRun(dst []byte, start uint64, syms []Symbol) ([]byte, error) {
	if len(syms) > MaxRunSymbols {
		return dst, fmt.Errorf("%w: %d symbols, more than %d", ErrMalformed, len(syms), MaxRunSymbols)
	}
	if start > MaxIndex-uint64(len(syms)) {
		return dst, fmt.Errorf("%w: symbols [%d, %d) beyond index %d", ErrMalformed, start, start+uint64(len(syms)), uint64(MaxIndex))
	}
	dst = binary.AppendUvarint(dst, start)
	dst = binary.AppendUvarint(dst, uint64(len(syms)))
	for i, s := range syms {
		if s.Count > MaxCount || s.Count < -MaxCount {
			return dst, fmt.Errorf("%w: symbol %d: count %d out of range", ErrMalformed, start+uint64(i), s.Count)
		}
		dst = binary.LittleEndian.AppendUint64(dst, s.Sum)
		dst = binary.LittleEndian.AppendUint64(dst, s.Check)
		dst = binary.AppendVarint(dst, s.Count)
	}
	return dst, nil
}

// DecodeRun decodes one run that fills b exactly, appending its symbols to
// dst. It returns the index of the first symbol and the extended slice.
// Anything but a canonical run within the bounds is ErrMalformed; it
// allocates only after checking that b holds that many symbols.
func DecodeRun(b []byte, dst []Symbol) (start uint64, syms []Symbol, err error) {
	start, b, err = uvarint(b, "start")
	if err != nil {
		return 0, dst, err
	}
	n, b, err := uvarint(b, "symbol count")
	if err != nil {
		return 0, dst, err
	}
	if n > MaxRunSymbols {
		return 0, dst, fmt.Errorf("%w: %d symbols, more than %d", ErrMalformed, n, MaxRunSymbols)
	}
	if start > MaxIndex-n {
		return 0, dst, fmt.Errorf("%w: symbols [%d, %d) beyond index %d", ErrMalformed, start, start+n, uint64(MaxIndex))
	}
	if uint64(len(b)) < n*minSymbolSize {
		return 0, dst, fmt.Errorf("%w: %d symbols in %d bytes", ErrMalformed, n, len(b))
	}
	syms = dst
	for i := range n {
		var s Symbol
		if s, b, err = decodeSymbol(b); err != nil {
			return 0, dst, fmt.Errorf("symbol %d: %w", start+i, err)
		}
		syms = append(syms, s)
	}
	if len(b) != 0 {
		return 0, dst, fmt.Errorf("%w: %d bytes after the last symbol", ErrMalformed, len(b))
	}
	return start, syms, nil
}

func decodeSymbol(b []byte) (Symbol, []byte, error) {
	if len(b) < minSymbolSize {
		return Symbol{}, b, fmt.Errorf("%w: truncated symbol", ErrMalformed)
	}
	s := Symbol{Sum: binary.LittleEndian.Uint64(b), Check: binary.LittleEndian.Uint64(b[8:])}
	c, k := binary.Varint(b[16:])
	if k <= 0 || k != varintLen(c) {
		return Symbol{}, b, fmt.Errorf("%w: count is not a minimal varint", ErrMalformed)
	}
	if c > MaxCount || c < -MaxCount {
		return Symbol{}, b, fmt.Errorf("%w: count %d out of range", ErrMalformed, c)
	}
	s.Count = c
	return s, b[16+k:], nil
}

// uvarint reads a minimal uvarint naming what.
func uvarint(b []byte, what string) (uint64, []byte, error) {
	v, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(v) {
		return 0, b, fmt.Errorf("%w: %s is not a minimal uvarint", ErrMalformed, what)
	}
	return v, b[k:], nil
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}
