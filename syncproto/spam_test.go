package syncproto_test

import (
	"context"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// TestKeylessMergeSpamRefused: merge commits need no key, so anyone could
// send a server thousands of them hanging from made-up parents, to be
// stored as pending for ever and copied to every client. A responder
// refuses every commit whose parents it does not hold, as retryable
// ("missing parents"), and stores none of them; a child sent before its
// parent in one request is still taken.
func TestKeylessMergeSpamRefused(t *testing.T) {
	srv := openPeer(t, 0)
	resp := serve(t, srv, nil)
	var encs [][]byte
	for i := range 200 {
		var leaves []*commit.Commit
		for j := range 2 {
			leaf, err := commit.New(commit.Fields{Key: "x", Time: int64(i), Session: sessionOf(peerKey(9)), Full: true,
				Value: item.Item{}.With("n", item.Int(int64(2*i+j)))}, peerKey(9))
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, leaf)
		}
		m, err := commit.NewMerge("x", leaves, commit.Fields{Full: true, Value: item.Item{}.With("spam", item.Int(int64(i)))})
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, m.Encode())
	}
	out, err := resp.Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Commits: encs}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Repos[0]; len(p.Rejected) != len(encs) || !strings.HasPrefix(p.Rejected[0].Reason, repo.MissingParents) {
		t.Fatalf("%d of %d merges refused, first %v", len(p.Rejected), len(encs), p.Rejected[:min(1, len(p.Rejected))])
	}
	if n := len(srv.IDs()); n != 0 {
		t.Fatalf("the server stored %d commits", n)
	}

	// An honest child before its parent in one request is taken.
	w := openPeer(t, 1)
	for i := range 3 {
		if _, err := w.Write(repo.Update{Key: "y", Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
			return c.Value.With("n", item.Int(int64(i))), testSchema, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	cs, _ := w.CommitsSince(0)
	var reversed [][]byte
	for i := len(cs) - 1; i >= 0; i-- {
		reversed = append(reversed, cs[i].Encode())
	}
	out, err = resp.Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Commits: reversed}}})
	if err != nil || len(out.Repos[0].Rejected) != 0 || len(srv.IDs()) != len(cs) {
		t.Fatalf("children first: rejected %v, stored %d of %d (%v)", out.Repos[0].Rejected, len(srv.IDs()), len(cs), err)
	}
}
