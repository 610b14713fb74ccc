package riblt_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/syncproto/riblt"
)

// FuzzDecodeRun: decoding never panics, and whatever decodes encodes to
// the same bytes (the encoding is canonical).
func FuzzDecodeRun(f *testing.F) {
	s := newSets(8, 300, 0, 0)
	for _, r := range [][2]uint64{{0, 0}, {0, 3}, {5, 9}} {
		b, err := riblt.AppendRun(nil, r[0], s.encoder().AppendSymbols(nil, r[0], r[1]))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start, syms, err := riblt.DecodeRun(b, nil)
		if err != nil {
			if !errors.Is(err, riblt.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		b2, err := riblt.AppendRun(nil, start, syms)
		if err != nil {
			t.Fatalf("decoded run does not encode: %v", err)
		}
		if !slices.Equal(b, b2) {
			t.Fatalf("run re-encodes differently:\n%x\n%x", b, b2)
		}
	})
}

// FuzzDecoder feeds a decoder of a small local set an arbitrary symbol
// stream, mixed with the true remote symbols: it never panics, never
// takes more symbols than its budget, reports Done only with a
// difference that explains every symbol received, and stays stopped once
// it fails.
func FuzzDecoder(f *testing.F) {
	f.Add(uint64(1), []byte{}, uint8(0))
	f.Add(uint64(2), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, uint8(3))
	f.Add(uint64(3), make([]byte, 17*8), uint8(255))
	f.Fuzz(func(t *testing.T, seed uint64, stream []byte, honest uint8) {
		s := newSets(seed, 20, 3, 2)
		const budget = 200
		dec := s.decoder(&riblt.DecoderOptions{MaxSymbols: budget})
		st := s.encoder().Stream(0)
		// The first honest%32 symbols are true ones; the rest come from
		// stream, 17 bytes each (sum, check, count as a signed byte
		// times a scale).
		var err error
		var fed []riblt.Symbol
		for i := 0; i < budget+1 && err == nil && !dec.Done(); i++ {
			sym := st.Next()
			if i >= int(honest%32) {
				if len(stream) < 17 {
					break
				}
				sym = riblt.Symbol{
					Sum:   binary.LittleEndian.Uint64(stream),
					Check: binary.LittleEndian.Uint64(stream[8:]),
					Count: int64(int8(stream[16])) << (stream[16] & 0x3f),
				}
				stream = stream[17:]
			}
			fed = append(fed, sym)
			err = dec.AddSymbol(sym)
		}
		if dec.Received() > budget {
			t.Fatalf("received %d symbols, budget %d", dec.Received(), budget)
		}
		if err != nil {
			if dec.Done() || dec.Err() != err || dec.AddSymbol(riblt.Symbol{}) != err {
				t.Fatalf("error %v is not final", err)
			}
			return
		}
		if !dec.Done() {
			return
		}
		// Done: the remote set is the local one plus RemoteOnly minus
		// LocalOnly, and its symbols are the ones received.
		remote := slices.DeleteFunc(slices.Clone(s.local), func(x uint64) bool { return slices.Contains(dec.LocalOnly(), x) })
		remote = append(remote, dec.RemoteOnly()...)
		enc := riblt.NewEncoder(s.key)
		for _, x := range remote {
			enc.AddShortID(x)
		}
		if want := enc.AppendSymbols(nil, 0, dec.Received()); !slices.Equal(fed, want) {
			t.Fatalf("decoded difference (%d remote-only, %d local-only) does not reproduce the %d symbols received", len(dec.RemoteOnly()), len(dec.LocalOnly()), len(fed))
		}
	})
}
