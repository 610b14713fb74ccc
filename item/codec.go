package item

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
	"unsafe"
)

const tagCompactNumber = 9

// maxCompact is the largest magnitude of an integral number that is
// encoded in the compact form; every such float64 is exact.
const maxCompact = 1 << 53

// AppendValue appends the canonical encoding of v to b.
func AppendValue(b []byte, v Value) ([]byte, error) {
	if err := v.Valid(); err != nil {
		return b, err
	}
	if err := checkStored(v); err != nil {
		return b, err
	}
	return appendValue(b, v), nil
}

func appendValue(b []byte, v Value) []byte {
	switch v.t {
	case TypeString:
		b = append(b, byte(TypeString))
		return appendString(b, v.s)
	case TypeNumber:
		f := v.Float()
		if f == math.Trunc(f) && math.Abs(f) <= maxCompact {
			b = append(b, tagCompactNumber)
			return binary.AppendVarint(b, int64(f))
		}
		b = append(b, byte(TypeNumber))
		return binary.LittleEndian.AppendUint64(b, v.n)
	case TypeInt, TypeDate, TypeCounter:
		b = append(b, byte(v.t))
		return binary.AppendVarint(b, int64(v.n))
	case TypeBool:
		return append(b, byte(TypeBool), byte(v.n))
	case TypeSet:
		b = append(b, byte(TypeSet))
		return appendValues(b, v.c.elems)
	case TypeMap:
		b = append(b, byte(TypeMap))
		b = binary.AppendUvarint(b, uint64(len(v.c.keys)))
		for i, k := range v.c.keys {
			b = appendString(b, k)
			b = appendValue(b, v.c.elems[i])
		}
		return b
	case TypeList:
		b = append(b, byte(TypeList))
		b = binary.AppendUvarint(b, uint64(len(v.c.elems)))
		var prev ElemID
		for i, e := range v.c.elems {
			b = appendElem(b, ListElem{ID: v.c.meta[i], Value: e}, prev)
			prev = v.c.meta[i]
		}
		return b
	}
	panic("item: appendValue of invalid value") // unreachable: callers validate
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValues(b []byte, vs []Value) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, e := range vs {
		b = appendValue(b, e)
	}
	return b
}

// AppendItem appends the canonical encoding of it to b.
func AppendItem(b []byte, it Item) ([]byte, error) {
	if err := it.Valid(); err != nil {
		return b, err
	}
	n := uint64(len(it.fields)) << 1
	if it.deleted {
		n |= 1
	}
	b = binary.AppendUvarint(b, n)
	for _, f := range it.fields {
		if err := checkStored(f.Value); err != nil {
			return b, fieldErr(f.Name, err)
		}
		b = appendString(b, f.Name)
		b = appendValue(b, f.Value)
	}
	return b, nil
}

// AppendDelta appends the canonical encoding of d to b. Edits must be
// sorted by field name with one edit per field, as [Diff] makes them.
func AppendDelta(b []byte, d Delta) ([]byte, error) {
	if d.Deleted > FlagSet {
		return b, fmt.Errorf("%w: deleted flag %d", ErrInvalidValue, d.Deleted)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Edits))<<2|uint64(d.Deleted))
	for i, e := range d.Edits {
		if err := validName(e.Field); err != nil {
			return b, err
		}
		if i > 0 && d.Edits[i-1].Field >= e.Field {
			return b, errUnsorted
		}
		var err error
		if b, err = appendEdit(b, e); err != nil {
			return b, fieldErr(e.Field, err)
		}
	}
	return b, nil
}

