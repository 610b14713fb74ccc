package syncproto_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// forger is a repository that also claims to hold forged commits: it
// offers them in CommitsSince and Commit, and counts them in its digest.
type forger struct {
	*repo.Repo
	forged []*commit.Commit
}

func (f *forger) CommitsSince(seq uint64) ([]*commit.Commit, uint64) {
	cs, cur := f.Repo.CommitsSince(seq)
	if seq == 0 {
		cs = append(cs, f.forged...)
	}
	return cs, cur
}

// StampsSince claims the forged commits too.
func (f *forger) StampsSince(seq uint64) ([]repo.Stamp, uint64) {
	cs, cur := f.CommitsSince(seq)
	out := make([]repo.Stamp, len(cs))
	for i, c := range cs {
		out[i] = repo.Stamp{ID: c.ID(), Key: c.Key(), Time: c.Time()}
	}
	return out, cur
}

func (f *forger) Commit(id commit.ID) (*commit.Commit, bool) {
	for _, c := range f.forged {
		if c.ID() == id {
			return c, true
		}
	}
	return f.Repo.Commit(id)
}

// forgeries returns, for a repository holding some commits, bad commits
// of each kind with the word their rejection reason must contain.
func forgeries(t *testing.T, r *repo.Repo) map[string]*commit.Commit {
	t.Helper()
	head, _ := r.Head("item0")
	parent, _ := r.Commit(head)
	other := peerKey(7)
	v := item.New(map[string]item.Value{"title": item.String("forged")})
	good := commit.Fields{Key: "item0", Parents: []commit.ID{head}, Time: parent.Time() + 1,
		Session: sessionOf(other), Full: true, Schema: testSchema, Value: v}
	signed, err := commit.New(good, other)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*commit.Commit{}

	// Bytes changed after signing: the id they hash to is not the id that
	// was signed.
	enc := signed.Encode()
	i := bytes.Index(enc, []byte("forged"))
	enc[i] = 'F'
	if out["signature"], err = commit.Decode(enc); err != nil {
		t.Fatal(err)
	}
	// Signed by a key that is not the session's.
	id := signed.ID()
	wrong := append(slices.Clone(signed.Body()), ed25519.Sign(peerKey(8), id[:])...)
	if out["verify"], err = commit.Decode(wrong); err != nil {
		t.Fatal(err)
	}
	// Not signed at all, where signatures are required.
	unsigned := good
	unsigned.Value = v.With("count", item.Int(2))
	if out["not signed"], err = commit.New(unsigned, nil); err != nil {
		t.Fatal(err)
	}
	// A merge whose contents are not the merge of its parents.
	sibling := good
	sibling.Value = v.With("count", item.Int(1))
	sib, err := commit.New(sibling, other)
	if err != nil {
		t.Fatal(err)
	}
	out["forged merge parent"] = sib // valid: needed for the merge to be checked
	merge, err := commit.NewMerge("item0", []*commit.Commit{signed, sib}, commit.Fields{Full: true, Schema: testSchema, Value: v.With("title", item.String("bogus"))})
	if err != nil {
		t.Fatal(err)
	}
	out["merge"] = merge
	return out
}

// TestServerRejectsBadCommits sends forged commits from a client: each is
// rejected with a reason, counted in the client's stats, nothing of them
// is stored, and the sync still converges on everything else.
func TestServerRejectsBadCommits(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeRandom(t, srv, rng, 20)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil)
	syncOnce(t, s, cli)
	forged := forgeries(t, cli)
	bad := &forger{Repo: cli}
	for _, name := range []string{"signature", "verify", "not signed"} {
		bad.forged = append(bad.forged, forged[name])
	}
	writeRandom(t, cli, rng, 3)
	before := ids(srv)
	fresh := newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil) // Bloom path: sends what the server lacks
	st, err := fresh.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: bad})
	if err != nil {
		t.Fatalf("sync: %v (%+v)", err, st)
	}
	after := ids(srv)
	for _, c := range bad.forged {
		name := nameOf(forged, c)
		if slices.Contains(after, c.ID()) {
			t.Errorf("%s: forged commit %s stored", name, c.ID().Short())
		}
		if !rejectedWith(st.Rejected, c.ID(), name) {
			t.Errorf("%s: forged commit %s not rejected with a reason containing %q: %v", name, c.ID().Short(), name, st.Rejected)
		}
	}
	if len(st.Rejected) != len(bad.forged) {
		t.Errorf("%d rejections, want each of the %d forged commits once", len(st.Rejected), len(bad.forged))
	}
	if len(after) < len(before) {
		t.Fatalf("server lost commits")
	}
	t.Logf("rejected: %v", st.Rejected)
}

