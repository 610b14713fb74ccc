package syncproto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// bigRequest is a request whose encoding is compressed.
func bigRequest(t *testing.T) (*syncproto.Request, []byte) {
	t.Helper()
	req := &syncproto.Request{}
	for i := range 500 {
		req.Repos = append(req.Repos, syncproto.RepoRequest{Path: fmt.Sprintf("/data/repository-%04d", i)})
	}
	msg, err := syncproto.EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if msg[2] != 1 {
		t.Fatal("the request is not compressed")
	}
	return req, msg
}

// TestPayloadBound: a compressed request declares its payload's size, a
// server decodes it within that bound, and a smaller bound refuses it
// before allocating more; a frame that declares no size is bounded by
// MaxPayloadSize.
func TestPayloadBound(t *testing.T) {
	req, msg := bigRequest(t)
	bound := syncproto.PayloadBound(msg)
	if bound <= len(msg) || bound >= syncproto.MaxPayloadSize {
		t.Fatalf("bound %d for a %d-byte message", bound, len(msg))
	}
	got, err := syncproto.DecodeRequestBound(msg, bound)
	if err != nil || len(got.Repos) != len(req.Repos) {
		t.Fatalf("decode within the bound: %v", err)
	}
	if _, err := syncproto.DecodeRequestBound(msg, bound-1); !errors.Is(err, syncproto.ErrTooLarge) {
		t.Fatalf("decode under the bound: %v", err)
	}

	// The same payload in a frame that does not declare its size.
	payload, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := payload.DecodeAll(msg[3:], nil)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	w, _ := zstd.NewWriter(&z)
	w.Write(raw[:len(raw)/2]) // two flushes: the frame cannot declare its size
	w.Flush()
	w.Write(raw[len(raw)/2:])
	w.Close()
	undeclared := append(msg[:3:3], z.Bytes()...)
	if b := syncproto.PayloadBound(undeclared); b != syncproto.UndeclaredBound {
		t.Fatalf("bound of a frame without a size: %d", b)
	}
	if _, err := syncproto.DecodeRequestBound(undeclared, syncproto.PayloadBound(undeclared)); !errors.Is(err, syncproto.ErrTooLarge) {
		t.Fatalf("an undeclared frame over its bound: %v", err)
	}
	if _, err := syncproto.DecodeRequestBound(undeclared, len(raw)); err != nil {
		t.Fatalf("an undeclared frame within a bound: %v", err)
	}
	// The smallest requests Encode compresses declare no size, and fit.
	small := &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: "/data/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{Path: "/data/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}}}
	sm, err := syncproto.EncodeRequest(small)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syncproto.DecodeRequestBound(sm, syncproto.PayloadBound(sm)); err != nil {
		t.Fatalf("a small request (codec %d) within its bound: %v", sm[2], err)
	}
}

// TestSendBudget: a Responder asked for a smaller answer sends fewer
// commits (at least one) and says More; the client still converges.
func TestSendBudget(t *testing.T) {
	srv := openPeer(t, 1)
	writeItems(t, srv, "a", 50, 10)
	cli := openPeer(t, 2)
	r := serve(t, srv, nil)
	tr := syncproto.TransportFunc(func(ctx context.Context, msg []byte) ([]byte, error) {
		return r.HandleMessage(syncproto.WithSendBudget(ctx, 1), msg)
	})
	rounds, received := syncToEnd(t, newSyncer(t, tr, nil), cli, 20)
	if received != 50 || rounds < 50 {
		t.Fatalf("with a 1-byte budget: %d rounds, %d commits", rounds, received)
	}
	requireSame(t, srv, cli)
}

// TestSendReserve: a Responder asks the reserve before it puts each
// commit in its answer, leaves out those it refuses (sending at least
// one), and asks for no more than it sends; the client still converges.
func TestSendReserve(t *testing.T) {
	srv := openPeer(t, 1)
	writeItems(t, srv, "a", 50, 10)
	cli := openPeer(t, 2)
	r := serve(t, srv, nil)
	var asked, granted int
	tr := syncproto.TransportFunc(func(ctx context.Context, msg []byte) ([]byte, error) {
		left := 3 // commits granted this round
		return r.HandleMessage(syncproto.WithSendReserve(ctx, func(n int) bool {
			asked++
			if n <= 0 {
				t.Errorf("reserve asked for %d bytes", n)
			}
			if left == 0 {
				return false
			}
			left--
			granted++
			return true
		}), msg)
	})
	rounds, received := syncToEnd(t, newSyncer(t, tr, nil), cli, 40)
	if received != 50 || granted != 50 || rounds < 50/3 {
		t.Fatalf("granting 3 commits a round: %d rounds, %d commits received, %d granted (%d asked)", rounds, received, granted, asked)
	}
	requireSame(t, srv, cli)
}

// syncToEnd syncs /data/tasks into cli until it converges (at most tries
// syncs, each up to its round budget) and returns the rounds and the
// commits received.
func syncToEnd(t *testing.T, s *syncproto.Syncer, cli *repo.Repo, tries int) (rounds, received int) {
	t.Helper()
	for range tries {
		st, err := s.Sync(context.Background(), syncproto.Local{Path: "/data/tasks", Repo: cli})
		rounds, received = rounds+st.Rounds, received+st.CommitsReceived
		if err == nil {
			return rounds, received
		}
		if !errors.Is(err, syncproto.ErrNotConverged) {
			t.Fatal(err)
		}
	}
	return rounds, received
}
