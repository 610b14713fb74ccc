package riblt

import "github.com/goatdb/goatdb/commit"

// element is one member of a set: its short id and keyed checksum.
type element struct {
	x, check uint64
}

// An Encoder holds a set and produces its coded symbols. The symbols of a
// set are a pure function of the set and the key: any range of them can be
// produced again, by any Encoder with the same elements, in any order of
// adding. An Encoder is not safe for concurrent use while elements are
// added; once they are, AppendSymbols and Symbol may run concurrently.
type Encoder struct {
	key   Key
	elems []element
}

// NewEncoder returns an empty Encoder for key.
func NewEncoder(key Key) *Encoder { return &Encoder{key: key} }

// Add adds a commit id, by its short id. Each element is added once: the
// set is a set, and a short id added twice cancels out of every Sum.
func (e *Encoder) Add(id commit.ID) { e.AddShortID(e.key.ShortID(id)) }

// AddShortID adds an element by its short id.
func (e *Encoder) AddShortID(x uint64) {
	e.elems = append(e.elems, element{x, e.key.checksum(x)})
}

// Len returns the number of elements added.
func (e *Encoder) Len() int { return len(e.elems) }

// AppendSymbols appends the symbols with indices [start, end) to dst. It
// costs O(N·log end) for N elements (each element walks its mapping up to
// end) and 24 bytes per symbol; it appends nothing when end <= start.
func (e *Encoder) AppendSymbols(dst []Symbol, start, end uint64) []Symbol {
	if end <= start {
		return dst
	}
	n := len(dst)
	dst = append(dst, make([]Symbol, end-start)...)
	out := dst[n:]
	for _, el := range e.elems {
		m := newMapping(el.check)
		for ; m.index < end; m.advance() {
			if m.index >= start {
				out[m.index-start].add(el.x, el.check, 1)
			}
		}
	}
	return dst
}

// Symbol returns the symbol with index i, in O(N·log i).
func (e *Encoder) Symbol(i uint64) Symbol {
	var buf [1]Symbol
	return e.AppendSymbols(buf[:0], i, i+1)[0]
}

// Stream returns a Stream of the Encoder's symbols from index start, over
// the elements added so far.
func (e *Encoder) Stream(start uint64) *Stream {
	s := &Stream{w: newWindow(e.elems, 1)}
	s.w.skip(start)
	return s
}

// A Stream produces the symbols of a set one after another, keeping each
// element's place in its mapping (32 bytes per element) so that the first
// m symbols cost O(N·log m) however they are asked for. It computes them
// in batches that grow fourfold, so asking for one more symbol now and
// then costs a pass over the elements only every few symbols.
type Stream struct {
	w window
}

// Index returns the index of the symbol Next returns.
func (s *Stream) Index() uint64 { return s.w.next }

// Next returns the next symbol.
func (s *Stream) Next() Symbol { return s.w.take() }

// AppendNext appends the next n symbols to dst.
func (s *Stream) AppendNext(dst []Symbol, n int) []Symbol {
	for range n {
		dst = append(dst, s.w.take())
	}
	return dst
}

// A window computes the symbols of a set in consecutive batches, each
// element keeping its mapping's place: the symbols [start, end) are in
// buf, next is the index take returns.
type window struct {
	elems      []windowElem
	buf        []Symbol
	start, end uint64
	next       uint64
	first      uint64 // the size of the first batch
}

type windowElem struct {
	element
	m mapping
}

func newWindow(elems []element, first uint64) window {
	w := window{elems: make([]windowElem, len(elems)), first: max(first, 1)}
	for i, el := range elems {
		w.elems[i] = windowElem{el, newMapping(el.check)}
	}
	return w
}

// skip moves every element's mapping to index start or past it, so that
// the next symbol taken is start.
func (w *window) skip(start uint64) {
	for i := range w.elems {
		for m := &w.elems[i].m; m.index < start; {
			m.advance()
		}
	}
	w.start, w.end, w.next = start, start, start
}

// take returns the symbol with index w.next and moves past it.
func (w *window) take() Symbol {
	if w.next >= w.end {
		size := max(w.first, 4*(w.end-w.start))
		w.fill(w.end + size)
	}
	s := w.buf[w.next-w.start]
	w.next++
	return s
}

// fill computes the symbols [w.end, end) into buf.
func (w *window) fill(end uint64) {
	start := w.end
	w.buf = append(w.buf[:0], make([]Symbol, end-start)...)
	for i := range w.elems {
		el := &w.elems[i]
		for ; el.m.index < end; el.m.advance() {
			w.buf[el.m.index-start].add(el.x, el.check, 1)
		}
	}
	w.start, w.end = start, end
}
