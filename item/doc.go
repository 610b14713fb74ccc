// Package item defines goatdb's item values: typed fields, their canonical
// binary encoding, per-field diff and patch, and the deterministic three-way
// merge.
//
// # Values
//
// A [Value] is one of: string, number (float64), int (int64), bool, date
// (UTC, millisecond precision), set (of scalar values), map (string to
// value), list (of scalar values, ordered, duplicates allowed) or counter
// (an int64 whose concurrent increments add up). Lists and counters are
// item fields only, never inside a map. Values are immutable: every
// operation returns a new value and never changes the slices it was given
// or returns. An [Item] is an immutable, sorted list of named fields plus
// the built-in deleted flag.
//
// # Ints and numbers
//
// Int and number are distinct types, and which one a value gets depends
// only on how it is written, never on who writes it: a Go integer (int,
// int64, uint32, ...) is an int, a Go float is a number, and a JSON number
// literal (a json.Number, as json.Decoder.UseNumber and the goatdb command
// decode them) is an int when it has no fraction and no exponent and fits
// in an int64, a number otherwise. So 1 is an int and 1.0, 1e3 and
// 9223372036854775808 are numbers, whether they come from Go or from JSON.
// [Convert] turns one into the other where nothing is lost, and schemas use
// it to hold a field to one of them. [Compare] orders by type first (a
// total order for the canonical encoding: the int 1 and the number 1 are
// two set elements), but queries compare an int and a number by value.
//
// # Invariants
//
//   - Set elements are scalars, sorted by [Compare] and unique.
//   - List elements are scalars; each stored element has an [ElemID]
//     unique in its list, which it keeps for life (elements are inserted
//     and deleted, never moved or changed).
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
//	  tag 8 list    : uvarint n, n × elem                (ids unique)
//	  tag 10 counter: zigzag varint
//
//	elem   := uvarint (Seq<<1 | same), [tag: 8 bytes, little endian, unless same], value (a scalar)
//	id     := uvarint Seq, [tag: 8 bytes, little endian, unless Seq is 0 (the head)]
//
// An element's id is (Seq, tag). same is 1 when its tag is the tag of the
// element coded before it (in a list value, the previous element; in a
// run, the previous element or, for the first, the run's anchor), so the
// elements one write inserted cost their Seq and value only:
//
//	list ["a", "b"] written by one write with tag T:
//	+----+----+------+-----------+---------+------+---------+
//	| 08 | 02 | 1<<1 | T (8 B)   | 01 01 61| 2<<1|1| 01 01 62|
//	+----+----+------+-----------+---------+------+---------+
//	 tag   n    elem 1: Seq 1, tag, "a"     elem 2: Seq 2, same, "b"
//
//	item   := uvarint (nfields<<1 | deleted), nfields × (name, value)   (names strictly increasing)
//	delta  := uvarint (nedits<<2 | flag), nedits × edit                 (flag: 0 keep, 1 clear, 2 set deleted)
//	edit   := name, op byte, payload
//	  op 1 set    : value
//	  op 2 remove : nothing
//	  op 3 setops : uvarint n, n added values, uvarint m, m removed values (each list strictly increasing)
//	  op 4 mapops : uvarint n, n × (key, value), uvarint m, m removed keys (each list strictly increasing)
//	  op 5 listops: uvarint r, r × run, uvarint m, m × id deleted (strictly increasing, never the head)
//	  op 6 counter: zigzag varint added (not 0)
//	run    := id anchor, uvarint k (k ≥ 1), k × elem     (inserted right after anchor; the head: at the start)
//
// Tags 8 and 10 and ops 5 and 6 came with lists and counters; older
// encodings decode as before. Tag 9 is the compact number form, so no type
// has the number 9.
//
// # Lists
//
// Lists merge element by element, so a list value carries the identity of
// its elements: (Seq, tag) with Seq a Lamport number (greater than every
// element of the list the writer saw) and tag a number the writing
// repository derives from the write (its session, parent commits and time;
// see [AssignIDs]). The id cannot come from the commit itself: the commit
// id is a hash of the content, ids included. A user writes a list as plain
// values; [AssignIDs] matches it against the previous value (longest common
// subsequence) so that unchanged elements keep their ids, and gives the new
// ones ids. Two concurrent writes get different tags, so their ids never
// collide; a write that repeats another's session, parents and time exactly
// is the same write.
//
// [Diff] of two lists deletes ids and inserts runs, each anchored at the
// element before it in the new list. [Merge] follows RGA's rule (the
// replicated growable array: elements that may take the same place are
// ordered by id, greatest first), chosen over Fugue because it is simpler
// and because Fugue's gain, not interleaving runs typed backwards one
// element at a time, does not arise here: a write inserts whole runs, and
// RGA keeps a run together. Unlike RGA it keeps no tombstones and no
// origins: the base and each leaf's list are chains of elements, and the
// merge is the one order agreeing with every chain in which, whenever
// several elements may come next, the greatest id comes first. Elements
// of a run have consecutive Seqs, so once a run's first element beats
// another run's, so do the rest: concurrent runs at one place are never
// interleaved, and no merge reorders elements an input holds. The price of
// keeping no tombstones: merging the same concurrent insertions in two
// groupings (a then b then c, or all at once) can order insertions that no
// leaf orders differently; each peer's merge is still a function of the
// commits, so peers holding the same commits hold the same list.
//
// # Counters
//
// A counter's diff is the difference of the two values, and merging adds
// every leaf's difference from the base to the base, so concurrent
// increments and decrements all count. Writing a counter to a value is an
// increment by the difference. Sums wrap around at 64 bits.
//
// The compact number form exists because most numbers are small integers: a
// counter update costs 2 bytes instead of 9. Because every peer decides the
// form the same way, it stays canonical.
package item
