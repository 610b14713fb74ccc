package syncproto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// rulePolicy is a Policy for tests: the requester may read the items read
// admits, given their current value, and owns the commits of the sessions
// in own (fixed once made). The view key names a generation: setRead
// makes a new one.
type rulePolicy struct {
	mu      sync.Mutex // guards all below
	gen     int
	key     string // the view key, "gen <gen>"
	read    func(key string, v item.Item) bool
	own     map[commit.SessionID]bool
	nothing map[string]bool // repositories the requester may read nothing of
	admit   func(c *commit.Commit, before, after item.Item) error
}

func newRulePolicy(read func(key string, v item.Item) bool, own ...commit.SessionID) *rulePolicy {
	p := &rulePolicy{key: "gen 0", read: read, own: map[commit.SessionID]bool{}, nothing: map[string]bool{}}
	for _, s := range own {
		p.own[s] = true
	}
	return p
}

// setRead changes the read rule, and so the view key.
func (p *rulePolicy) setRead(read func(key string, v item.Item) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.read, p.gen = read, p.gen+1
	p.key = fmt.Sprint("gen ", p.gen)
}

func (p *rulePolicy) AcceptCommit(context.Context, string, *commit.Commit) error { return nil }

func (p *rulePolicy) AdmitCommit(_ context.Context, _ string, c *commit.Commit, before, after item.Item) error {
	p.mu.Lock()
	admit := p.admit
	p.mu.Unlock()
	if admit == nil {
		return nil
	}
	return admit(c, before, after)
}

func (p *rulePolicy) View(_ context.Context, path string, r syncproto.Repo) (syncproto.View, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nothing[path] {
		// A message that would give the repository away if it were sent.
		return nil, fmt.Errorf("%w: %s is private to user 7 (rule /data/{repo})", syncproto.ErrUnknownRepo, path)
	}
	return &ruleView{key: p.key, r: r.(valuer), read: p.read, own: p.own}, nil
}

// valuer is a repository with current values.
type valuer interface {
	Get(key string) (item.Item, commit.Schema, bool)
}

type ruleView struct {
	key  string
	r    valuer
	read func(key string, v item.Item) bool
	own  map[commit.SessionID]bool
}

func (v *ruleView) Key() string { return v.key }

func (v *ruleView) MayRead(key string) bool {
	val, _, _ := v.r.Get(key)
	return v.read(key, val)
}

func (v *ruleView) Own(c *commit.Commit) bool { return v.own[c.Session()] }

// Read rules.
func prefixed(prefixes ...string) func(string, item.Item) bool {
	return func(key string, _ item.Item) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}
}

func readAll(string, item.Item) bool { return true }

// evenCount admits items whose count field is even: a rule on values.
func evenCount(_ string, v item.Item) bool {
	n, ok := v.Get("count")
	return ok && n.Int64()%2 == 0
}

// shared admits items whose shared field is true.
func shared(_ string, v item.Item) bool {
	s, ok := v.Get("shared")
	return ok && s.Bool()
}

// set writes field = v in item key.
func set(t testing.TB, r *repo.Repo, key, field string, v item.Value) *commit.Commit {
	t.Helper()
	cs, err := r.Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		return cur.Value.With(field, v), testSchema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// inView returns the ids of r's commits in the view p gives (the test's
// own account of V), and of those outside it.
func inView(t testing.TB, p *rulePolicy, r *repo.Repo) (in, out map[commit.ID]bool) {
	t.Helper()
	v, err := p.View(context.Background(), testPath, r)
	if err != nil {
		t.Fatal(err)
	}
	in, out = map[commit.ID]bool{}, map[commit.ID]bool{}
	cs, _ := r.CommitsSince(0)
	for _, c := range cs {
		if v.MayRead(c.Key()) || v.Own(c) {
			in[c.ID()] = true
		} else {
			out[c.ID()] = true
		}
	}
	return in, out
}

// holdsExactly fails unless r holds exactly the ids in want.
func holdsExactly(t testing.TB, r *repo.Repo, want map[commit.ID]bool) {
	t.Helper()
	got := r.IDs()
	for _, id := range got {
		if !want[id] {
			t.Fatalf("holds %s, outside the view", id.Short())
		}
	}
	if len(got) != len(want) {
		t.Fatalf("holds %d commits, want the %d in view", len(got), len(want))
	}
}

// recorder is a Transport to a Responder that keeps every request and
// response, decoded.
type recorder struct {
	s     *syncproto.Responder
	mu    sync.Mutex // guards reqs and resps
	reqs  []*syncproto.Request
	resps []*syncproto.Response
}

func (rc *recorder) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	out, err := rc.s.HandleMessage(ctx, slices.Clone(msg))
	if err != nil {
		return nil, err
	}
	req, err1 := syncproto.DecodeRequest(msg)
	resp, err2 := syncproto.DecodeResponse(out)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	rc.mu.Lock()
	rc.reqs, rc.resps = append(rc.reqs, req), append(rc.resps, resp)
	rc.mu.Unlock()
	return slices.Clone(out), nil
}

