package riblt

import (
	"fmt"
	"slices"

	"github.com/goatdb/goatdb/commit"
)

// DefaultMaxSymbols is DecoderOptions.MaxSymbols when it is zero: enough
// for a difference of about 90,000 elements, at 24 bytes per symbol kept.
const DefaultMaxSymbols = 1 << 17

// workPerSymbol bounds peeling: at most this many mapping steps per
// symbol received (plus a constant), where an honest stream of m symbols
// needs about 2·(2·ln(m/2)+1) per decoded element, at most one element
// per symbol.
const workPerSymbol = 128

// DecoderOptions tune a Decoder. The zero value, or nil, means the
// defaults.
type DecoderOptions struct {
	// MaxSymbols is the most remote symbols the Decoder accepts; the one
	// after is refused with ErrBudget. Zero means DefaultMaxSymbols.
	MaxSymbols int
}

// Validate reports whether the options are usable.
func (o *DecoderOptions) Validate() error {
	if o != nil && (o.MaxSymbols < 0 || o.MaxSymbols > MaxIndex) {
		return fmt.Errorf("riblt: DecoderOptions.MaxSymbols %d not in [0, %d]", o.MaxSymbols, uint64(MaxIndex))
	}
	return nil
}

// A Decoder reconciles the local set with a remote one from the remote's
// coded symbols: add the local elements, then the remote symbols in index
// order from 0; after each, Done reports whether the difference is known,
// and RemoteOnly and LocalOnly give it. Any error is final: the Decoder
// then refuses further symbols with the same error, and the caller falls
// back (see the package documentation). A Decoder is not safe for
// concurrent use.
type Decoder struct {
	key     Key
	maxSyms uint64

	local   []element // local elements, until the first symbol
	started bool
	set     idset  // local short ids
	lw      window // the local set's symbols

	syms    []Symbol // remote minus local minus peeled, per index received
	nonzero int      // how many of syms are not zero
	queue   []uint64 // indices into syms that may be pure
	peeled  idset    // peeled elements
	npeeled int
	pending peelHeap // peeled elements, by the next index they join
	remote  []uint64 // elements only the remote set holds
	localX  []uint64 // elements only the local set holds
	work    uint64   // mapping steps spent peeling
	err     error
}

// NewDecoder returns an empty Decoder for key. It panics if opts does not
// Validate.
func NewDecoder(key Key, opts *DecoderOptions) *Decoder {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	d := &Decoder{key: key, maxSyms: DefaultMaxSymbols}
	if opts != nil && opts.MaxSymbols != 0 {
		d.maxSyms = uint64(opts.MaxSymbols)
	}
	return d
}

// Add adds a local commit id, by its short id. Each element is added
// once; a short id added twice fails the first AddSymbol with
// ErrCollision. Add panics once a symbol has been added.
func (d *Decoder) Add(id commit.ID) { d.AddShortID(d.key.ShortID(id)) }

// AddShortID adds a local element by its short id, as Add.
func (d *Decoder) AddShortID(x uint64) {
	if d.started {
		panic("riblt: Decoder.Add after the first symbol")
	}
	d.local = append(d.local, element{x, d.key.checksum(x)})
}

// Received returns how many remote symbols were added: the index of the
// next one.
func (d *Decoder) Received() uint64 { return uint64(len(d.syms)) }

// Done reports whether the difference is decoded: every symbol received
// is accounted for. Later symbols, if any are added, must agree.
func (d *Decoder) Done() bool { return d.err == nil && len(d.syms) > 0 && d.nonzero == 0 }

// Err returns the error that stopped the Decoder, or nil.
func (d *Decoder) Err() error { return d.err }

// RemoteOnly returns the elements decoded so far that only the remote set
// holds, in the order they were found.
func (d *Decoder) RemoteOnly() []uint64 { return slices.Clone(d.remote) }

// LocalOnly returns the elements decoded so far that only the local set
// holds, in the order they were found.
func (d *Decoder) LocalOnly() []uint64 { return slices.Clone(d.localX) }

// AddSymbols adds a run of remote symbols whose first has index start.
// Symbols already received are skipped (they are reproducible, so a
// resent run overlaps harmlessly); a run starting past Received is
// refused with ErrOutOfOrder, which does not stop the Decoder. Adding
// stops early, without error, once Done.
func (d *Decoder) AddSymbols(start uint64, syms []Symbol) error {
	if d.err != nil {
		return d.err
	}
	next := d.Received()
	if start > next {
		return fmt.Errorf("%w: run starts at symbol %d, expected %d", ErrOutOfOrder, start, next)
	}
	if next-start >= uint64(len(syms)) {
		return nil
	}
	for _, s := range syms[next-start:] {
		if d.Done() {
			return nil
		}
		if err := d.AddSymbol(s); err != nil {
			return err
		}
	}
	return nil
}

// AddSymbol adds the remote symbol with index Received() and peels what
// it makes decodable. It returns the Decoder's error, if any.
func (d *Decoder) AddSymbol(s Symbol) error {
	if d.err != nil {
		return d.err
	}
	if !d.started {
		if d.begin(); d.err != nil {
			return d.err
		}
	}
	j := uint64(len(d.syms))
	if j >= d.maxSyms {
		return d.fail(fmt.Errorf("%w: symbol %d, at most %d", ErrBudget, j, d.maxSyms))
	}
	if s.Count > MaxCount || s.Count < -MaxCount {
		return d.fail(fmt.Errorf("%w: symbol %d: count %d out of range", ErrInconsistent, j, s.Count))
	}
	l := d.lw.take()
	s.Sum ^= l.Sum
	s.Check ^= l.Check
	s.Count -= l.Count
	d.syms = append(d.syms, Symbol{})
	d.set0(j, s)
	for len(d.pending) > 0 && d.pending[0].m.index == j {
		p := &d.pending[0]
		d.apply(j, p.x, p.check, p.sign)
		p.m.advance()
		d.pending.fix0()
		if d.work++; d.work > d.maxWork() {
			return d.fail(fmt.Errorf("%w: peeling work beyond %d steps at symbol %d", ErrBudget, d.maxWork(), j))
		}
	}
	return d.settle()
}

