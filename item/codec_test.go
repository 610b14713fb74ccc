package item_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// hx decodes hex written with spaces for readability.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// f64 returns the 8-byte number form of f: tag 2 and little-endian bits.
func f64(f float64) string {
	return "02 " + hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)))
}

// zz returns a compact number or int payload: the zigzag varint of i.
func zz(i int64) string { return hex.EncodeToString(binary.AppendVarint(nil, i)) }

// TestValueEncoding pins the byte layout drawn in doc.go.
func TestValueEncoding(t *testing.T) {
	tests := []struct {
		name string
		v    item.Value
		want string
	}{
		{"string", item.String("ab"), "01 02 6162"},
		{"empty string", item.String(""), "01 00"},
		{"number 0 compact", item.Number(0), "09 00"},
		{"number -0 compact", item.Number(math.Copysign(0, -1)), "09 00"},
		{"number 1 compact", item.Number(1), "09 02"},
		{"number -1 compact", item.Number(-1), "09 01"},
		{"number 42 compact", item.Number(42), "09 54"},
		{"number 2^53 compact", item.Number(1 << 53), "09 " + zz(1<<53)},
		{"number -2^53 compact", item.Number(-(1 << 53)), "09 " + zz(-(1 << 53))},
		{"number 2^53+2 wide", item.Number(1<<53 + 2), f64(1<<53 + 2)},
		{"number -2^53-2 wide", item.Number(-(1<<53 + 2)), f64(-(1<<53 + 2))},
		{"number 0.5 wide", item.Number(0.5), f64(0.5)},
		{"number 1e300 wide", item.Number(1e300), f64(1e300)},
		{"number +Inf wide", item.Number(math.Inf(1)), f64(math.Inf(1))},
		{"number -Inf wide", item.Number(math.Inf(-1)), f64(math.Inf(-1))},
		{"number max wide", item.Number(math.MaxFloat64), f64(math.MaxFloat64)},
		{"number subnormal wide", item.Number(math.SmallestNonzeroFloat64), f64(math.SmallestNonzeroFloat64)},
		{"int 0", item.Int(0), "03 00"},
		{"int -1", item.Int(-1), "03 01"},
		{"int max", item.Int(math.MaxInt64), "03 " + zz(math.MaxInt64)},
		{"int min", item.Int(math.MinInt64), "03 " + zz(math.MinInt64)},
		{"bool false", item.Bool(false), "04 00"},
		{"bool true", item.Bool(true), "04 01"},
		{"date", item.DateMillis(1_700_000_000_000), "05 " + zz(1_700_000_000_000)},
		{"date negative", item.DateMillis(-1), "05 01"},
		{"empty set", mustSet(t), "06 00"},
		{"set", mustSet(t, item.Int(1), item.String("a")), "06 02 01 01 61 03 02"},
		{"empty map", item.Map(nil), "07 00"},
		{"map", item.Map(map[string]item.Value{"b": item.Bool(true), "": item.Int(1)}), "07 02 00 03 02 01 62 04 01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := hx(t, tt.want)
			got := encValue(t, tt.v)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendValue = % x, want % x", got, want)
			}
			v, err := decodeValue(got)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !item.Equal(v, tt.v) {
				t.Errorf("decoded %#v, want %#v", v, tt.v)
			}
		})
	}
}

func TestItemAndDeltaEncoding(t *testing.T) {
	it := item.New(map[string]item.Value{"count": item.Number(42), "a": item.Bool(true)})
	if got, want := encItem(t, it), hx(t, "04 01 61 04 01 05 636f756e74 09 54"); !bytes.Equal(got, want) {
		t.Errorf("item = % x, want % x", got, want)
	}
	if got, want := encItem(t, item.Item{}.WithDeleted(true)), hx(t, "01"); !bytes.Equal(got, want) {
		t.Errorf("deleted empty item = % x, want % x", got, want)
	}
	d := item.Delta{Deleted: item.FlagSet, Edits: []item.Edit{
		{Field: "a", Op: item.OpRemove},
		{Field: "m", Op: item.OpMapOps, Put: []item.Field{{"k", item.Int(1)}}, DelKeys: []string{"j"}},
		{Field: "s", Op: item.OpSetOps, Add: []item.Value{item.String("x")}, Del: []item.Value{item.Int(1)}},
		{Field: "v", Op: item.OpSet, Value: item.Bool(false)},
	}}
	want := hx(t, "12 01 61 02   01 6d 04 01 01 6b 03 02 01 01 6a   01 73 03 01 01 01 78 01 03 02   01 76 01 04 00")
	if got := encDelta(t, d); !bytes.Equal(got, want) {
		t.Errorf("delta = % x, want % x", got, want)
	}
}