// pushedIDs returns the ids of the commits in encs that decode.
func pushedIDs(encs [][]byte) map[commit.ID]bool {
	out := map[commit.ID]bool{}
	for _, b := range encs {
		if c, err := commit.Decode(b); err == nil {
			out[c.ID()] = true
		}
	}
	return out
}

// checkNoLeak fails if a response names a commit outside V other than in
// Hidden or Rejected, or names there an id its request did not carry.
func checkNoLeak(t testing.TB, req *syncproto.Request, resp *syncproto.Response, out map[commit.ID]bool) {
	t.Helper()
	for i := range resp.Repos {
		q, p := &req.Repos[i], &resp.Repos[i]
		sent := pushedIDs(q.Commits)
		for _, id := range p.Hidden {
			if !sent[id] {
				t.Fatalf("hidden names %s, which the request did not carry", id.Short())
			}
		}
		for _, rj := range p.Rejected {
			if out[rj.ID] && !sent[rj.ID] {
				t.Fatalf("rejected names %s, outside the view and not sent", rj.ID.Short())
			}
		}
		for id := range pushedIDs(p.Commits) {
			if out[id] {
				t.Fatalf("sent %s, outside the view", id.Short())
			}
		}
		for _, id := range p.Missing {
			if out[id] {
				t.Fatalf("missing names %s, outside the view", id.Short())
			}
		}
	}
}