// begin indexes the local set and starts its symbols.
func (d *Decoder) begin() {
	d.started = true
	d.set = newIDSet(len(d.local))
	for _, el := range d.local {
		if !d.set.add(el.x) {
			d.fail(fmt.Errorf("%w: two local elements have short id %#x", ErrCollision, el.x))
			return
		}
	}
	d.lw = newWindow(d.local, 1)
	d.local = nil
	d.peeled = newIDSet(64)
}

func (d *Decoder) fail(err error) error {
	d.err = err
	return err
}

func (d *Decoder) maxWork() uint64 { return workPerSymbol * (uint64(len(d.syms)) + 64) }

// set0 sets the new symbol j, which is zero, to s.
func (d *Decoder) set0(j uint64, s Symbol) {
	d.syms[j] = s
	if s != (Symbol{}) {
		d.nonzero++
	}
	if s.Count == 1 || s.Count == -1 {
		d.queue = append(d.queue, j)
	}
}

// apply takes element x, peeled with sign (+1 remote-only, -1
// local-only), out of symbol k.
func (d *Decoder) apply(k, x, check uint64, sign int64) {
	s := &d.syms[k]
	if *s == (Symbol{}) {
		d.nonzero++
	}
	s.add(x, check, -sign)
	if *s == (Symbol{}) {
		d.nonzero--
	}
	if s.Count == 1 || s.Count == -1 {
		d.queue = append(d.queue, k)
	}
}

// settle peels every pure symbol, then checks symbol 0, which holds every
// element of the difference.
func (d *Decoder) settle() error {
	for len(d.queue) > 0 {
		k := d.queue[len(d.queue)-1]
		d.queue = d.queue[:len(d.queue)-1]
		if s := d.syms[k]; (s.Count == 1 || s.Count == -1) && d.key.checksum(s.Sum) == s.Check {
			if err := d.peel(k); err != nil {
				return err
			}
		}
	}
	s0 := d.syms[0]
	switch {
	case s0 == (Symbol{}) && d.nonzero > 0:
		return d.fail(fmt.Errorf("%w: symbol 0 is empty but %d others are not", ErrInconsistent, d.nonzero))
	case s0 != (Symbol{}) && s0.Sum == 0 && s0.Check == 0:
		return d.fail(fmt.Errorf("%w: symbol 0 has count %d but cancelling sums", ErrCollision, s0.Count))
	}
	return nil
}

// peel decodes the element of pure symbol k and takes it out of every
// symbol received that it joins.
func (d *Decoder) peel(k uint64) error {
	s := d.syms[k]
	x, check, sign := s.Sum, s.Check, s.Count
	local := d.set.has(x)
	switch {
	case d.peeled.has(x):
		return d.fail(fmt.Errorf("%w: element %#x peeled twice (symbol %d)", ErrInconsistent, x, k))
	case sign == 1 && local:
		return d.fail(fmt.Errorf("%w: remote-only element %#x is local too (symbol %d)", ErrCollision, x, k))
	case sign == -1 && !local:
		return d.fail(fmt.Errorf("%w: local-only element %#x is not local (symbol %d)", ErrInconsistent, x, k))
	case d.npeeled >= len(d.syms):
		return d.fail(fmt.Errorf("%w: more elements than the %d symbols", ErrInconsistent, len(d.syms)))
	}
	d.addPeeled(x)
	hit := false
	m := newMapping(check)
	for ; m.index < uint64(len(d.syms)); m.advance() {
		if d.work++; d.work > d.maxWork() {
			return d.fail(fmt.Errorf("%w: peeling work beyond %d steps at symbol %d", ErrBudget, d.maxWork(), len(d.syms)-1))
		}
		hit = hit || m.index == k
		d.apply(m.index, x, check, sign)
	}
	if !hit {
		return d.fail(fmt.Errorf("%w: element %#x of symbol %d does not map to it", ErrInconsistent, x, k))
	}
	d.pending.push(peeledElem{x: x, check: check, sign: sign, m: m})
	if sign == 1 {
		d.remote = append(d.remote, x)
	} else {
		d.localX = append(d.localX, x)
	}
	return nil
}

// addPeeled records x as peeled, growing the set to stay half empty.
func (d *Decoder) addPeeled(x uint64) {
	if 2*(d.npeeled+1) > len(d.peeled.slots) {
		grown := newIDSet(2 * (d.npeeled + 1))
		for _, y := range d.peeled.slots {
			if y != 0 {
				grown.add(y)
			}
		}
		grown.hasZero = d.peeled.hasZero
		d.peeled = grown
	}
	d.peeled.add(x)
	d.npeeled++
}

// A peeledElem is a decoded element with its place in its mapping: the
// first index it joins that has not been received.
type peeledElem struct {
	x, check uint64
	sign     int64
	m        mapping
}

// peelHeap is a min-heap of peeled elements by m.index.
type peelHeap []peeledElem

func (h *peelHeap) push(p peeledElem) {
	*h = append(*h, p)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if a[parent].m.index <= a[i].m.index {
			break
		}
		a[parent], a[i] = a[i], a[parent]
		i = parent
	}
}

// fix0 restores the heap after the root's index grew.
func (h peelHeap) fix0() {
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].m.index < h[small].m.index {
			small = l
		}
		if r < len(h) && h[r].m.index < h[small].m.index {
			small = r
		}
		if small == i {
			return
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
}