func nameOf(m map[string]*commit.Commit, c *commit.Commit) string {
	for name, x := range m {
		if x == c {
			return name
		}
	}
	return ""
}

func rejectedWith(rs []syncproto.RepoRejection, id commit.ID, why string) bool {
	for _, r := range rs {
		if r.ID == id && strings.Contains(r.Reason, why) {
			return true
		}
	}
	return false
}

// TestForgedMergeRejected sends a merge whose contents are not the merge
// of its parents, with its parents: the server stores the parents and
// rejects the merge.
func TestForgedMergeRejected(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	srv := dbtest.OpenRepo(t, "/peer.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(0)})
	cli := openPeer(t, 1)
	writeRandom(t, srv, rng, 10)
	syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), cli)
	forged := forgeries(t, cli)
	// The two leaves the merge joins: one needs a valid signature.
	other := peerKey(7)
	head, _ := cli.Head("item0")
	parent, _ := cli.Commit(head)
	leaf, err := commit.New(commit.Fields{Key: "item0", Parents: []commit.ID{head}, Time: parent.Time() + 1,
		Session: sessionOf(other), Full: true, Schema: testSchema,
		Value: item.New(map[string]item.Value{"title": item.String("forged")})}, other)
	if err != nil {
		t.Fatal(err)
	}
	merge, sib := forged["merge"], forged["forged merge parent"]
	if !slices.Contains(merge.Parents(), leaf.ID()) || !slices.Contains(merge.Parents(), sib.ID()) {
		t.Fatalf("test setup: merge parents %v", merge.Parents())
	}
	resp := serve(t, srv, nil)
	// The leaves first, then the merge: repo.Receive checks a merge against
	// parents it already holds (see TestForgedMergeInOneBatch).
	if _, err := resp.Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath,
		Commits: [][]byte{leaf.Encode(), sib.Encode()}}}}); err != nil {
		t.Fatal(err)
	}
	out, err := resp.Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath,
		Commits: [][]byte{merge.Encode()}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := out.Repos[0]
	if len(p.Rejected) != 1 || p.Rejected[0].ID != merge.ID() || !strings.Contains(p.Rejected[0].Reason, "merge") {
		t.Fatalf("rejections %v, want the forged merge's", p.Rejected)
	}
	if srv.Has(merge.ID()) || !srv.Has(leaf.ID()) || !srv.Has(sib.ID()) {
		t.Fatalf("stored: merge %v, leaves %v %v; want the leaves only", srv.Has(merge.ID()), srv.Has(leaf.ID()), srv.Has(sib.ID()))
	}
}

// TestClientRefusesBadCommits has a server offer forged commits: the client
// refuses each with a reason, stores none, and still converges.
func TestClientRefusesBadCommits(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeRandom(t, srv, rng, 20)
	bad := &forger{Repo: srv}
	for name, c := range forgeries(t, srv) {
		if name == "signature" || name == "verify" || name == "not signed" {
			bad.forged = append(bad.forged, c)
		}
	}
	garbage := []byte("not a commit at all")
	s := newSyncer(t, syncproto.TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		out, err := syncproto.Loopback(serve(t, bad, nil)).RoundTrip(ctx, req)
		if err != nil {
			return nil, err
		}
		resp, err := syncproto.DecodeResponse(out)
		if err != nil {
			return nil, err
		}
		if len(resp.Repos[0].Commits) > 0 {
			resp.Repos[0].Commits = append(resp.Repos[0].Commits, garbage)
		}
		return syncproto.EncodeResponse(resp)
	}), nil)
	st, err := s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	if err != nil {
		t.Fatalf("sync: %v (%+v)", err, st)
	}
	if len(st.Refused) != len(bad.forged)+1 {
		t.Fatalf("refused %v, want %d", st.Refused, len(bad.forged)+1)
	}
	for _, c := range bad.forged {
		if cli.Has(c.ID()) {
			t.Fatalf("client stored forged commit %s", c.ID().Short())
		}
	}
	requireSame(t, srv, cli)
}

