package syncproto_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/goatdb/goatdb/syncproto"
)

// FuzzDecodeRequest: decoding never panics, and whatever decodes encodes
// to bytes that decode to a message encoding to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	for _, req := range sampleRequests() {
		b, err := syncproto.EncodeRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if b[2] == 1 { // also the payload uncompressed, for the fuzzer to mutate
			f.Add(rawOf(f, b))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := syncproto.DecodeRequest(b)
		// Within the bound the message declares, it decodes the same, or
		// (a frame that lied about its size) not at all.
		breq, berr := syncproto.DecodeRequestBound(b, syncproto.PayloadBound(b))
		if berr == nil && (err != nil || !reflect.DeepEqual(req, breq)) {
			t.Fatalf("decoded within its bound (%+v) but not alone (%v) or differently", breq, err)
		}
		if err != nil {
			return
		}
		b1, err := syncproto.EncodeRequest(req)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		req2, err := syncproto.DecodeRequest(b1)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		b2, err := syncproto.EncodeRequest(req2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("decode→encode→decode unstable: %v", err)
		}
	})
}

// FuzzDecodeResponse is FuzzDecodeRequest for responses.
func FuzzDecodeResponse(f *testing.F) {
	for _, resp := range sampleResponses() {
		b, err := syncproto.EncodeResponse(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if b[2] == 1 {
			f.Add(rawOf(f, b))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := syncproto.DecodeResponse(b)
		if err != nil {
			return
		}
		b1, err := syncproto.EncodeResponse(resp)
		if err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		resp2, err := syncproto.DecodeResponse(b1)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v", err)
		}
		b2, err := syncproto.EncodeResponse(resp2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("decode→encode→decode unstable: %v", err)
		}
	})
}

// rawOf returns a compressed message with its payload stored uncompressed.
func rawOf(f *testing.F, b []byte) []byte {
	payload, err := zstdDecode(b[3:])
	if err != nil {
		f.Fatal(err)
	}
	return append([]byte{b[0], b[1], 0}, payload...)
}