// TestUnreadableRepoIndistinguishableFromMissing: a repository the
// requester may read nothing of is answered byte for byte like one that
// does not exist, whatever the request carries, and nothing it carries is
// stored.
func TestUnreadableRepoIndistinguishableFromMissing(t *testing.T) {
	srv, cli := openPeer(t, 0), openPeer(t, 1)
	writeItems(t, srv, "k", 20, 10)
	writeItems(t, cli, "c", 5, 5)
	p := newRulePolicy(readAll)
	p.nothing[testPath] = true
	hidden, err := syncproto.NewResponder(single(testPath, srv), &syncproto.ResponderOptions{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	missing, err := syncproto.NewResponder(single("/data/elsewhere", srv), &syncproto.ResponderOptions{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := cli.CommitsSince(0)
	all, _ := srv.CommitsSince(0)
	filter := syncproto.NewFilter(10, 0.01)
	requests := map[string]syncproto.RepoRequest{
		"empty":    {Path: testPath},
		"resume":   {Path: testPath, Count: 20, Resume: &syncproto.Point{Epoch: srv.Epoch(), Seq: srv.Seq()}},
		"filter":   {Path: testPath, Count: 5, Filter: filter},
		"push":     {Path: testPath, Count: 5, Commits: [][]byte{cs[0].Encode(), cs[1].Encode()}},
		"missing":  {Path: testPath, Count: 1, Missing: []commit.ID{all[0].ID()}},
		"pushHeld": {Path: testPath, Count: 1, Commits: [][]byte{all[3].Encode()}},
	}
	before := srv.Seq()
	for name, q := range requests {
		t.Run(name, func(t *testing.T) {
			req := &syncproto.Request{Session: sessionOf(peerKey(1)), Repos: []syncproto.RepoRequest{q}}
			msg, err := syncproto.EncodeRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			a, err := hidden.HandleMessage(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := missing.HandleMessage(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("unreadable: %x\nmissing:    %x", a, b)
			}
			resp, _ := syncproto.DecodeResponse(a)
			if resp.Repos[0].Status != syncproto.StatusNotFound || strings.Contains(resp.Repos[0].Message, "private") {
				t.Fatalf("answer %+v, want not found, saying nothing of the policy", resp.Repos[0])
			}
		})
	}
	if srv.Seq() != before {
		t.Fatal("the server stored commits sent for a repository the requester may not read")
	}
	// The Syncer's error is the same too.
	_, errHidden := newSyncer(t, syncproto.Loopback(hidden), nil).Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	_, errMissing := newSyncer(t, syncproto.Loopback(missing), nil).Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli})
	if !errors.Is(errHidden, syncproto.ErrUnknownRepo) || errHidden.Error() != errMissing.Error() {
		t.Fatalf("sync of an unreadable repository: %v; of a missing one: %v", errHidden, errMissing)
	}
	if _, err := hidden.Notice(context.Background(), testPath, srv); !errors.Is(err, syncproto.ErrUnknownRepo) {
		t.Fatalf("notice for an unreadable repository: %v, want ErrUnknownRepo", err)
	}
}

// restrictedPair is a server with readable ("pub") and unreadable ("sec")
// items, a client, and a Responder whose policy lets the client read the
// pub items and own its own commits.
type restrictedPair struct {
	srv, cli *repo.Repo
	policy   *rulePolicy
	resp     *syncproto.Responder
}

func newRestrictedPair(t testing.TB, read func(string, item.Item) bool) *restrictedPair {
	t.Helper()
	p := &restrictedPair{srv: openPeer(t, 0), cli: openPeer(t, 1)}
	p.policy = newRulePolicy(read, p.cli.Session())
	var err error
	p.resp, err = syncproto.NewResponder(single(testPath, p.srv), &syncproto.ResponderOptions{Policy: p.policy})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writePubSec writes n pub and n sec items to r, and updates each once.
func writePubSec(t testing.TB, r *repo.Repo, n int) {
	t.Helper()
	writeItems(t, r, "pub", n, n)
	writeItems(t, r, "sec", n, n)
	for i := range n {
		set(t, r, fmt.Sprintf("pub%09d", i), "done", item.Bool(true))
		set(t, r, fmt.Sprintf("sec%09d", i), "done", item.Bool(true))
	}
}

// TestServerFilterHasNoHiddenIds: for ids outside the view, the server's
// filter (a fresh salt each time) answers "present" only at its
// false-positive rate, as for ids that exist nowhere.
func TestServerFilterHasNoHiddenIds(t *testing.T) {
	p := newRestrictedPair(t, prefixed("pub"))
	writePubSec(t, p.srv, 20)
	in, out := inView(t, p.policy, p.srv)
	absent := make([]commit.ID, len(out))
	for i := range absent {
		rand.Read(absent[i][:])
	}
	const rounds = 1000
	var hitsOut, hitsAbsent, filters int
	var fp float64
	for range rounds {
		var d syncproto.Digest
		rand.Read(d[:])
		// One commit the server lacks, and a filter of nothing: the server
		// sends all it has in view, and its filter.
		req := &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Count: 1, Digest: d, Filter: syncproto.NewFilter(1, 0.01)}}}
		resp, err := p.resp.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		checkNoLeak(t, req, resp, out)
		f := resp.Repos[0].Filter
		if f == nil {
			t.Fatal("no server filter")
		}
		filters++
		for id := range in {
			if !f.Has(id) {
				t.Fatalf("the server's filter lacks %s, in view", id.Short())
			}
		}
		for id := range out {
			if f.Has(id) {
				hitsOut++
			}
		}
		for _, id := range absent {
			if f.Has(id) {
				hitsAbsent++
			}
		}
		k, m := float64(f.K()), float64(f.Bits())
		fp = math.Pow(1-math.Exp(-k*float64(len(in))/m), k)
	}
	trials := float64(filters * len(out))
	bound := 3*fp*trials + 10
	t.Logf("%d filters of %d ids, false-positive rate %.2g: outside the view %d hits, absent ids %d, bound %.0f of %.0f", filters, len(in), fp, hitsOut, hitsAbsent, bound, trials)
	if float64(hitsOut) > bound || float64(hitsAbsent) > bound {
		t.Fatalf("filter hits: %d for ids outside the view, %d for absent ids, of %.0f; want both at most %.0f", hitsOut, hitsAbsent, trials, bound)
	}
}

// TestCountDigestAreViewRestricted: a client that may read half the items
// (by their values) converges, holds exactly the commits in view, and
// then syncs in one round trip.
func TestCountDigestAreViewRestricted(t *testing.T) {
	p := newRestrictedPair(t, evenCount)
	writeItems(t, p.srv, "k", 200, 50)
	for i := range 20 {
		set(t, p.srv, fmt.Sprintf("k%09d", i), "title", item.String("again"))
	}
	s := newSyncer(t, syncproto.Loopback(p.resp), nil)
	st := syncOnce(t, s, p.cli)
	in, out := inView(t, p.policy, p.srv)
	if len(in) == 0 || len(out) == 0 {
		t.Fatalf("%d commits in view, %d outside: want both", len(in), len(out))
	}
	holdsExactly(t, p.cli, in)
	t.Logf("first sync: %+v", st)
	// The client writes readable items of its own: pushed, converged.
	writeItems(t, p.cli, "mine", 10, 10)
	syncOnce(t, s, p.cli)
	in, _ = inView(t, p.policy, p.srv)
	holdsExactly(t, p.cli, in)
	if st := syncOnce(t, s, p.cli); st.Rounds != 1 || st.CommitsReceived+st.CommitsSent != 0 {
		t.Fatalf("in sync: %+v, want one round trip", st)
	}
	// A new Syncer, no resume point: the Bloom path converges too.
	if st := syncOnce(t, newSyncer(t, syncproto.Loopback(p.resp), nil), p.cli); st.Rounds != 1 {
		t.Fatalf("in sync, first contact: %+v, want one round trip", st)
	}
}

// TestMissingIdOutsideViewNotAnswered: asking for an id outside the view
// gets the very answer asking for an id the server does not hold gets.
func TestMissingIdOutsideViewNotAnswered(t *testing.T) {
	p := newRestrictedPair(t, prefixed("pub"))
	writePubSec(t, p.srv, 3)
	pub, _ := p.srv.Head("pub000000001")
	sec, _ := p.srv.Head("sec000000001")
	var nowhere commit.ID
	rand.Read(nowhere[:])
	answer := func(id commit.ID) []byte {
		req := &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: testPath, Count: 1, Digest: syncproto.Digest{1}, Missing: []commit.ID{id}}}}
		msg, err := syncproto.EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.resp.HandleMessage(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := answer(sec), answer(nowhere); !bytes.Equal(a, b) {
		t.Fatalf("asking for an id outside the view: %x\nfor an id held nowhere: %x", a, b)
	}
	resp, err := syncproto.DecodeResponse(answer(pub))
	if err != nil {
		t.Fatal(err)
	}
	if got := pushedIDs(resp.Repos[0].Commits); len(got) != 1 || !got[pub] {
		t.Fatalf("asking for an id in view: sent %v, want %s", got, pub.Short())
	}
}