// roundTripValues lists one or more values of every type, including the
// number forms at their boundaries and maps nested as deep as allowed.
func roundTripValues(t testing.TB) []item.Value {
	vs := []item.Value{
		item.String(""), item.String("héllo, 世界"), item.String(strings.Repeat("x", 300)),
		item.Int(0), item.Int(1), item.Int(-1), item.Int(63), item.Int(-64), item.Int(64), item.Int(math.MaxInt64), item.Int(math.MinInt64),
		item.Bool(false), item.Bool(true),
		item.DateMillis(0), item.DateMillis(1_700_000_000_000), item.DateMillis(math.MinInt64), item.DateMillis(math.MaxInt64),
		mustSet(t), item.StringSet("tag42", "category2"),
		mustSet(t, item.String("a"), item.Number(0.5), item.Number(1), item.Int(1), item.Bool(false), item.DateMillis(3)),
		item.Map(nil),
		item.Map(map[string]item.Value{"": item.Int(1), "a\x00b": item.StringSet("x"), "m": item.Map(map[string]item.Value{"n": item.Number(1.5)})}),
		nested(item.MaxDepth, item.StringSet("deep")),
	}
	for _, f := range []float64{0, 0.5, -0.5, 1, -1, 1e300, -1e300, 1 << 53, -(1 << 53), 1<<53 + 2, -(1<<53 + 2), 1<<53 - 1,
		math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 62, 123456.789} {
		vs = append(vs, item.Number(f))
	}
	return vs
}

func TestValueRoundTrip(t *testing.T) {
	for _, v := range roundTripValues(t) {
		t.Run(v.GoString()[:min(40, len(v.GoString()))], func(t *testing.T) {
			b := encValue(t, v)
			got, err := decodeValue(b)
			if err != nil {
				t.Fatalf("decode % x: %v", b, err)
			}
			if !item.Equal(got, v) {
				t.Fatalf("decoded %#v, want %#v", got, v)
			}
			if b2 := encValue(t, got); !bytes.Equal(b, b2) {
				t.Errorf("re-encoded % x, first % x", b2, b)
			}
		})
	}
}

func TestRandomRoundTrip(t *testing.T) {
	r := newRand(t)
	for range iterations() {
		it := randItem(r)
		b := encItem(t, it)
		got, err := item.DecodeItem(b)
		if err != nil {
			t.Fatalf("DecodeItem(% x) of %s: %v", b, it, err)
		}
		if !item.ItemsEqual(got, it) {
			t.Fatalf("decoded %s, want %s", got, it)
		}
		if b2 := encItem(t, got); !bytes.Equal(b, b2) {
			t.Fatalf("re-encoded % x, first % x", b2, b)
		}
		for _, f := range it.Fields() {
			vb := encValue(t, f.Value)
			v, err := decodeValue(vb)
			if err != nil || !item.Equal(v, f.Value) {
				t.Fatalf("value %#v: decoded %#v, %v", f.Value, v, err)
			}
		}
	}
}

func TestDeepMaps(t *testing.T) {
	ok := item.New(map[string]item.Value{"f": nested(item.MaxDepth, item.Int(1))})
	b := encItem(t, ok)
	if got, err := item.DecodeItem(b); err != nil || !item.ItemsEqual(got, ok) {
		t.Fatalf("MaxDepth-deep maps: %s, %v", got, err)
	}

	deep := nested(item.MaxDepth+1, item.Int(1))
	if _, err := item.AppendValue(nil, deep); !errors.Is(err, item.ErrInvalidValue) {
		t.Errorf("AppendValue(too deep) = %v", err)
	}
	if _, err := item.AppendItem(nil, item.New(map[string]item.Value{"f": deep})); !errors.Is(err, item.ErrInvalidValue) {
		t.Errorf("AppendItem(too deep) = %v", err)
	}
	// Hand-built bytes: MaxDepth+1 maps {"k": ...} around int 1.
	raw := append(bytes.Repeat(hx(t, "07 01 01 6b"), item.MaxDepth+1), hx(t, "03 02")...)
	if _, err := decodeValue(raw); !errors.Is(err, item.ErrCorrupt) {
		t.Errorf("decoding too-deep maps: %v", err)
	}
	if _, err := decodeValue(raw[4:]); err != nil {
		t.Errorf("decoding MaxDepth-deep maps: %v", err)
	}
	// A map put by a delta sits one level down in its field's map, so a put
	// value may nest one level less than a field value.
	put := item.Delta{Edits: []item.Edit{{Field: "f", Op: item.OpMapOps, Put: []item.Field{{"k", nested(item.MaxDepth, item.Int(1))}}}}}
	if _, err := item.AppendDelta(nil, put); !errors.Is(err, item.ErrInvalidValue) {
		t.Errorf("AppendDelta(put too deep) = %v", err)
	}
	putRaw := append(hx(t, "04 01 66 04 01 01 6b"), raw[4:]...)
	putRaw = append(putRaw, 0) // no deleted keys
	if d, err := item.DecodeDelta(putRaw); !errors.Is(err, item.ErrCorrupt) {
		patched, perr := item.Patch(item.Item{}, d)
		_, aerr := item.AppendItem(nil, patched)
		t.Errorf("DecodeDelta(put too deep) = %v; its patch %v gives an item that does not encode: %v", err, perr, aerr)
	}
	put.Edits[0].Put[0].Value = nested(item.MaxDepth-1, item.Int(1))
	b = encDelta(t, put)
	if _, err := item.DecodeDelta(b); err != nil {
		t.Errorf("DecodeDelta(put MaxDepth-1 deep): %v", err)
	}
}

