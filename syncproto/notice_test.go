package syncproto_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/syncproto"
)

// TestNoticeRoundTrip encodes notices (epochs and seqs at both ends of
// their range) and decodes them back; the encoding is the documented one
// line of JSON.
func TestNoticeRoundTrip(t *testing.T) {
	tests := []struct {
		n    syncproto.Notice
		want string
	}{
		{syncproto.Notice{Repo: "/data/tasks", Epoch: 0, Seq: 0},
			`{"repo":"/data/tasks","epoch":"0000000000000000","seq":0}`},
		{syncproto.Notice{Repo: "/data/tasks", Epoch: 0x8f1c2a0b9d3e4f56, Seq: 1234},
			`{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
		{syncproto.Notice{Repo: "/t/r", Epoch: math.MaxUint64, Seq: math.MaxUint64},
			`{"repo":"/t/r","epoch":"ffffffffffffffff","seq":18446744073709551615}`},
		{syncproto.Notice{Repo: "/" + strings.Repeat("a", syncproto.MaxPathLen-1), Epoch: 1, Seq: 1}, ""},
	}
	for _, tt := range tests {
		b, err := syncproto.EncodeNotice(tt.n)
		if err != nil {
			t.Fatalf("encode %+v: %v", tt.n, err)
		}
		if tt.want != "" && string(b) != tt.want {
			t.Errorf("encode %+v:\n got  %s\n want %s", tt.n, b, tt.want)
		}
		if strings.ContainsAny(string(b), "\r\n") {
			t.Errorf("encode %+v: %q is not one line", tt.n, b)
		}
		got, err := syncproto.DecodeNotice(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if got != tt.n {
			t.Errorf("round trip: got %+v, want %+v", got, tt.n)
		}
	}
}

// TestEncodeNoticeRefusesBadPaths: the encoder refuses what the decoder
// would.
func TestEncodeNoticeRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "data/tasks", "/" + strings.Repeat("a", syncproto.MaxPathLen)} {
		if b, err := syncproto.EncodeNotice(syncproto.Notice{Repo: p}); !errors.Is(err, syncproto.ErrMalformed) {
			t.Errorf("encode repo %.20q: %s, %v; want an error wrapping ErrMalformed", p, b, err)
		}
	}
}

// TestDecodeNoticeStrict: everything that is not a well-formed notice is
// refused with an error wrapping ErrMalformed.
func TestDecodeNoticeStrict(t *testing.T) {
	const good = `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`
	if _, err := syncproto.DecodeNotice([]byte(good)); err != nil {
		t.Fatalf("the good notice: %v", err)
	}
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"not json", `repo=/data/tasks`},
		{"not an object", `["/data/tasks","8f1c2a0b9d3e4f56",1234]`},
		{"unknown field", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234,"extra":1}`},
		{"uppercase hex", `{"repo":"/data/tasks","epoch":"8F1C2A0B9D3E4F56","seq":1234}`},
		{"short epoch", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f5","seq":1234}`},
		{"long epoch", `{"repo":"/data/tasks","epoch":"08f1c2a0b9d3e4f56","seq":1234}`},
		{"epoch not hex", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4fzz","seq":1234}`},
		{"epoch with 0x", `{"repo":"/data/tasks","epoch":"0x1c2a0b9d3e4f56","seq":1234}`},
		{"epoch as number", `{"repo":"/data/tasks","epoch":1234,"seq":1234}`},
		{"missing epoch", `{"repo":"/data/tasks","seq":1234}`},
		{"missing repo", `{"epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
		{"empty repo", `{"repo":"","epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
		{"relative repo", `{"repo":"data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
		{"long repo", `{"repo":"/` + strings.Repeat("a", syncproto.MaxPathLen) + `","epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
		{"negative seq", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":-1}`},
		{"fractional seq", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1.5}`},
		{"seq over 64 bits", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":18446744073709551616}`},
		{"seq as string", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":"1234"}`},
		{"trailing object", good + `{}`},
		{"trailing garbage", good + `x`},
		{"second notice", good + "\n" + good},
		{"truncated", good[:len(good)-1]},
		{"over MaxNoticeSize", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}` + strings.Repeat(" ", syncproto.MaxNoticeSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := syncproto.DecodeNotice([]byte(tt.in))
			if !errors.Is(err, syncproto.ErrMalformed) {
				t.Fatalf("decode %.80q: %+v, %v; want an error wrapping ErrMalformed", tt.in, n, err)
			}
		})
	}
}

// TestDecodeNoticeRejectsNonCanonical covers what the decoder documents
// as refused (trailing data, a missing field) but lets through, and field
// spellings the encoder never writes.
func TestDecodeNoticeRejectsNonCanonical(t *testing.T) {
	const good = `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`
	tests := []struct{ name, in string }{
		{"trailing brace", good + `}`},
		{"trailing bracket", good + `]`},
		{"missing seq", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56"}`},
		{"null seq", `{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":null}`},
		{"uppercase field names", `{"REPO":"/data/tasks","Epoch":"8f1c2a0b9d3e4f56","SEQ":1234}`},
		{"duplicate field", `{"repo":"/data/other","repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := syncproto.DecodeNotice([]byte(tt.in))
			if !errors.Is(err, syncproto.ErrMalformed) {
				t.Fatalf("decode %q: %+v, %v; want an error wrapping ErrMalformed", tt.in, n, err)
			}
		})
	}
}

// TestEncodeNoticeWithinMaxSize: a notice the encoder produces must decode.
// JSON escapes '<', '>', '&' and control characters to six bytes each, so a
// path of legal length can encode past MaxNoticeSize.
func TestEncodeNoticeWithinMaxSize(t *testing.T) {
	for _, p := range []string{"/" + strings.Repeat("<", 200), "/a/" + strings.Repeat("\x01", 200)} {
		n := syncproto.Notice{Repo: p, Epoch: 1, Seq: 2}
		b, err := syncproto.EncodeNotice(n)
		if err != nil {
			continue // refusing it is fine
		}
		if got, err := syncproto.DecodeNotice(b); err != nil || got != n {
			t.Errorf("EncodeNotice(%.20q…) gave %d bytes that decode to %+v, %v", p, len(b), got, err)
		}
	}
}

// FuzzDecodeNotice: decoding never panics, refuses with ErrMalformed, and
// whatever it accepts encodes to a notice that decodes to the same value.
func FuzzDecodeNotice(f *testing.F) {
	seeds := []string{
		`{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}`,
		`{"repo":"/t/r","epoch":"ffffffffffffffff","seq":18446744073709551615}`,
		`{"repo":"/t/r","epoch":"0000000000000000","seq":0}`,
		`{"seq":1,"epoch":"0000000000000001","repo":"/a/b"}`,
		` {"repo":"/a/b","epoch":"0000000000000001","seq":1} `,
		`{"repo":"/a/\u00e9","epoch":"0000000000000001","seq":1}`,
		`{"repo":"/a/b","epoch":"0000000000000001","seq":1}}`,
		`{"repo":"/a/b","epoch":"0000000000000001"}`,
		`{"repo":"/a/b","epoch":"0000000000000001","seq":1,"x":2}`,
		`{"repo":"/a/b","epoch":"000000000000000G","seq":1}`,
		`{"repo":null,"epoch":null,"seq":null}`,
		`{}`, `[]`, `null`, `"x"`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := syncproto.DecodeNotice(b)
		if err != nil {
			if !errors.Is(err, syncproto.ErrMalformed) {
				t.Fatalf("decode %q: error %v does not wrap ErrMalformed", b, err)
			}
			return
		}
		enc, err := syncproto.EncodeNotice(n)
		if err != nil {
			t.Fatalf("decoded %+v from %q, which does not encode: %v", n, b, err)
		}
		if len(enc) > syncproto.MaxNoticeSize {
			return // see TestEncodeNoticeWithinMaxSize
		}
		n2, err := syncproto.DecodeNotice(enc)
		if err != nil {
			t.Fatalf("re-encoded %s (from %q) does not decode: %v", enc, b, err)
		}
		if n2 != n {
			t.Fatalf("decode→encode→decode: %+v, then %+v", n, n2)
		}
	})
}