// TestCursorOpaque: a restricted view's position tells neither the log's
// epoch nor its sequence number, moves only with the view, and a tampered
// one costs a Bloom round, never an error or a lost commit.
func TestCursorOpaque(t *testing.T) {
	p := newRestrictedPair(t, prefixed("pub"))
	writePubSec(t, p.srv, 10)
	resumes := &syncproto.MemResumes{}
	s := newSyncer(t, syncproto.Loopback(p.resp), &syncproto.SyncerOptions{Resumes: resumes})
	syncOnce(t, s, p.cli)
	res, _ := resumes.LoadResume(testPath)
	if res.ServerEpoch == p.srv.Epoch() || res.ServerSeq == p.srv.Seq() || res.ServerSeq > 1 {
		t.Fatalf("position (%x, %d) for a log at (%x, %d): want an epoch of its own and a view-local sequence number",
			res.ServerEpoch, res.ServerSeq, p.srv.Epoch(), p.srv.Seq())
	}
	// Commits outside the view do not move the position.
	for i := range 5 {
		set(t, p.srv, fmt.Sprintf("sec%09d", i), "title", item.String("hidden"))
	}
	syncOnce(t, s, p.cli)
	if again, _ := resumes.LoadResume(testPath); again.ServerEpoch != res.ServerEpoch || again.ServerSeq != res.ServerSeq {
		t.Fatalf("position moved from %d to %d with commits outside the view", res.ServerSeq, again.ServerSeq)
	}
	// Commits in view move it by one, however many others were written.
	set(t, p.srv, "pub000000001", "title", item.String("seen"))
	set(t, p.srv, "sec000000001", "title", item.String("unseen"))
	syncOnce(t, s, p.cli)
	moved, _ := resumes.LoadResume(testPath)
	if moved.ServerEpoch != res.ServerEpoch || moved.ServerSeq != res.ServerSeq+1 {
		t.Fatalf("position (%x, %d) after one change in view, from (%x, %d)", moved.ServerEpoch, moved.ServerSeq, res.ServerEpoch, res.ServerSeq)
	}
	// Another view of the same repository has positions of its own.
	other := newRulePolicy(prefixed("sec"))
	ov, _ := syncproto.NewResponder(single(testPath, p.srv), &syncproto.ResponderOptions{Policy: other})
	on, err := ov.Notice(context.Background(), testPath, p.srv)
	if err != nil || on.Epoch == moved.ServerEpoch {
		t.Fatalf("another view's notice %+v, %v: want an epoch of its own", on, err)
	}
	// Tampered positions: no error, the commits written meanwhile arrive.
	for i, tamper := range []func(*syncproto.Resume){
		func(r *syncproto.Resume) { r.ServerSeq += 1000 },
		func(r *syncproto.Resume) { r.ServerSeq = 0 },
		func(r *syncproto.Resume) { r.ServerEpoch ^= 1 },
		func(r *syncproto.Resume) { r.ServerEpoch, r.ServerSeq = p.srv.Epoch(), 0 },
	} {
		want := set(t, p.srv, "pub000000002", "count", item.Int(int64(100+i)))
		r, _ := resumes.LoadResume(testPath)
		tamper(&r)
		resumes.StoreResume(testPath, r)
		st := syncOnce(t, s, p.cli)
		if !p.cli.Has(want.ID()) {
			t.Fatalf("tamper %d: %+v, the new commit did not arrive", i, st)
		}
		in, _ := inView(t, p.policy, p.srv)
		holdsExactly(t, p.cli, in)
		if st := syncOnce(t, s, p.cli); st.Rounds != 1 {
			t.Fatalf("tamper %d: the next sync took %d round trips", i, st.Rounds)
		}
	}
}