// rejectAll is a Policy that refuses every commit and hides item1.
type rejectAll struct{}

func (rejectAll) AcceptCommit(context.Context, string, *commit.Commit) error {
	return errors.New("read-only for this session")
}

func (rejectAll) AdmitCommit(context.Context, string, *commit.Commit, item.Item, item.Item) error {
	return errors.New("read-only for this session")
}

func (rejectAll) View(context.Context, string, syncproto.Repo) (syncproto.View, error) {
	return rejectAllView{}, nil
}

type rejectAllView struct{}

func (rejectAllView) Key() string               { return "all but item1" }
func (rejectAllView) MayRead(key string) bool   { return key != "item1" }
func (rejectAllView) Own(c *commit.Commit) bool { return false }

func TestPolicy(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "item", 3, 3) // items item000000000..2
	for i := range 3 {
		key := fmt.Sprintf("item%d", i)
		if _, err := srv.Write(repo.Update{Key: key, Fn: func(repo.Current) (item.Item, commit.Schema, error) {
			return item.New(map[string]item.Value{"n": item.Int(int64(i))}), testSchema, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	writeItems(t, cli, "mine", 2, 2)
	s := newSyncer(t, syncproto.Loopback(serve(t, srv, &syncproto.ResponderOptions{Policy: rejectAll{}})), &syncproto.SyncerOptions{MaxRounds: 3})
	st, err := s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	if err != nil {
		t.Fatalf("sync under a restricting policy: %v (%+v)", err, st)
	}
	if len(st.Rejected) != 2 || !strings.Contains(st.Rejected[0].Reason, "read-only for this session") {
		t.Fatalf("rejected %v, want both client commits refused by the policy", st.Rejected)
	}
	if _, _, ok := cli.Get("item1"); ok {
		t.Fatal("client received a commit the policy hides")
	}
	if _, _, ok := cli.Get("item0"); !ok {
		t.Fatal("client did not receive a readable commit")
	}
	for _, k := range cli.Keys(true) {
		if strings.HasPrefix(k, "mine") && srv.Has(mustHead(t, cli, k)) {
			t.Fatalf("server stored %s, which its policy refused", k)
		}
	}
}

func mustHead(t *testing.T, r *repo.Repo, key string) commit.ID {
	t.Helper()
	h, ok := r.Head(key)
	if !ok {
		t.Fatalf("no head for %s", key)
	}
	return h
}

// TestReplayedRequest delivers a request with commits again, later, after
// the server moved on: the answer is valid and nothing changes twice.
func TestReplayedRequest(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeRandom(t, srv, rng, 10)
	resp := serve(t, srv, nil)
	var captured [][]byte
	tr := syncproto.TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		captured = append(captured, slices.Clone(req))
		return syncproto.Loopback(resp).RoundTrip(ctx, req)
	})
	s := newSyncer(t, tr, nil)
	syncOnce(t, s, cli)
	writeRandom(t, cli, rng, 5)
	syncOnce(t, s, cli)
	requireSame(t, srv, cli)
	writeRandom(t, srv, rng, 5)
	before := ids(srv)
	for _, req := range captured {
		out, err := resp.HandleMessage(context.Background(), req)
		if err != nil {
			t.Fatalf("replayed request: %v", err)
		}
		if _, err := syncproto.DecodeResponse(out); err != nil {
			t.Fatalf("answer to replayed request: %v", err)
		}
	}
	if !slices.Equal(before, ids(srv)) {
		t.Fatal("a replayed request changed the server's commits")
	}
	// A client given stale answers still converges later.
	stale := syncproto.TransportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		return resp.HandleMessage(ctx, captured[0])
	})
	newSyncer(t, stale, &syncproto.SyncerOptions{MaxRounds: 2}).Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	syncOnce(t, s, cli)
	requireSame(t, srv, cli)
}