func appendEdit(b []byte, e Edit) ([]byte, error) {
	b = appendString(b, e.Field)
	b = append(b, byte(e.Op))
	switch e.Op {
	case OpSet:
		return AppendValue(b, e.Value)
	case OpRemove:
		return b, nil
	case OpSetOps:
		for _, list := range [][]Value{e.Add, e.Del} {
			s, err := Set(list...)
			if err != nil {
				return b, err
			}
			if !slices.EqualFunc(s.Elems(), list, Equal) {
				return b, fmt.Errorf("%w: set edit elements not sorted or not unique", ErrInvalidValue)
			}
			b = appendValues(b, list)
		}
		return b, nil
	case OpMapOps:
		b = binary.AppendUvarint(b, uint64(len(e.Put)))
		for i, f := range e.Put {
			if i > 0 && e.Put[i-1].Name >= f.Name {
				return b, errUnsorted
			}
			if !utf8.ValidString(f.Name) {
				return b, fmt.Errorf("%w: map key is not valid UTF-8", ErrInvalidValue)
			}
			if err := f.Value.valid(1); err != nil { // a put value sits inside the field's map
				return b, err
			}
			b = appendString(b, f.Name)
			b = appendValue(b, f.Value)
		}
		b = binary.AppendUvarint(b, uint64(len(e.DelKeys)))
		for i, k := range e.DelKeys {
			if i > 0 && e.DelKeys[i-1] >= k {
				return b, errUnsorted
			}
			if !utf8.ValidString(k) {
				return b, fmt.Errorf("%w: map key is not valid UTF-8", ErrInvalidValue)
			}
			b = appendString(b, k)
		}
		return b, nil
	case OpListOps:
		return appendListOps(b, e)
	case OpCounterAdd:
		if e.N == 0 {
			return b, fmt.Errorf("%w: counter addition of 0", ErrInvalidValue)
		}
		return binary.AppendVarint(b, e.N), nil
	}
	return b, fmt.Errorf("%w: unknown edit op %d", ErrInvalidValue, e.Op)
}

// appendElem appends a list element, coded relative to the id of the
// element before it (the zero id for the first):
//
//	uvarint Seq<<1 | sameTag, [8-byte tag unless sameTag], value
func appendElem(b []byte, e ListElem, prev ElemID) []byte {
	h := e.ID.Seq << 1
	sameTag := !prev.IsHead() && e.ID.Tag == prev.Tag
	if sameTag {
		h |= 1
	}
	b = binary.AppendUvarint(b, h)
	if !sameTag {
		b = binary.LittleEndian.AppendUint64(b, e.ID.Tag)
	}
	return appendValue(b, e.Value)
}

// appendID appends an id: uvarint Seq, then, unless Seq is 0 (the head),
// the 8-byte tag.
func appendID(b []byte, id ElemID) []byte {
	b = binary.AppendUvarint(b, id.Seq)
	if id.Seq == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint64(b, id.Tag)
}

func appendListOps(b []byte, e Edit) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(e.Runs)))
	for _, r := range e.Runs {
		if len(r.Elems) == 0 {
			return b, fmt.Errorf("%w: empty list run", ErrInvalidValue)
		}
		if err := checkID(r.After, true); err != nil {
			return b, err
		}
		v := newList(r.Elems)
		if err := v.validList(); err != nil {
			return b, err
		}
		if !v.assigned() {
			return b, errUnassigned
		}
		b = appendID(b, r.After)
		b = binary.AppendUvarint(b, uint64(len(r.Elems)))
		prev := r.After
		for _, el := range r.Elems {
			b = appendElem(b, el, prev)
			prev = el.ID
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.DelIDs)))
	for i, id := range e.DelIDs {
		if err := checkID(id, false); err != nil {
			return b, err
		}
		if i > 0 && e.DelIDs[i-1].Compare(id) >= 0 {
			return b, fmt.Errorf("%w: deleted list elements not sorted or not unique", ErrInvalidValue)
		}
		b = appendID(b, id)
	}
	return b, nil
}