// TestWriteOnlyDropBoxConverges: a client that may write items it may not
// read (its own commits are in its view) converges, and never receives
// the other writers' commits.
func TestWriteOnlyDropBoxConverges(t *testing.T) {
	p := newRestrictedPair(t, prefixed("pub"))
	writeItems(t, p.srv, "pub", 5, 5)
	writeItems(t, p.srv, "box-other", 5, 5)
	writeItems(t, p.cli, "box-mine", 5, 5)
	s := newSyncer(t, syncproto.Loopback(p.resp), nil)
	syncOnce(t, s, p.cli)
	for _, id := range p.cli.IDs() {
		if !p.srv.Has(id) {
			t.Fatalf("the server lacks %s, dropped in the box", id.Short())
		}
	}
	// The client keeps writing to its box items; each sync is one round
	// trip.
	for i := range 3 {
		c := set(t, p.cli, "box-mine000000001", "count", item.Int(int64(i)))
		st := syncOnce(t, s, p.cli)
		if st.Rounds != 1 || st.CommitsSent != 1 || !p.srv.Has(c.ID()) {
			t.Fatalf("box write %d: %+v, want one round trip sending it", i, st)
		}
	}
	in, _ := inView(t, p.policy, p.srv)
	holdsExactly(t, p.cli, in)
	for _, k := range p.cli.Keys(true) {
		if strings.HasPrefix(k, "box-other") {
			t.Fatalf("the client received %s, another writer's", k)
		}
	}
}