// TestBadMessagesToResponder sends malformed, truncated and oversized
// messages: each fails with the right error and stores nothing.
func TestBadMessagesToResponder(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeRandom(t, cli, rng, 10)
	cs, _ := cli.CommitsSince(0)
	var encs [][]byte
	for _, c := range cs {
		encs = append(encs, c.Encode())
	}
	good, err := syncproto.EncodeRequest(&syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Count: 1, Commits: encs}}})
	if err != nil {
		t.Fatal(err)
	}
	resp := serve(t, srv, nil)
	oversized := make([]byte, syncproto.MaxMessageSize+1)
	copy(oversized, good)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, syncproto.ErrMalformed},
		{"truncated", good[:len(good)/2], syncproto.ErrMalformed},
		{"trailing", append(slices.Clone(good), 0), syncproto.ErrMalformed},
		{"version", append([]byte{9}, good[1:]...), syncproto.ErrVersion},
		{"kind", append([]byte{good[0], 2}, good[2:]...), syncproto.ErrMalformed},
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n"), syncproto.ErrVersion},
		{"oversized", oversized, syncproto.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resp.HandleMessage(context.Background(), tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if len(srv.IDs()) != 0 {
				t.Fatal("server stored commits from a bad message")
			}
		})
	}
	// Every strict prefix fails.
	for n := range len(good) {
		if _, err := resp.HandleMessage(context.Background(), good[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
	if len(srv.IDs()) != 0 {
		t.Fatal("server stored commits from a truncated message")
	}
	// A request naming a repository twice is refused whole.
	twice, _ := syncproto.EncodeRequest(&syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Commits: encs}, {Path: testPath}}})
	if _, err := resp.HandleMessage(context.Background(), twice); !errors.Is(err, syncproto.ErrMalformed) || len(srv.IDs()) != 0 {
		t.Fatalf("duplicate path: %v", err)
	}
	if _, err := resp.HandleMessage(context.Background(), good); err != nil || len(srv.IDs()) != len(encs) {
		t.Fatalf("the good message: %v, %d commits stored", err, len(srv.IDs()))
	}
}

// TestForgedMergeInOneBatch sends a forged merge together with its parents.
// repo.Receive can precheck a merge only against parents it already holds;
// when the parents arrive in the same batch, the merge completes on
// insertion, and its contents would become the item's
// value unless repo recomputes every received merge, which it must.
func TestForgedMergeInOneBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	srv := dbtest.OpenRepo(t, "/peer.log", &repo.Options{FS: vfs.NewMem(), Key: peerKey(0)})
	cli := openPeer(t, 1)
	writeRandom(t, srv, rng, 10)
	syncOnce(t, newSyncer(t, syncproto.Loopback(serve(t, srv, nil)), nil), cli)
	forged := forgeries(t, cli)
	other := peerKey(7)
	head, _ := cli.Head("item0")
	parent, _ := cli.Commit(head)
	leaf, err := commit.New(commit.Fields{Key: "item0", Parents: []commit.ID{head}, Time: parent.Time() + 1,
		Session: sessionOf(other), Full: true, Schema: testSchema,
		Value: item.New(map[string]item.Value{"title": item.String("forged")})}, other)
	if err != nil {
		t.Fatal(err)
	}
	merge, sib := forged["merge"], forged["forged merge parent"]
	out, err := serve(t, srv, nil).Handle(context.Background(), &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath,
		Commits: [][]byte{leaf.Encode(), sib.Encode(), merge.Encode()}}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Repos[0]; len(p.Rejected) != 1 || p.Rejected[0].ID != merge.ID() {
		t.Fatalf("rejections %v, want the forged merge's", p.Rejected)
	}
}
