package item_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// Each fuzz target checks that its decoder never panics and that whatever
// it accepts is canonical: encoding the result gives the input back, and
// decoding that again gives an equal result. The corpus is seeded with
// valid encodings of fixed and random values.

func fuzzRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func FuzzDecodeValue(f *testing.F) {
	for _, v := range roundTripValues(f) {
		f.Add(encValue(f, v))
	}
	r := fuzzRand()
	for range 50 {
		f.Add(encValue(f, randValue(r, 0)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil {
			return
		}
		if err := v.Valid(); err != nil {
			t.Fatalf("decoded an invalid value %#v: %v", v, err)
		}
		enc := encValue(t, v)
		if !bytes.Equal(enc, b) {
			t.Fatalf("decoded % x, re-encoded as % x", b, enc)
		}
		v2, err := decodeValue(enc)
		if err != nil || !item.Equal(v, v2) {
			t.Fatalf("decoding again: %#v, %v; want %#v", v2, err, v)
		}
	})
}

func FuzzDecodeItem(f *testing.F) {
	f.Add(encItem(f, item.Item{}))
	f.Add(encItem(f, benchItem()))
	r := fuzzRand()
	for range 50 {
		f.Add(encItem(f, randItem(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := item.DecodeItem(b)
		if err != nil {
			return
		}
		enc := encItem(t, it)
		if !bytes.Equal(enc, b) {
			t.Fatalf("decoded % x, re-encoded as % x", b, enc)
		}
		it2, err := item.DecodeItem(enc)
		if err != nil || !item.ItemsEqual(it, it2) {
			t.Fatalf("decoding again: %s, %v; want %s", it2, err, it)
		}
		// A decoded item diffs and merges without failing.
		if d := item.Diff(it, it2); !d.Empty() {
			t.Fatalf("Diff of equal items = %+v", d)
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	f.Add(encDelta(f, item.Delta{}))
	f.Add(encDelta(f, item.Delta{Deleted: item.FlagSet}))
	r := fuzzRand()
	for range 50 {
		a := randItem(r)
		f.Add(encDelta(f, item.Diff(a, mutate(r, a))))
	}
	base := benchItem()
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := item.DecodeDelta(b)
		if err != nil {
			return
		}
		enc := encDelta(t, d)
		if !bytes.Equal(enc, b) {
			t.Fatalf("decoded % x, re-encoded as % x", b, enc)
		}
		d2, err := item.DecodeDelta(enc)
		if err != nil {
			t.Fatalf("decoding again: %v", err)
		}
		if enc2 := encDelta(t, d2); !bytes.Equal(enc2, enc) {
			t.Fatalf("decoded again % x, want % x", enc2, enc)
		}
		// Any decoded delta merges without error into an item that encodes,
		// and patches into one that encodes when it fits the base's types.
		merged, err := item.Merge(base, []item.Delta{d, d2})
		if err != nil {
			t.Fatalf("Merge: %v", err)
		}
		if _, err := item.AppendItem(nil, merged); err != nil {
			t.Fatalf("merged item %s does not encode: %v", merged, err)
		}
		if patched, err := item.Patch(base, d); err == nil {
			if _, err := item.AppendItem(nil, patched); err != nil {
				t.Fatalf("patched item %s does not encode: %v", patched, err)
			}
		}
	})
}

// FuzzFromJSONNumber checks the integer rule on any json.Number: FromAny
// accepts exactly the JSON number literals (as encoding/json judges them)
// that are in float64 range, makes an int of exactly those that are
// integer literals fitting an int64, and never panics.
func FuzzFromJSONNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1", "-1", "1.0", "1e3", "1E+3", "-2.5e-3", "01", "+1", "1.", ".5",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "1e400", "Inf", "NaN",
		"0x10", "1_000", " 1", "", "-", "1e", "123456789012345678901234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := item.FromAny(json.Number(s))
		isJSON := s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
		if !isJSON {
			if err == nil {
				t.Fatalf("FromAny(json.Number(%q)) = %#v, want an error: not a JSON number", s, v)
			}
			return
		}
		fl, ferr := strconv.ParseFloat(s, 64)
		if err != nil {
			if ferr == nil {
				t.Fatalf("FromAny(json.Number(%q)): %v", s, err)
			}
			return
		}
		if err := v.Valid(); err != nil {
			t.Fatal(err)
		}
		i, ierr := strconv.ParseInt(s, 10, 64)
		switch {
		case ierr == nil && !strings.ContainsAny(s, ".eE"):
			if v.Type() != item.TypeInt || v.Int64() != i {
				t.Fatalf("FromAny(json.Number(%q)) = %#v, want int %d", s, v, i)
			}
		case v.Type() != item.TypeNumber || v.Float() != fl:
			t.Fatalf("FromAny(json.Number(%q)) = %#v, want number %v", s, v, fl)
		}
	})
}