// TestLostReadHiddenNamesOnlySentIds: after the client loses read access
// to an item, its commits of it come back as hidden, only ever naming
// ids the client sent; it converges, and OnHidden hears of them.
func TestLostReadHiddenNamesOnlySentIds(t *testing.T) {
	p := newRestrictedPair(t, readAll)
	writePubSec(t, p.srv, 5)
	var mu sync.Mutex
	heard := map[commit.ID]bool{}
	rc := &recorder{s: p.resp}
	s := newSyncer(t, rc, &syncproto.SyncerOptions{OnHidden: func(path string, ids []commit.ID) {
		mu.Lock()
		defer mu.Unlock()
		if path != testPath {
			t.Errorf("OnHidden for %s", path)
		}
		for _, id := range ids {
			heard[id] = true
		}
	}})
	syncOnce(t, s, p.cli)
	requireSame(t, p.srv, p.cli)

	p.policy.setRead(prefixed("pub"))
	set(t, p.srv, "sec000000000", "title", item.String("after the change"))
	set(t, p.srv, "pub000000000", "title", item.String("after the change"))
	rc.reqs, rc.resps = nil, nil
	st := syncOnce(t, s, p.cli)
	_, out := inView(t, p.policy, p.srv)
	for i := range rc.reqs {
		checkNoLeak(t, rc.reqs[i], rc.resps[i], out)
	}
	var want []commit.ID // the client's commits of the sec items
	for _, id := range p.cli.IDs() {
		if out[id] {
			want = append(want, id)
		}
	}
	if len(st.Hidden) != 1 || st.Hidden[0].Path != testPath {
		t.Fatalf("hidden %+v, want the sec items' commits", st.Hidden)
	}
	got := st.Hidden[0].IDs
	slices.SortFunc(got, commit.CompareIDs)
	slices.SortFunc(want, commit.CompareIDs)
	if !slices.Equal(got, want) || len(heard) != len(want) {
		t.Fatalf("hidden %d ids, OnHidden heard %d, want the client's %d commits outside the view", len(got), len(heard), len(want))
	}
	if st.Rounds > 4 { // 3, or 4 if a false positive hid one
		t.Fatalf("%d round trips to converge after losing read access", st.Rounds)
	}
	t.Logf("after losing read access: %+v", st)
}

// FuzzHiddenOnlySentIDs: whatever a request carries (commits in and out
// of the view, commits the server lacks, garbage, ids asked for, resume
// points, filters), no response names an id outside the view that the
// request did not carry, and Hidden names only commits it carried.
func FuzzHiddenOnlySentIDs(f *testing.F) {
	p := newRestrictedPair(f, prefixed("pub"))
	writePubSec(f, p.srv, 6)
	other := openPeer(f, 2) // commits the server lacks, in and out of view
	writePubSec(f, other, 2)
	srvCommits, _ := p.srv.CommitsSince(0)
	otherCommits, _ := other.CommitsSince(0)
	pool := append(slices.Clone(srvCommits), otherCommits...)
	f.Add([]byte{0, 1, 2, 3, 200, 201, 17})
	f.Add([]byte{9, 10, 11, 12, 130, 131, 250, 64})
	f.Add([]byte{255, 254, 253, 100, 101})
	f.Add([]byte{134, 135, 136, 137, 138, 139, 6, 7, 8, 140, 200}) // asks for ids outside the view
	f.Fuzz(func(t *testing.T, b []byte) {
		q := syncproto.RepoRequest{Path: testPath}
		for i, x := range b {
			c := pool[int(x)%len(pool)]
			switch {
			case x < 128:
				q.Commits = append(q.Commits, c.Encode())
			case x < 192:
				q.Missing = append(q.Missing, c.ID())
			case x < 224:
				q.Count += uint64(x)
				q.Digest[i%32] ^= x
			case x < 240:
				flt := syncproto.NewFilter(uint64(len(b)), 0.1)
				for _, y := range b[i:] {
					flt.Add(pool[int(y)%len(pool)].ID())
				}
				q.Filter = flt
			case x < 250:
				q.Resume = &syncproto.Point{Epoch: uint64(x) * 0x9e3779b97f4a7c15, Seq: uint64(i)}
			default:
				q.Commits = append(q.Commits, append(c.Encode()[:len(c.Encode())/2:len(c.Encode())/2], x))
			}
		}
		if len(q.Missing) > syncproto.MaxMissing {
			q.Missing = q.Missing[:syncproto.MaxMissing]
		}
		req := &syncproto.Request{Repos: []syncproto.RepoRequest{q}}
		resp, err := p.resp.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		_, out := inView(t, p.policy, p.srv)
		checkNoLeak(t, req, resp, out)
	})
}