// Decoder reads canonical encodings from a byte slice. It never panics; the
// first error stops it and is kept in Err.
type Decoder struct {
	buf []byte
	off int
	err error
	in  *Interner // shares field names; nil allocates each
	// alias makes decoded strings share the input's memory instead of
	// copying it; the input must then never change.
	alias bool
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// NewSharingDecoder returns a decoder over b that takes field names from in
// (so decoding many items keeps one copy of each name) and whose other
// decoded strings share b's memory rather than copying it. b must never be
// modified afterwards.
func NewSharingDecoder(b []byte, in *Interner) *Decoder {
	return &Decoder{buf: b, in: in, alias: true}
}

// Interner keeps one copy of each short string it is given. It is not safe
// for concurrent use; give each goroutine its own.
type Interner struct{ m map[string]string }

// maxInterned bounds an Interner's size: names beyond it are not shared.
const maxInterned = 1 << 12

// Intern returns a string equal to b, shared with earlier calls.
func (in *Interner) Intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = map[string]string{}
	}
	if len(in.m) < maxInterned && len(s) <= 64 {
		in.m[s] = s
	}
	return s
}

// Err returns the first error met, wrapping [ErrCorrupt].
func (d *Decoder) Err() error { return d.err }

// Offset returns how many bytes have been read.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the bytes not read yet.
func (d *Decoder) Remaining() []byte { return d.buf[d.off:] }

// Fail records an error at the current offset, unless one is already kept.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w at offset %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.Fail("unexpected end of input")
		return 0
	}
	c := d.buf[d.off]
	d.off++
	return c
}

// Bytes reads n bytes; the result aliases the input.
func (d *Decoder) Bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.Fail("length %d exceeds the %d bytes left", n, len(d.buf)-d.off)
		return nil
	}
	p := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// Uvarint reads a uvarint in its shortest form.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	if n > 1 && d.buf[d.off+n-1] == 0 {
		d.Fail("varint not in shortest form")
		return 0
	}
	d.off += n
	return x
}

