package riblt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/syncproto/riblt"
)

func TestRunRoundTrip(t *testing.T) {
	s := newSets(7, 10_000, 0, 0)
	syms := s.encoder().AppendSymbols(nil, 0, 1024)
	for _, r := range [][2]int{{0, 0}, {0, 1}, {0, 64}, {64, 1024}, {1000, 1024}} {
		b, err := riblt.AppendRun([]byte("x"), uint64(r[0]), syms[r[0]:r[1]])
		if err != nil {
			t.Fatal(err)
		}
		start, got, err := riblt.DecodeRun(b[1:], []riblt.Symbol{{Count: 1}})
		if err != nil || start != uint64(r[0]) || !slices.Equal(got[1:], syms[r[0]:r[1]]) {
			t.Fatalf("run [%d, %d): start %d, %d symbols, %v", r[0], r[1], start, len(got)-1, err)
		}
	}
	// Size: 17 bytes per symbol plus the count's varint beyond the first.
	b, _ := riblt.AppendRun(nil, 0, syms[:64])
	perSym := float64(len(b)-2) / 64
	if perSym < 17 || perSym > 20 {
		t.Errorf("%.2f bytes per symbol over the first 64 of 10,000 elements", perSym)
	}
	t.Logf("first 64 symbols of 10,000 elements: %d bytes, %.2f per symbol", len(b), perSym)
}

func TestDecodeRunErrors(t *testing.T) {
	sym := func(sum, check uint64, count int64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, sum)
		b = binary.LittleEndian.AppendUint64(b, check)
		return binary.AppendVarint(b, count)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	ok := cat(uv(3), uv(1), sym(1, 2, 3))
	if _, _, err := riblt.DecodeRun(ok, nil); err != nil {
		t.Fatalf("valid run: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no count", uv(0)},
		{"start overlong", cat([]byte{0x80, 0x00}, uv(0))},
		{"n overlong", cat(uv(0), []byte{0x81, 0x00}, sym(1, 2, 3))},
		{"start too big", cat(uv(1<<62), uv(0))},
		{"run past MaxIndex", cat(uv(riblt.MaxIndex-1), uv(2), sym(1, 2, 3), sym(1, 2, 3))},
		{"too many symbols", cat(uv(0), uv(riblt.MaxRunSymbols+1))},
		{"fewer bytes than symbols", cat(uv(0), uv(1000), sym(1, 2, 3))},
		{"truncated symbol", cat(uv(0), uv(1), sym(1, 2, 3)[:16])},
		{"truncated count", cat(uv(0), uv(1), sym(1, 2, 300)[:17], make([]byte, 16))},
		{"count overlong", cat(uv(0), uv(1), sym(1, 2, 0)[:16], []byte{0x80, 0x00})},
		{"count too big", cat(uv(0), uv(1), sym(1, 2, riblt.MaxCount+1))},
		{"count too small", cat(uv(0), uv(1), sym(1, 2, -riblt.MaxCount-1))},
		{"trailing byte", cat(ok, []byte{0})},
		{"varint overflow", cat(bytes.Repeat([]byte{0xff}, 10), []byte{0x02})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []riblt.Symbol{{Count: 1}}
			_, got, err := riblt.DecodeRun(tc.b, dst)
			if !errors.Is(err, riblt.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if len(got) != 1 {
				t.Fatalf("failed decode returned %d symbols", len(got))
			}
		})
	}
}

func TestAppendRunBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start uint64
		syms  []riblt.Symbol
	}{
		{"too many", 0, make([]riblt.Symbol, riblt.MaxRunSymbols+1)},
		{"past MaxIndex", riblt.MaxIndex, make([]riblt.Symbol, 1)},
		{"count", 0, []riblt.Symbol{{Count: riblt.MaxCount + 1}}},
	} {
		if _, err := riblt.AppendRun(nil, tc.start, tc.syms); !errors.Is(err, riblt.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
}
