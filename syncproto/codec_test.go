package syncproto_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/syncproto/riblt"
	"github.com/klauspost/compress/zstd"
)

func testFilter(n int) *syncproto.Filter {
	f := syncproto.NewFilter(uint64(n), 0.01)
	for i := range n {
		f.Add(commit.ID{byte(i), byte(i >> 8), 1})
	}
	return f
}

func sampleRequests() map[string]*syncproto.Request {
	commits := [][]byte{bytes.Repeat([]byte("commit one "), 20), []byte("2"), bytes.Repeat([]byte{7}, 300)}
	return map[string]*syncproto.Request{
		"empty": {},
		"in sync": {Session: commit.SessionID{1, 2, 3}, Repos: []syncproto.RepoRequest{
			{Path: "/data/tasks", Count: 10_000, Digest: syncproto.Digest{9, 9}, Resume: &syncproto.Point{Epoch: 1 << 63, Seq: 123456}},
		}},
		"full": {Session: commit.SessionID{4}, Repos: []syncproto.RepoRequest{
			{Path: "/data/a", Count: 3, Digest: syncproto.Digest{1}, Filter: testFilter(100), Repair: true,
				Commits: commits, Missing: []commit.ID{{1}, {2}, {3}}},
			{Path: "/data/b", Resume: &syncproto.Point{}, Filter: testFilter(1)},
			{Path: "/sys/sessions", Count: 1 << 40},
		}},
		// Version 2: a section names a horizon.
		"horizon": {Session: commit.SessionID{5}, Repos: []syncproto.RepoRequest{
			{Path: "/data/a", Horizon: 1_767_225_600_000, Count: 7, Digest: syncproto.Digest{3},
				Resume: &syncproto.Point{Epoch: 9, Seq: 99}},
			{Path: "/data/b", Horizon: 1<<63 - 1, Count: 2, Filter: testFilter(50), Commits: commits[1:2]},
			{Path: "/data/c", Count: 1},
		}},
		// Version 3: rateless IBLT sketches, with and without horizons.
		"sketch": {Session: commit.SessionID{6}, Repos: []syncproto.RepoRequest{
			{Path: "/data/a", Count: 10_000, Digest: syncproto.Digest{1}, Sketch: &syncproto.Sketch{Key: [16]byte{1, 2}}},
			{Path: "/data/b", Horizon: 1_767_225_600_000, Count: 5, Sketch: &syncproto.Sketch{Key: [16]byte{3}, From: 1 << 40, Ask: syncproto.MaxSymbols}},
			{Path: "/data/c", Count: 2, Sketch: &syncproto.Sketch{Key: [16]byte{4}, Decoded: true, Want: []uint32{1, 1<<32 - 1}},
				Commits: commits[:1], Missing: []commit.ID{{5}}},
			{Path: "/data/d", Count: 3, Sketch: &syncproto.Sketch{Decoded: true}, Filter: testFilter(20)},
		}},
	}
}