// Varint reads a zigzag varint in its shortest form.
func (d *Decoder) Varint() int64 {
	ux := d.Uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Count reads an element count and checks that at least min bytes per
// element remain, so corrupt counts cannot cause huge allocations.
func (d *Decoder) Count(min int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64(len(d.buf)-d.off)/uint64(min) {
		d.Fail("count %d exceeds the %d bytes left", n, len(d.buf)-d.off)
		return 0
	}
	return int(n)
}

// String reads a length-prefixed UTF-8 string.
func (d *Decoder) String() string {
	p := d.Bytes(d.Count(1))
	if d.err == nil && !utf8.Valid(p) {
		d.Fail("string is not valid UTF-8")
	}
	if d.alias && len(p) > 0 {
		return unsafe.String(&p[0], len(p))
	}
	return string(p)
}

// Value reads a value.
func (d *Decoder) Value() Value { return d.value(0) }

func (d *Decoder) value(depth int) Value {
	tag := d.Byte()
	if d.err != nil {
		return Value{}
	}
	if Type(tag).FieldOnly() && depth > 0 {
		d.Fail("%s value nested in a map, set or list", Type(tag))
		return Value{}
	}
	switch Type(tag) {
	case TypeString:
		return String(d.String())
	case TypeNumber:
		p := d.Bytes(8)
		if d.err != nil {
			return Value{}
		}
		bits := binary.LittleEndian.Uint64(p)
		f := math.Float64frombits(bits)
		if d.err == nil && (math.IsNaN(f) || (f == math.Trunc(f) && math.Abs(f) <= maxCompact)) {
			d.Fail("number %v not in canonical form", f)
		}
		return Value{t: TypeNumber, n: bits}
	case tagCompactNumber:
		i := d.Varint()
		if i > maxCompact || i < -maxCompact {
			d.Fail("compact number %d out of range", i)
		}
		return Number(float64(i))
	case TypeInt, TypeDate, TypeCounter:
		return Value{t: Type(tag), n: uint64(d.Varint())}
	case TypeList:
		return d.list()
	case TypeBool:
		b := d.Byte()
		if b > 1 {
			d.Fail("bool byte %d", b)
		}
		return Bool(b == 1)
	case TypeSet:
		return d.set()
	case TypeMap:
		if depth >= MaxDepth {
			d.Fail("maps nested deeper than %d", MaxDepth)
			return Value{}
		}
		return d.mapValue(depth)
	}
	d.off--
	d.Fail("unknown value tag %d", tag)
	return Value{}
}

func (d *Decoder) list() Value {
	n := d.Count(3)
	elems := make([]ListElem, 0, n)
	var prev ElemID
	for i := 0; i < n && d.err == nil; i++ {
		el := d.elem(prev)
		elems = append(elems, el)
		prev = el.ID
	}
	return d.checkList(elems)
}

// checkList makes a list of decoded elements, failing if two share an id.
func (d *Decoder) checkList(elems []ListElem) Value {
	if d.err != nil {
		return Value{}
	}
	v := newList(elems)
	if err := v.validList(); err != nil {
		d.Fail("%v", err)
		return Value{}
	}
	return v
}

// elem reads a list element coded relative to prev (see appendElem).
func (d *Decoder) elem(prev ElemID) ListElem {
	h := d.Uvarint()
	el := ListElem{ID: ElemID{Seq: h >> 1, Tag: prev.Tag}}
	if d.err == nil && (el.ID.Seq == 0 || h&1 != 0 && prev.IsHead()) {
		d.Fail("list element id %d after %d", el.ID.Seq, prev.Seq)
	}
	if h&1 == 0 {
		el.ID.Tag = d.tag()
		if d.err == nil && !prev.IsHead() && el.ID.Tag == prev.Tag {
			d.Fail("list element tag not in canonical form")
		}
	}
	el.Value = d.value(MaxDepth)
	if d.err == nil && !el.Value.t.Scalar() {
		d.Fail("list element of type %s", el.Value.t)
	}
	return el
}

func (d *Decoder) tag() uint64 {
	p := d.Bytes(8)
	if d.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// id reads an id (see appendID).
func (d *Decoder) id() ElemID {
	id := ElemID{Seq: d.Uvarint()}
	if id.Seq != 0 {
		id.Tag = d.tag()
	}
	if d.err == nil {
		if err := checkID(id, true); err != nil {
			d.Fail("%v", err)
		}
	}
	return id
}

func (d *Decoder) listOps(e *Edit) {
	n := d.Count(4)
	for i := 0; i < n && d.err == nil; i++ {
		r := ListRun{After: d.id()}
		k := d.Count(3)
		if d.err == nil && k == 0 {
			d.Fail("empty list run")
		}
		prev := r.After
		for j := 0; j < k && d.err == nil; j++ {
			el := d.elem(prev)
			r.Elems = append(r.Elems, el)
			prev = el.ID
		}
		d.checkList(r.Elems)
		e.Runs = append(e.Runs, r)
	}
	m := d.Count(1)
	for i := 0; i < m && d.err == nil; i++ {
		id := d.id()
		if d.err == nil && (id.IsHead() || i > 0 && e.DelIDs[i-1].Compare(id) >= 0) {
			d.Fail("deleted list elements not increasing")
		}
		e.DelIDs = append(e.DelIDs, id)
	}
}

func (d *Decoder) set() Value {
	elems := d.values()
	for _, e := range elems {
		if d.err == nil && !e.t.Scalar() {
			d.Fail("set element of type %s", e.t)
		}
	}
	if d.err != nil {
		return Value{}
	}
	return Value{t: TypeSet, c: &composite{elems: elems}}
}

// values reads a strictly increasing list of values.
func (d *Decoder) values() []Value {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	vs := make([]Value, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		v := d.value(MaxDepth) // set elements are scalars
		if i > 0 && d.err == nil && Compare(vs[i-1], v) >= 0 {
			d.Fail("elements not strictly increasing")
		}
		vs = append(vs, v)
	}
	return vs
}

func (d *Decoder) mapValue(depth int) Value {
	n := d.Count(3)
	c := &composite{keys: make([]string, 0, n), elems: make([]Value, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.String()
		if i > 0 && d.err == nil && c.keys[i-1] >= k {
			d.Fail("map keys not strictly increasing")
		}
		c.keys = append(c.keys, k)
		c.elems = append(c.elems, d.value(depth+1))
	}
	if d.err != nil {
		return Value{}
	}
	return Value{t: TypeMap, c: c}
}

func (d *Decoder) name(prev string, i int) string {
	var name string
	if d.in != nil {
		p := d.Bytes(d.Count(1))
		if d.err == nil && !utf8.Valid(p) {
			d.Fail("string is not valid UTF-8")
		}
		name = d.in.Intern(p)
	} else {
		name = d.String()
	}
	if d.err == nil {
		if err := validName(name); err != nil {
			d.Fail("%v", err)
		} else if i > 0 && prev >= name {
			d.Fail("field names not strictly increasing")
		}
	}
	return name
}

// mapKey reads a map key of a map edit: like a key in a map value, any
// UTF-8 string, strictly after prev unless it is the first (i == 0).
func (d *Decoder) mapKey(prev string, i int) string {
	k := d.String()
	if d.err == nil && i > 0 && prev >= k {
		d.Fail("map keys not strictly increasing")
	}
	return k
}

// Item reads an item.
func (d *Decoder) Item() Item {
	hdr := d.Uvarint()
	if d.err == nil && hdr>>1 > uint64(len(d.buf)-d.off)/3 {
		d.Fail("field count %d exceeds the bytes left", hdr>>1)
	}
	if d.err != nil {
		return Item{}
	}
	n := int(hdr >> 1)
	fs := make([]Field, 0, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		name := d.name(prev, i)
		fs = append(fs, Field{name, d.Value()})
		prev = name
	}
	if d.err != nil {
		return Item{}
	}
	return Item{fields: fs, deleted: hdr&1 == 1}
}

// Delta reads a delta.
func (d *Decoder) Delta() Delta {
	hdr := d.Uvarint()
	if d.err == nil && hdr&3 == 3 {
		d.Fail("deleted flag 3")
	}
	if d.err == nil && hdr>>2 > uint64(len(d.buf)-d.off)/3 {
		d.Fail("edit count %d exceeds the bytes left", hdr>>2)
	}
	if d.err != nil {
		return Delta{}
	}
	n := int(hdr >> 2)
	out := Delta{Deleted: Flag(hdr & 3), Edits: make([]Edit, 0, n)}
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		e := Edit{Field: d.name(prev, i), Op: Op(d.Byte())}
		prev = e.Field
		d.editPayload(&e)
		out.Edits = append(out.Edits, e)
	}
	if d.err != nil {
		return Delta{}
	}
	return out
}

func (d *Decoder) editPayload(e *Edit) {
	switch e.Op {
	case OpSet:
		e.Value = d.Value()
	case OpRemove:
	case OpSetOps:
		e.Add = d.set().Elems()
		e.Del = d.set().Elems()
	case OpMapOps:
		n := d.Count(3)
		for i := 0; i < n && d.err == nil; i++ {
			e.Put = append(e.Put, Field{d.mapKey(lastName(e.Put), i), d.value(1)})
		}
		m := d.Count(1)
		for i := 0; i < m && d.err == nil; i++ {
			prev := ""
			if i > 0 {
				prev = e.DelKeys[i-1]
			}
			e.DelKeys = append(e.DelKeys, d.mapKey(prev, i))
		}
	case OpListOps:
		d.listOps(e)
	case OpCounterAdd:
		if e.N = d.Varint(); d.err == nil && e.N == 0 {
			d.Fail("counter addition of 0")
		}
	default:
		d.Fail("unknown edit op %d", e.Op)
	}
}

func lastName(fs []Field) string {
	if len(fs) == 0 {
		return ""
	}
	return fs[len(fs)-1].Name
}

// DecodeItem decodes an item that fills b exactly.
func DecodeItem(b []byte) (Item, error) {
	d := NewDecoder(b)
	it := d.Item()
	d.End()
	return it, d.Err()
}

// DecodeDelta decodes a delta that fills b exactly.
func DecodeDelta(b []byte) (Delta, error) {
	d := NewDecoder(b)
	dl := d.Delta()
	d.End()
	return dl, d.Err()
}

// End fails if input remains.
func (d *Decoder) End() {
	if d.err == nil && d.off != len(d.buf) {
		d.Fail("%d trailing bytes", len(d.buf)-d.off)
	}
}