func TestDecodeRejectsValue(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"unknown tag 0", "00"},
		{"unknown tag 11", "0b 00"},
		{"unknown tag 12", "0c 00"},
		{"unknown tag 255", "ff"},
		{"string truncated", "01 05 6162"},
		{"string length missing", "01"},
		{"string overlong length", "01 8100 61"},
		{"string length overflow", "01 ffffffffffffffffff01"},
		{"string length too long varint", "01 ffffffffffffffffffff01"},
		{"string non-UTF-8", "01 01 ff"},
		{"string surrogate", "01 03 eda080"},
		{"string truncated rune", "01 01 c3"},
		{"number truncated", "02 00000000"},
		{"number 1.0 wide", f64(1)},
		{"number 0 wide", f64(0)},
		{"number -0 wide", f64(math.Copysign(0, -1))},
		{"number 2^53 wide", f64(1 << 53)},
		{"number -2^53 wide", f64(-(1 << 53))},
		{"number NaN", "02 000000000000f87f"},
		{"number NaN payload", "02 010000000000f07f"},
		{"number negative NaN", "02 000000000000f8ff"},
		{"compact 2^53+1", "09 " + zz(1<<53+1)},
		{"compact -2^53-1", "09 " + zz(-(1<<53 + 1))},
		{"compact 2^53+2", "09 " + zz(1<<53+2)},
		{"compact max int64", "09 " + zz(math.MaxInt64)},
		{"compact overlong", "09 8000"},
		{"compact truncated", "09 80"},
		{"int overlong", "03 8200"},
		{"int overlong 10 bytes", "03 80808080808080808000"},
		{"int overflow", "03 ffffffffffffffffff7f"},
		{"int truncated", "03"},
		{"date overlong", "05 8000"},
		{"bool 2", "04 02"},
		{"bool ff", "04 ff"},
		{"bool truncated", "04"},
		{"set unsorted", "06 02 03 04 03 02"},
		{"set duplicate", "06 02 03 02 03 02"},
		{"set unsorted across types", "06 02 03 02 01 00"},
		{"set of set", "06 01 06 00"},
		{"set of map", "06 01 07 00"},
		{"set count too big", "06 05 03 02"},
		{"set count huge", "06 ffffffffffffffff7f 03 02"},
		{"set overlong count", "06 8100 03 02"},
		{"set bad element", "06 01 04 02"},
		{"map unsorted keys", "07 02 01 62 04 01 01 61 04 01"},
		{"map duplicate keys", "07 02 01 61 04 01 01 61 04 00"},
		{"map non-UTF-8 key", "07 01 01 ff 04 01"},
		{"map count too big", "07 02 01 61 04 01"},
		{"map value missing", "07 01 01 61"},
		{"map bad value", "07 01 01 61 04 07"},
		{"trailing byte", "04 01 00"},
		{"trailing value", "03 02 03 02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hx(t, tt.in)
			v, err := decodeValue(in)
			if !errors.Is(err, item.ErrCorrupt) {
				t.Errorf("decode % x = %#v, %v; want ErrCorrupt", in, v, err)
			}
		})
	}
}

