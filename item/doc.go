// Package item defines goatdb's item values: typed fields, their canonical
// binary encoding, per-field diff and patch, and the deterministic three-way
// merge.
//
// # Values
//
// A [Value] is one of: string, number (float64), int (int64), bool, date
// (UTC, millisecond precision), set (of scalar values) or map (string to
// value). Values are immutable: every operation returns a new value and never
// changes the slices it was given or returns. An [Item] is an immutable,
// sorted list of named fields plus the built-in deleted flag.
//
// # Invariants
//
//   - Set elements are scalars, sorted by [Compare] and unique.
//   - Map keys are sorted and unique; item fields are sorted by name and unique.
//   - Numbers are never NaN and never negative zero (-0 becomes 0).
//   - Strings, field names and map keys are valid UTF-8.
//   - Encoding is canonical: equal values have equal bytes, and the decoder
//     accepts only canonical bytes, so decode then encode is the identity.
//     The decoder never panics, whatever its input.
//   - [Merge] depends only on its inputs, so every peer that merges the same
//     leaves gets the same item, byte for byte.
//
// # Encoding
//
// All integers are unsigned LEB128 varints (uvarint) in their shortest form;
// signed integers are zigzag-encoded first.
//
//	value  := tag payload
//	  tag 1 string  : uvarint len, UTF-8 bytes
//	  tag 2 number  : 8 bytes, IEEE 754 bits, little endian (non-integral or |x| > 2^53)
//	  tag 9 number  : zigzag varint (integral values with |x| <= 2^53: compact form)
//	  tag 3 int     : zigzag varint
//	  tag 4 bool    : 1 byte, 0 or 1
//	  tag 5 date    : zigzag varint, Unix milliseconds UTC
//	  tag 6 set     : uvarint n, n values (scalars, strictly increasing)
//	  tag 7 map     : uvarint n, n × (uvarint len, key bytes, value) (keys strictly increasing)
//
//	item   := uvarint (nfields<<1 | deleted), nfields × (name, value)   (names strictly increasing)
//	delta  := uvarint (nedits<<2 | flag), nedits × edit                 (flag: 0 keep, 1 clear, 2 set deleted)
//	edit   := name, op byte, payload
//	  op 1 set    : value
//	  op 2 remove : nothing
//	  op 3 setops : uvarint n, n added values, uvarint m, m removed values (each list strictly increasing)
//	  op 4 mapops : uvarint n, n × (key, value), uvarint m, m removed keys (each list strictly increasing)
//
// The compact number form exists because most numbers are small integers: a
// counter update costs 2 bytes instead of 9. Because every peer decides the
// form the same way, it stays canonical.
package item