// TestGainedReadSendsFullHistory: an item that enters the view, by a rule
// change or by a change of its value, reaches the client with its whole
// history; by a value change, in the one round trip of a resumed sync.
func TestGainedReadSendsFullHistory(t *testing.T) {
	t.Run("rule", func(t *testing.T) {
		p := newRestrictedPair(t, prefixed("pub"))
		writePubSec(t, p.srv, 5)
		s := newSyncer(t, syncproto.Loopback(p.resp), nil)
		syncOnce(t, s, p.cli)
		p.policy.setRead(readAll)
		syncOnce(t, s, p.cli)
		requireSame(t, p.srv, p.cli)
	})
	t.Run("value", func(t *testing.T) {
		p := newRestrictedPair(t, shared)
		set(t, p.srv, "y", "shared", item.Bool(true))
		for i := range 5 {
			set(t, p.srv, "x", "n", item.Int(int64(i)))
			set(t, p.srv, "y", "n", item.Int(int64(i)))
		}
		s := newSyncer(t, syncproto.Loopback(p.resp), nil)
		syncOnce(t, s, p.cli)
		if _, _, ok := p.cli.Get("x"); ok {
			t.Fatal("the client received x before it was shared")
		}
		set(t, p.srv, "x", "shared", item.Bool(true))
		st := syncOnce(t, s, p.cli)
		requireSame(t, p.srv, p.cli)
		if st.Rounds != 1 || st.CommitsReceived != 6 {
			t.Fatalf("%+v, want x's 6 commits in one round trip", st)
		}
	})
}

