package syncproto

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// TestResponseSize: the size EncodeResponse allocates up front holds the
// whole payload, so an answer of megabytes is allocated once, not grown.
func TestResponseSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		r := &Response{}
		for range rng.IntN(4) + 1 {
			p := RepoResponse{Path: "/data/r" + string(rune('a'+rng.IntN(26))), Epoch: rng.Uint64(), Seq: rng.Uint64(), Count: rng.Uint64()}
			if rng.IntN(5) == 0 {
				p.Status, p.Message = StatusError, string(bytes.Repeat([]byte("x"), rng.IntN(MaxReasonLen)))
				r.Repos = append(r.Repos, p)
				continue
			}
			if rng.IntN(2) == 0 {
				p.Filter = NewFilter(uint64(rng.IntN(5000)+1), 0.01)
			}
			for range rng.IntN(50) {
				p.Commits = append(p.Commits, bytes.Repeat([]byte{byte(i)}, rng.IntN(3000)+1))
			}
			for range rng.IntN(5) {
				p.Missing = append(p.Missing, commit.ID{byte(rng.Uint32())})
				p.Hidden = append(p.Hidden, commit.ID{byte(rng.Uint32())})
				p.Rejected = append(p.Rejected, Rejection{ID: commit.ID{1}, Reason: string(bytes.Repeat([]byte("r"), rng.IntN(200)))})
			}
			p.More = rng.IntN(2) == 0
			r.Repos = append(r.Repos, p)
		}
		b := make([]byte, envelopeSize, envelopeSize+responseSize(r))
		b = append(b, 0) // the repository count's varint, as EncodeResponse writes it
		for j := range r.Repos {
			var err error
			if b, err = appendRepoResponse(b, &r.Repos[j]); err != nil {
				t.Fatal(err)
			}
		}
		if need := len(b) - envelopeSize; need > responseSize(r) {
			t.Fatalf("response %d: payload of %d bytes, estimated %d", i, need, responseSize(r))
		}
	}
}