func TestDecodeRejectsItem(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"overlong header", "8000"},
		{"overlong header with field", "8200 01 61 04 01"},
		{"field count too big", "04 01 61 04 01"},
		{"field count huge", "feffffffffffffffff01"},
		{"unsorted fields", "04 01 62 04 01 01 61 04 01"},
		{"duplicate fields", "04 01 61 04 01 01 61 04 00"},
		{"empty name", "02 00 04 01"},
		{"NUL in name", "02 01 00 04 01"},
		{"non-UTF-8 name", "02 01 ff 04 01"},
		{"name too long", "02 8108" + strings.Repeat("61", 1025) + " 04 01"},
		{"bad value", "02 01 61 04 02"},
		{"unknown tag", "02 01 61 0b"},
		{"value missing", "02 01 61"},
		{"trailing byte", "02 01 61 04 01 00"},
		{"trailing after empty", "00 00"},
		{"wide number", "02 01 61 " + f64(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hx(t, tt.in)
			it, err := item.DecodeItem(in)
			if !errors.Is(err, item.ErrCorrupt) {
				t.Errorf("DecodeItem(% x) = %s, %v; want ErrCorrupt", in, it, err)
			}
		})
	}
	long := "02 8008" + strings.Repeat("61", 1024) + " 04 01"
	if _, err := item.DecodeItem(hx(t, long)); err != nil {
		t.Errorf("1024-byte name: %v", err)
	}
}

func TestDecodeRejectsDelta(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"deleted flag 3", "03"},
		{"deleted flag 3 with edit", "07 01 61 02"},
		{"overlong header", "8000"},
		{"edit count too big", "08 01 61 02"},
		{"unknown op 0", "04 01 61 00"},
		{"unknown op 7", "04 01 61 07"},
		{"unknown op 255", "04 01 61 ff"},
		{"op missing", "04 01 61"},
		{"op missing at end", "08 01 61 02 01 62"},
		{"unsorted edits", "08 01 62 02 01 61 02"},
		{"duplicate edits", "08 01 61 02 01 61 02"},
		{"empty field name", "04 00 02 00"},
		{"NUL field name", "04 01 00 02"},
		{"non-UTF-8 field name", "04 01 ff 02"},
		{"set value bad", "04 01 61 01 04 02"},
		{"set value NaN", "04 01 61 01 02 000000000000f87f"},
		{"set value missing", "04 01 61 01"},
		{"setops add unsorted", "04 01 61 03 02 03 04 03 02 00"},
		{"setops add duplicate", "04 01 61 03 02 03 02 03 02 00"},
		{"setops del unsorted", "04 01 61 03 00 02 03 04 03 02"},
		{"setops add map", "04 01 61 03 01 07 00 00"},
		{"setops add set", "04 01 61 03 01 06 00 00"},
		{"setops del missing", "04 01 61 03 00"},
		{"setops overlong count", "04 01 61 03 8000 00"},
		{"mapops put unsorted", "04 01 61 04 02 01 62 04 01 01 61 04 01 00"},
		{"mapops put duplicate", "04 01 61 04 02 01 61 04 01 01 61 04 01 00"},
		{"mapops put non-UTF-8 key", "04 01 61 04 01 01 ff 04 01 00"},
		{"mapops put bad value", "04 01 61 04 01 01 61 04 02 00"},
		{"mapops del unsorted", "04 01 61 04 00 02 01 62 01 61"},
		{"mapops del duplicate", "04 01 61 04 00 02 01 61 01 61"},
		{"mapops del non-UTF-8", "04 01 61 04 00 01 01 ff"},
		{"mapops del missing", "04 01 61 04 00"},
		{"mapops del count too big", "04 01 61 04 00 03 01 61"},
		{"trailing byte", "04 01 61 02 00"},
		{"trailing after empty", "00 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hx(t, tt.in)
			d, err := item.DecodeDelta(in)
			if !errors.Is(err, item.ErrCorrupt) {
				t.Errorf("DecodeDelta(% x) = %+v, %v; want ErrCorrupt", in, d, err)
			}
		})
	}
	for _, ok := range []string{"00", "01", "02", "04 01 61 02", "04 01 61 04 01 00 03 02 01 00", "04 01 61 03 00 00"} {
		if _, err := item.DecodeDelta(hx(t, ok)); err != nil {
			t.Errorf("DecodeDelta(%s): %v", ok, err)
		}
	}
}

