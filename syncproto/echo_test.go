package syncproto_test

import (
	"context"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto"
)

// echoCheck is a transport that records, in one sync, the commits each
// response carried and fails the test if a later request pushes one back.
type echoCheck struct {
	t      testing.TB
	next   syncproto.Transport
	sent   map[commit.ID]bool // commits the server sent so far
	echoed int                // commits pushed back
	pushed int
}

func (e *echoCheck) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	req, err := syncproto.DecodeRequest(msg)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, q := range req.Repos {
		for _, b := range q.Commits {
			c, err := commit.Decode(b)
			if err != nil {
				e.t.Fatal(err)
			}
			e.pushed++
			if e.sent[c.ID()] {
				e.echoed++
			}
		}
	}
	out, err := e.next.RoundTrip(ctx, msg)
	if err != nil {
		return out, err
	}
	resp, err := syncproto.DecodeResponse(out)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range resp.Repos {
		for _, b := range p.Commits {
			if c, err := commit.Decode(b); err == nil {
				e.sent[c.ID()] = true
			}
		}
	}
	return out, nil
}

// TestBulkPushSkipsReceived: a client that holds mostly commits the
// server lacks pushes them in bulk (the server's filter's positives too,
// so that no round is spent on its false positives), but never the
// commits the server sent it earlier in the same sync.
func TestBulkPushSkipsReceived(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "s", 60, 20)
	writeItems(t, cli, "c", 300, 100)
	e := &echoCheck{t: t, next: syncproto.Loopback(serve(t, srv, nil)), sent: map[commit.ID]bool{}}
	s := newSyncer(t, e, nil)
	st := syncOnce(t, s, cli)
	requireSame(t, srv, cli)
	if e.echoed > 0 {
		t.Errorf("%d of the %d commits pushed were sent by the server earlier in the sync (stats %+v)", e.echoed, e.pushed, st)
	}
	if want := 300; e.pushed != want {
		t.Errorf("pushed %d commits, want %d", e.pushed, want)
	}
}