func sampleResponses() map[string]*syncproto.Response {
	return map[string]*syncproto.Response{
		"empty": {},
		"in sync": {Repos: []syncproto.RepoResponse{
			{Path: "/data/tasks", Epoch: 42, Seq: 1 << 33, Count: 10_000, Digest: syncproto.Digest{5}},
		}},
		"full": {Repos: []syncproto.RepoResponse{
			{Path: "/data/a", Epoch: 1, Seq: 2, Count: 3, Digest: syncproto.Digest{4}, Filter: testFilter(1000), More: true,
				Commits: [][]byte{bytes.Repeat([]byte("x"), 1000)}, Missing: []commit.ID{{9}},
				Rejected: []syncproto.Rejection{{ID: commit.ID{1}, Reason: "bad signature"}, {ID: commit.ID{2}}},
				Hidden:   []commit.ID{{3}, {4}}},
			{Path: "/data/b", Status: syncproto.StatusNotFound, Message: "no such repository"},
			{Path: "/data/c", Status: syncproto.StatusError},
		}},
		// Version 2: horizons, sets at the horizon, shallow roots.
		"horizon": {Repos: []syncproto.RepoResponse{
			{Path: "/data/a", Epoch: 7, Seq: 70, Count: 5, Digest: syncproto.Digest{6}, Horizon: 1_767_225_600_000,
				AtHorizon: &syncproto.SetSum{Count: 3, Digest: syncproto.Digest{8}},
				Commits:   [][]byte{bytes.Repeat([]byte("y"), 200), []byte("z")},
				Shallow: []syncproto.ShallowRoot{{ID: commit.ID{1}, Gen: 1, Absent: 1},
					{ID: commit.ID{2}, Gen: 1<<32 - 1, Depth: 1<<16 - 1, Absent: 1<<64 - 1}},
				Hidden: []commit.ID{{3}}},
			{Path: "/data/b", Horizon: 1, Filter: testFilter(10)},
			{Path: "/data/c", AtHorizon: &syncproto.SetSum{}},
			{Path: "/data/d", Status: syncproto.StatusNotFound, Message: "no such repository"},
		}},
		"shallow only": {Repos: []syncproto.RepoResponse{
			{Path: "/data/a", Count: 1, Commits: [][]byte{[]byte("c")}, Shallow: []syncproto.ShallowRoot{{ID: commit.ID{4}, Gen: 3, Depth: 2, Absent: 2}}},
		}},
		// Version 3: symbol runs.
		"symbols": {Repos: []syncproto.RepoResponse{
			{Path: "/data/a", Count: 10_000, Digest: syncproto.Digest{2}, Symbols: &syncproto.SymbolRun{Start: 0, Symbols: []riblt.Symbol{
				{Sum: 1<<64 - 1, Check: 7, Count: 10_000}, {Sum: 2, Check: 3, Count: -1}, {}}}},
			{Path: "/data/b", Horizon: 5, Symbols: &syncproto.SymbolRun{Start: 1<<40 - 1, Symbols: []riblt.Symbol{{Count: riblt.MaxCount}}},
				Commits: [][]byte{[]byte("c")}},
			{Path: "/data/c", Status: syncproto.StatusNotFound, Message: "no such repository"},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, req := range sampleRequests() {
		t.Run("request/"+name, func(t *testing.T) {
			b, err := syncproto.EncodeRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := syncproto.DecodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normReq(got), normReq(req)) {
				t.Fatalf("decoded %+v, want %+v", got, req)
			}
			t.Logf("%d bytes", len(b))
		})
	}
	for name, resp := range sampleResponses() {
		t.Run("response/"+name, func(t *testing.T) {
			b, err := syncproto.EncodeResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := syncproto.DecodeResponse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normResp(got), normResp(resp)) {
				t.Fatalf("decoded %+v, want %+v", got, resp)
			}
			t.Logf("%d bytes", len(b))
		})
	}
}

// normReq and normResp make empty slices nil, so that DeepEqual compares
// contents.
func normReq(r *syncproto.Request) *syncproto.Request {
	c := *r
	if len(c.Repos) == 0 {
		c.Repos = nil
	}
	for i := range c.Repos {
		q := &c.Repos[i]
		if len(q.Commits) == 0 {
			q.Commits = nil
		}
		if len(q.Missing) == 0 {
			q.Missing = nil
		}
	}
	return &c
}

func normResp(r *syncproto.Response) *syncproto.Response {
	c := *r
	if len(c.Repos) == 0 {
		c.Repos = nil
	}
	for i := range c.Repos {
		p := &c.Repos[i]
		if len(p.Commits) == 0 {
			p.Commits = nil
		}
		if len(p.Missing) == 0 {
			p.Missing = nil
		}
		if len(p.Rejected) == 0 {
			p.Rejected = nil
		}
		if len(p.Hidden) == 0 {
			p.Hidden = nil
		}
		if len(p.Shallow) == 0 {
			p.Shallow = nil
		}
	}
	return &c
}

func TestDecodeErrors(t *testing.T) {
	good, err := syncproto.EncodeRequest(sampleRequests()["in sync"])
	if err != nil {
		t.Fatal(err)
	}
	if good[2] != 0 {
		t.Fatal("the sample should be small enough to go uncompressed")
	}
	// Offsets in the uncompressed sample: envelope 3, session 32, nrepos 1,
	// path length 1 + 11, flags 1, count.
	const flagsAt = 3 + 32 + 1 + 1 + 11
	bomb := zstdStream(t, syncproto.MaxPayloadSize+1)
	tests := []struct {
		name string
		msg  []byte
		want error
		text string
	}{
		{"version", patch(good, 0, 4), syncproto.ErrVersion, "reads version [1 2 3]"},
		{"version zero", patch(good, 0, 0), syncproto.ErrVersion, "reads version [1 2 3]"},
		{"version 2 without its fields", patch(good, 0, 2), syncproto.ErrMalformed, "no field of version 2"},
		{"version 3 without its fields", patch(good, 0, 3), syncproto.ErrMalformed, "no field of version 3"},
		{"sketch flag in version 1", patch(good, flagsAt, 0x10), syncproto.ErrMalformed, "unknown flags 0x10"},
		{"horizon flag in version 1", patch(good, flagsAt, 0x09), syncproto.ErrMalformed, "unknown flags 0x8"},
		{"kind", patch(good, 1, 2), syncproto.ErrMalformed, "want 1 (request)"},
		{"codec", patch(good, 2, 7), syncproto.ErrMalformed, "unknown codec"},
		{"trailing", append(bytes.Clone(good), 0), syncproto.ErrMalformed, "trailing"},
		{"flags", patch(good, flagsAt, 0x80), syncproto.ErrMalformed, "unknown flags"},
		{"long uvarint", patch(good, 3+32, 0x80), syncproto.ErrMalformed, ""},
		{"too many repos", append(append(bytes.Clone(good[:3+32]), 0xff, 0xff, 0x7f), good[3+33:]...), syncproto.ErrMalformed, "at most"},
		{"bad zstd", append([]byte{1, 1, 1}, "not zstd at all"...), syncproto.ErrMalformed, "decompress"},
		{"bomb", append([]byte{1, 1, 1}, bomb...), syncproto.ErrTooLarge, ""},
		{"huge", make([]byte, syncproto.MaxMessageSize+1), syncproto.ErrTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := syncproto.DecodeRequest(tt.msg)
			if !errors.Is(err, tt.want) || !strings.Contains(fmtErr(err), tt.text) {
				t.Fatalf("got %v, want %v containing %q", err, tt.want, tt.text)
			}
		})
	}
	// Every strict prefix of every sample, compressed or not, fails.
	for name, req := range sampleRequests() {
		b, _ := syncproto.EncodeRequest(req)
		for n := range len(b) {
			if _, err := syncproto.DecodeRequest(b[:n]); err == nil {
				t.Fatalf("request %s: prefix of %d/%d bytes decoded", name, n, len(b))
			}
		}
	}
	for name, resp := range sampleResponses() {
		b, _ := syncproto.EncodeResponse(resp)
		for n := range len(b) {
			if _, err := syncproto.DecodeResponse(b[:n]); err == nil {
				t.Fatalf("response %s: prefix of %d/%d bytes decoded", name, n, len(b))
			}
		}
	}
	// The hidden flag with no hidden ids is not canonical.
	inSync, _ := syncproto.EncodeResponse(sampleResponses()["in sync"])
	// Offsets in the uncompressed answer: envelope 3, nrepos 1, path
	// length 1 + 11, status 1, flags.
	const respFlagsAt = 3 + 1 + 1 + 11 + 1
	if inSync[2] != 0 || inSync[respFlagsAt] != 0 {
		t.Fatal("the sample should go uncompressed, with no flags")
	}
	if _, err := syncproto.DecodeResponse(append(patch(inSync, respFlagsAt, 4), 0)); !errors.Is(err, syncproto.ErrMalformed) || !strings.Contains(err.Error(), "hidden") {
		t.Fatalf("hidden flag with zero ids: %v, want ErrMalformed", err)
	}
	withOne := append(append(patch(inSync, respFlagsAt, 4), 1), make([]byte, 32)...)
	if resp, err := syncproto.DecodeResponse(withOne); err != nil || len(resp.Repos[0].Hidden) != 1 {
		t.Fatalf("hidden flag with one id: %v", err)
	}
	// A response is not a request, and the other way round.
	resp, _ := syncproto.EncodeResponse(sampleResponses()["in sync"])
	if _, err := syncproto.DecodeRequest(resp); !errors.Is(err, syncproto.ErrMalformed) {
		t.Fatalf("response decoded as request: %v", err)
	}
	if _, err := syncproto.DecodeResponse(good); !errors.Is(err, syncproto.ErrMalformed) {
		t.Fatalf("request decoded as response: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func patch(b []byte, at int, v byte) []byte {
	c := bytes.Clone(b)
	c[at] = v
	return c
}

// zstdStream compresses n zero bytes as a stream, without a declared
// content size.
func zstdStream(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(chunk))
		w.Write(chunk[:k])
		n -= k
	}
	w.Close()
	return buf.Bytes()
}

func TestEncodeRefusesWhatDecodeWould(t *testing.T) {
	tests := map[string]*syncproto.Request{
		"empty path":   {Repos: []syncproto.RepoRequest{{}}},
		"long path":    {Repos: []syncproto.RepoRequest{{Path: strings.Repeat("a", syncproto.MaxPathLen+1)}}},
		"empty commit": {Repos: []syncproto.RepoRequest{{Path: "/a/b", Commits: [][]byte{{}}}}},
		"missing":      {Repos: []syncproto.RepoRequest{{Path: "/a/b", Missing: make([]commit.ID, syncproto.MaxMissing+1)}}},
	}
	for name, req := range tests {
		if _, err := syncproto.EncodeRequest(req); !errors.Is(err, syncproto.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	long := &syncproto.Response{Repos: []syncproto.RepoResponse{{Path: "/a/b", Rejected: []syncproto.Rejection{{Reason: strings.Repeat("x", syncproto.MaxReasonLen+1)}}}}}
	if _, err := syncproto.EncodeResponse(long); !errors.Is(err, syncproto.ErrMalformed) {
		t.Errorf("long reason: %v, want ErrMalformed", err)
	}
}

func zstdDecode(b []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(b, nil)
}