// TestDeltaRoundTrip encodes hand-written deltas of every op, including map
// keys that are valid in a map value but would not be valid field names.
func TestDeltaRoundTrip(t *testing.T) {
	deltas := []item.Delta{
		{},
		{Deleted: item.FlagClear},
		{Deleted: item.FlagSet, Edits: []item.Edit{{Field: "a", Op: item.OpRemove}}},
		{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: nested(item.MaxDepth, item.Int(1))}}},
		{Edits: []item.Edit{{Field: "s", Op: item.OpSetOps}}},
		{Edits: []item.Edit{{Field: "s", Op: item.OpSetOps, Add: []item.Value{item.String("a"), item.Number(0.5)}, Del: []item.Value{item.Int(1)}}}},
		{Edits: []item.Edit{{Field: "m", Op: item.OpMapOps,
			Put:     []item.Field{{"", item.Int(1)}, {"a\x00", item.Map(nil)}, {"b", nested(item.MaxDepth-1, item.Bool(true))}},
			DelKeys: []string{"", "c", strings.Repeat("k", 2000)}}}},
	}
	for i, d := range deltas {
		b := encDelta(t, d)
		got, err := item.DecodeDelta(b)
		if err != nil {
			t.Errorf("delta %d: DecodeDelta(% x...): %v", i, b[:min(len(b), 64)], err)
			continue
		}
		if b2 := encDelta(t, got); !bytes.Equal(b, b2) {
			t.Errorf("delta %d: re-encoded % x, first % x", i, b2, b)
		}
	}
}

func TestAppendDeltaRejects(t *testing.T) {
	m := item.Map(nil)
	tests := []struct {
		name string
		d    item.Delta
	}{
		{"flag 3", item.Delta{Deleted: 3}},
		{"unsorted edits", item.Delta{Edits: []item.Edit{{Field: "b", Op: item.OpRemove}, {Field: "a", Op: item.OpRemove}}}},
		{"duplicate edits", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpRemove}, {Field: "a", Op: item.OpRemove}}}},
		{"empty name", item.Delta{Edits: []item.Edit{{Field: "", Op: item.OpRemove}}}},
		{"non-UTF-8 name", item.Delta{Edits: []item.Edit{{Field: "\xff", Op: item.OpRemove}}}},
		{"unknown op", item.Delta{Edits: []item.Edit{{Field: "a", Op: 9}}}},
		{"zero op", item.Delta{Edits: []item.Edit{{Field: "a"}}}},
		{"set zero value", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet}}}},
		{"set NaN", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: item.Number(math.NaN())}}}},
		{"setops unsorted add", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSetOps, Add: []item.Value{item.Int(2), item.Int(1)}}}}},
		{"setops duplicate del", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSetOps, Del: []item.Value{item.Int(1), item.Int(1)}}}}},
		{"setops map", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSetOps, Add: []item.Value{m}}}}},
		{"setops bad string", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSetOps, Add: []item.Value{item.String("\xff")}}}}},
		{"mapops unsorted put", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpMapOps, Put: []item.Field{{"b", m}, {"a", m}}}}}},
		{"mapops put zero value", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpMapOps, Put: []item.Field{{"b", item.Value{}}}}}}},
		{"mapops put non-UTF-8 key", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpMapOps, Put: []item.Field{{"\xff", m}}}}}},
		{"mapops unsorted del", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpMapOps, DelKeys: []string{"b", "a"}}}}},
		{"mapops del non-UTF-8 key", item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpMapOps, DelKeys: []string{"\xff"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := item.AppendDelta(nil, tt.d); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("AppendDelta = % x, %v; want ErrInvalidValue", b, err)
			}
		})
	}
}

func TestDecoderAPI(t *testing.T) {
	d := item.NewDecoder(hx(t, "04 01 09 54 ff"))
	if v := d.Value(); !item.Equal(v, item.Bool(true)) || d.Offset() != 2 {
		t.Fatalf("first value %#v at %d", v, d.Offset())
	}
	if v := d.Value(); !item.Equal(v, item.Number(42)) || !bytes.Equal(d.Remaining(), []byte{0xff}) {
		t.Fatalf("second value %#v, remaining % x", v, d.Remaining())
	}
	d.End()
	if err := d.Err(); !errors.Is(err, item.ErrCorrupt) || !strings.Contains(err.Error(), "offset 4") {
		t.Errorf("End with a trailing byte: %v", err)
	}
	d.Fail("second error")
	if strings.Contains(d.Err().Error(), "second") {
		t.Error("Fail replaced the first error")
	}
	if d.Byte() != 0 || d.Bytes(1) != nil || d.Uvarint() != 0 || d.Value().Type() != item.TypeInvalid {
		t.Error("a failed decoder still reads")
	}
	if b := item.NewDecoder([]byte{1}).Bytes(-1); b != nil {
		t.Error("Bytes(-1) returned bytes")
	}
}