// TestNoticesOnlyForReadableChanges: a view's notice stays the same while
// only commits outside it are written, and moves forward (same epoch,
// larger seq) with one in it; a requester who may read nothing gets none.
func TestNoticesOnlyForReadableChanges(t *testing.T) {
	p := newRestrictedPair(t, evenCount)
	writeItems(t, p.srv, "k", 10, 10)
	ctx := context.Background()
	notice := func() syncproto.Notice {
		t.Helper()
		n, err := p.resp.Notice(ctx, testPath, p.srv)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := notice()
	set(t, p.srv, "k000000001", "title", item.String("odd: unreadable"))
	set(t, p.srv, "new", "count", item.Int(7))
	if n := notice(); n != n0 {
		t.Fatalf("notice moved from %+v to %+v with unreadable writes", n0, n)
	}
	set(t, p.srv, "k000000002", "title", item.String("even: readable"))
	n1 := notice()
	if n1.Epoch != n0.Epoch || n1.Seq <= n0.Seq {
		t.Fatalf("notice %+v after a readable write, from %+v", n1, n0)
	}
	// The sync ends at the notice's position: a client that got it has
	// nothing to fetch.
	resumes := &syncproto.MemResumes{}
	syncOnce(t, newSyncer(t, syncproto.Loopback(p.resp), &syncproto.SyncerOptions{Resumes: resumes}), p.cli)
	if r, _ := resumes.LoadResume(testPath); r.ServerEpoch != n1.Epoch || r.ServerSeq != n1.Seq {
		t.Fatalf("sync ended at (%x, %d), the notice said (%x, %d)", r.ServerEpoch, r.ServerSeq, n1.Epoch, n1.Seq)
	}
	// An item leaving the view changes it too.
	set(t, p.srv, "k000000002", "count", item.Int(3))
	if n := notice(); n.Seq <= n1.Seq {
		t.Fatalf("notice %+v after an item left the view, from %+v", n, n1)
	}
	p.policy.mu.Lock()
	p.policy.nothing[testPath] = true
	p.policy.mu.Unlock()
	if _, err := p.resp.Notice(ctx, testPath, p.srv); !errors.Is(err, syncproto.ErrUnknownRepo) {
		t.Fatalf("notice for a repository read nothing of: %v, want ErrUnknownRepo", err)
	}
}

// TestRestrictedResumeOneRoundTrip: resuming a restricted view takes one
// round trip when nothing changed, when a commit in view was added on
// either side, and when only commits outside it were.
func TestRestrictedResumeOneRoundTrip(t *testing.T) {
	p := newRestrictedPair(t, prefixed("pub"))
	writePubSec(t, p.srv, 10)
	s := newSyncer(t, syncproto.Loopback(p.resp), nil)
	syncOnce(t, s, p.cli)
	steps := []struct {
		name           string
		write          func()
		sent, received int
	}{
		{"nothing", func() {}, 0, 0},
		{"server, in view", func() { set(t, p.srv, "pub000000003", "count", item.Int(-1)) }, 0, 1},
		{"server, outside", func() { set(t, p.srv, "sec000000003", "count", item.Int(-1)) }, 0, 0},
		{"client, in view", func() { set(t, p.cli, "pub000000004", "count", item.Int(-2)) }, 1, 0},
		{"server, new item in view", func() { set(t, p.srv, "pub-new", "count", item.Int(1)) }, 0, 1},
	}
	for _, step := range steps {
		step.write()
		st := syncOnce(t, s, p.cli)
		if st.Rounds != 1 || st.CommitsSent != step.sent || st.CommitsReceived != step.received {
			t.Fatalf("%s: %+v, want one round trip, %d sent, %d received", step.name, st, step.sent, step.received)
		}
	}
	in, _ := inView(t, p.policy, p.srv)
	holdsExactly(t, p.cli, in)
}

// TestAdmitCommitSeesBeforeAfter: the Policy's AdmitCommit sees each
// complete non-merge commit with its item's value before and after it,
// and what it refuses is reported and not stored; a panic in it reaches
// the caller and leaves the repository usable. A Repo without
// ReceiveChecked is served without it.
func TestAdmitCommitSeesBeforeAfter(t *testing.T) {
	p := newRestrictedPair(t, readAll)
	var asked int
	p.policy.admit = func(c *commit.Commit, before, after item.Item) error {
		asked++
		was, had := before.Get("owner")
		now, _ := after.Get("owner")
		if had && was.Str() != now.Str() {
			return fmt.Errorf("owner of %s may not change", c.Key())
		}
		return nil
	}
	s := newSyncer(t, syncproto.Loopback(p.resp), nil)
	set(t, p.cli, "doc", "owner", item.String("alice"))
	set(t, p.cli, "doc", "title", item.String("draft"))
	syncOnce(t, s, p.cli)
	if asked != 2 {
		t.Fatalf("AdmitCommit asked %d times, want 2", asked)
	}
	bad := set(t, p.cli, "doc", "owner", item.String("mallory"))
	st, _ := s.Sync(context.Background(), syncproto.Local{Path: testPath, Repo: p.cli})
	if len(st.Rejected) != 1 || st.Rejected[0].ID != bad.ID() || !strings.Contains(st.Rejected[0].Reason, "owner of doc may not change") {
		t.Fatalf("rejected %+v, want the owner change", st.Rejected)
	}
	if p.srv.Has(bad.ID()) {
		t.Fatal("the server stored a commit AdmitCommit refused")
	}

	// A panic in AdmitCommit is raised to the caller; the repository goes
	// on.
	p.policy.admit = func(*commit.Commit, item.Item, item.Item) error { panic("rule exploded") }
	cli2 := openPeer(t, 3)
	set(t, cli2, "other", "n", item.Int(1))
	func() {
		defer func() {
			if r := recover(); r != "rule exploded" {
				t.Fatalf("recovered %v, want the policy's panic", r)
			}
		}()
		newSyncer(t, syncproto.Loopback(p.resp), nil).Sync(context.Background(), syncproto.Local{Path: testPath, Repo: cli2})
	}()
	p.policy.admit = nil
	syncOnce(t, newSyncer(t, syncproto.Loopback(p.resp), nil), cli2)
	if _, _, ok := p.srv.Get("other"); !ok {
		t.Fatal("after a panic the repository no longer stores commits")
	}

	// A Repo without ReceiveChecked: AdmitCommit is not asked.
	asked = 0
	p.policy.admit = func(*commit.Commit, item.Item, item.Item) error { asked++; return errors.New("no") }
	plain, err := syncproto.NewResponder(single(testPath, &plainRepo{p.srv}), &syncproto.ResponderOptions{Policy: p.policy})
	if err != nil {
		t.Fatal(err)
	}
	set(t, cli2, "other", "n", item.Int(2))
	syncOnce(t, newSyncer(t, syncproto.Loopback(plain), nil), cli2)
	if asked != 0 {
		t.Fatalf("AdmitCommit asked %d times of a Repo without ReceiveChecked", asked)
	}
}

// plainRepo offers only the methods of syncproto.Repo.
type plainRepo struct{ r *repo.Repo }

func (p *plainRepo) Epoch() uint64 { return p.r.Epoch() }
func (p *plainRepo) CommitsSince(seq uint64) ([]*commit.Commit, uint64) {
	return p.r.CommitsSince(seq)
}
func (p *plainRepo) Commit(id commit.ID) (*commit.Commit, bool) { return p.r.Commit(id) }
func (p *plainRepo) Missing() []commit.ID                       { return p.r.Missing() }
func (p *plainRepo) Get(key string) (item.Item, commit.Schema, bool) {
	return p.r.Get(key)
}
func (p *plainRepo) Receive(encs [][]byte) ([]commit.ID, []repo.Rejection, error) {
	return p.r.Receive(encs)
}
