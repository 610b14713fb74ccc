package repo

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// checkReleased fails unless no commit in the graph holds its decoded
// form, every commit from r.encFrom on holds its encoding (unless the
// head index loaded it) and r.encHeld counts them, and every commit
// decodes, from memory or the log, back to the commit written.
func checkReleased(t *testing.T, r *Repo, written map[commit.ID][]byte) {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.entries) != len(written) {
		t.Fatalf("graph holds %d commits, want %d", len(r.entries), len(written))
	}
	held := 0
	for i, n := range r.entries {
		if n.decoded() != nil {
			t.Fatalf("commit %s of %s still holds its decoded form", n.c.id.Short(), n.c.Key())
		}
		switch {
		case i < r.encFrom && n.encoding() != nil:
			t.Fatalf("commit %s before the first held encoding (%d) holds its encoding", n.c.id.Short(), r.encFrom)
		case i >= r.encFrom && n.encoding() == nil && r.indexed == 0:
			t.Fatalf("commit %s holds no encoding, is among the newest, and the graph was replayed", n.c.id.Short())
		case i >= r.encFrom:
			held += len(n.encoding())
		}
		c, err := r.commitOf(n)
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := written[c.ID()]; !ok || !bytes.Equal(c.Encode(), want) {
			t.Fatalf("commit %s decodes to other bytes than were written", c.ID().Short())
		}
	}
	if held != r.encHeld {
		t.Fatalf("the newest commits hold %d bytes of encodings, counted %d", held, r.encHeld)
	}
}

// TestEncodingsBounded: a repository written to for long holds the
// encodings of its newest commits only, within encBudget once they are
// durable; every older commit is read from the log when asked, by
// History, ValueAt, sync and a merge with a peer's branch on an old
// commit, and after a compaction moved them; the encodings dropped are
// those of the oldest commits.
func TestEncodingsBounded(t *testing.T) {
	defer func(b int) { encBudget = b }(encBudget)
	encBudget = 4 << 10
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	schema := commit.Schema{NS: "note", Version: 1}
	for _, d := range []Durability{Sync, Async} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			r, err := Open(filepath.Join(dir, "r.log"), &Options{Key: key, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			written := map[commit.ID][]byte{}
			write := func(round int) {
				t.Helper()
				writeNotes(t, r, 8, round, func(i int) string { return fmt.Sprint("note ", i, " round ", round) }, written)
				if d == Async {
					if err := r.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A peer holds k0 as of round 2: its edit will branch there.
			for round := range 3 {
				write(round)
			}
			peer, err := Open(filepath.Join(dir, "p.log"), &Options{Key: other})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			var encs [][]byte
			for _, info := range r.History("k0") {
				encs = append(encs, info.Commit.Encode())
			}
			if _, rej, err := peer.Receive(encs); err != nil || len(rej) > 0 {
				t.Fatal(err, rej)
			}
			for round := 3; round < 60; round++ {
				write(round)
				r.mu.RLock()
				held, from := r.encHeld, r.encFrom
				r.mu.RUnlock()
				if d == Sync && held > encBudget {
					t.Fatalf("round %d: %d bytes of encodings held, budget %d", round, held, encBudget)
				}
				if round == 59 && from == 0 {
					t.Fatal("no encoding was dropped")
				}
			}
			checkReleased(t, r, written)
			r.mu.RLock()
			if first := r.entries[0]; first.encoding() != nil {
				t.Fatalf("the oldest commit %s still holds its encoding", first.c.id.Short())
			}
			r.mu.RUnlock()

			h := r.History("k5")
			if len(h) != 60 {
				t.Fatalf("history of k5: %d versions, want 60", len(h))
			}
			for _, info := range h {
				v, _, err := r.ValueAt(info.Commit.ID())
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprint("note 5 round ", get(v, "n").Float()); get(v, "title").Str() != want {
					t.Fatalf("value at %s: title %q, want %q", info.Commit.ID().Short(), get(v, "title").Str(), want)
				}
			}
			if cs, _ := r.CommitsSince(0); len(cs) != len(written) {
				t.Fatalf("CommitsSince(0): %d commits, want %d", len(cs), len(written))
			}

			// The peer's edit of k0 as of round 2 merges with round 59:
			// the merge reads their common ancestor from the log.
			pc, err := peer.Write(Update{Key: "k0", Fn: func(cur Current) (item.Item, commit.Schema, error) {
				return cur.Value.With("peer", item.String("edit")), schema, nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if _, rej, err := r.Receive([][]byte{pc[0].Encode()}); err != nil || len(rej) > 0 {
				t.Fatal(err, rej)
			}
			v, _, _ := r.Get("k0")
			if get(v, "peer").Str() != "edit" || get(v, "n").Float() != 59 {
				t.Fatalf("k0 after the merge = %v, want the peer's edit on round 59", v)
			}

			// A compaction moves every record; what is held is counted
			// again, and every commit is still read.
			if _, err := r.Compact(0, nil); err != nil {
				t.Fatal(err)
			}
			write(60)
			r.mu.RLock()
			defer r.mu.RUnlock()
			held := 0
			for _, n := range r.entries[r.encFrom:] {
				held += len(n.encoding())
			}
			if held != r.encHeld {
				t.Fatalf("after a compaction: %d bytes held, counted %d", held, r.encHeld)
			}
			for _, n := range r.entries {
				c, err := r.commitOf(n)
				if err != nil {
					t.Fatal(err)
				}
				if c.ID() != n.c.id {
					t.Fatalf("commit %s reads as %s", n.c.id.Short(), c.ID().Short())
				}
			}
		})
	}
}

func TestHistoryHeldEncoded(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "r.log")
	schema := commit.Schema{NS: "note", Version: 1}
	written := map[commit.ID][]byte{}
	for _, d := range []Durability{Sync, Async} {
		t.Run(d.String(), func(t *testing.T) {
			r, err := Open(path, &Options{Key: key, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			for round := range 4 {
				writeNotes(t, r, 20, round, func(i int) string { return fmt.Sprint("note ", i, " ", round, d) }, written)
			}
			// A commit by another session (stored whole, not without the
			// owner's session) received from a peer.
			peer, err := Open(filepath.Join(t.TempDir(), "p.log"), &Options{Key: other})
			if err != nil {
				t.Fatal(err)
			}
			pc, err := peer.Write(Update{Key: "from-peer-" + d.String(), Fn: func(Current) (item.Item, commit.Schema, error) {
				return item.New(map[string]item.Value{"title": item.String("peer")}), schema, nil
			}})
			peer.Close()
			if err != nil {
				t.Fatal(err)
			}
			if _, rej, err := r.Receive([][]byte{pc[0].Encode()}); err != nil || len(rej) > 0 {
				t.Fatal(err, rej)
			}
			written[pc[0].ID()] = pc[0].Encode()
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			checkReleased(t, r, written)
			if v, _, _ := r.Get("k3"); get(v, "n").Float() != 3 {
				t.Fatalf("k3 = %v, want n 3", v)
			}
			h := r.History("k3")
			if len(h) == 0 || h[len(h)-1].Commit.IsFull() != true {
				t.Fatalf("history of k3: %v", h)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r, err = Open(path, &Options{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			checkReleased(t, r, written)
			for _, info := range r.History("k7") {
				v, _, err := r.ValueAt(info.Commit.ID())
				if err != nil {
					t.Fatal(err)
				}
				if title := get(v, "title").Str(); title == "" {
					t.Fatalf("value at %s has no title", info.Commit.ID().Short())
				}
			}
		})
	}
}

// writeNotes writes the items k0 to k(n-1) in one batch, titled by title
// and numbered round, and records each commit's encoding in written.
func writeNotes(t *testing.T, r *Repo, n, round int, title func(int) string, written map[commit.ID][]byte) {
	t.Helper()
	schema := commit.Schema{NS: "note", Version: 1}
	var ups []Update
	for i := range n {
		v := item.New(map[string]item.Value{"title": item.String(title(i)), "n": item.Number(float64(round))})
		ups = append(ups, Update{Key: fmt.Sprint("k", i), Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
	}
	cs, err := r.Write(ups...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		written[c.ID()] = c.Encode()
	}
}

func get(v item.Item, name string) item.Value {
	x, _ := v.Get(name)
	return x
}

// TestWritesDecodeNothing: updating an item, across the full snapshots
// that start its delta chains, and under either durability, decodes no
// commit again: the head's value and its delta base's are held.
func TestWritesDecodeNothing(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	schema := commit.Schema{NS: "note", Version: 1}
	for _, d := range []Durability{Sync, Async} {
		t.Run(d.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.log")
			r, err := Open(path, &Options{Key: key, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			write := func(i int) {
				t.Helper()
				v := item.New(map[string]item.Value{"title": item.String("a long enough title to make deltas pay"),
					"body": item.String("and a body that does not change between the writes at all"), "n": item.Number(float64(i))})
				if _, err := r.Write(Update{Key: "k", Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				write(i)
			}
			r.Close()
			if r, err = Open(path, &Options{Key: key, Durability: d}); err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := r.decodes.Load()
			for i := 3; i < 3*maxChain; i++ {
				write(i)
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			// The open released the head's delta base (or, from the head
			// index, never read it): the first write reads it, to build
			// its delta and again to set the new head.
			if n := r.decodes.Load() - before; n > 2 {
				t.Fatalf("%d writes decoded %d commits, want at most 2 (the delta base the open released)", 3*maxChain-3, n)
			}
			deltas := 0
			for _, info := range r.History("k") {
				if !info.Commit.IsFull() {
					deltas++
				}
			}
			if deltas < 2*maxChain {
				t.Fatalf("%d deltas in the history, want the writes to be deltas", deltas)
			}
			if v, _, _ := r.Get("k"); get(v, "n").Float() != float64(3*maxChain-1) {
				t.Fatalf("value %v", v)
			}
		})
	}
}

// TestReplayDropsDecodedHistory: a replay that holds more decoded commits
// than replayHeld drops those that are no longer leaves as it goes, and
// opens to the same graph and values as one that holds them all.
func TestReplayDropsDecodedHistory(t *testing.T) {
	defer func(n int, m int) { replayHeld, indexMinCommits = n, m }(replayHeld, indexMinCommits)
	indexMinCommits = 1 << 30 // replay every time
	_, key, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(t.TempDir(), "r.log")
	r, err := Open(path, &Options{Key: key, Durability: Async})
	if err != nil {
		t.Fatal(err)
	}
	schema := commit.Schema{NS: "note", Version: 1}
	for round := range 30 {
		var ups []Update
		for i := range 40 {
			v := item.New(map[string]item.Value{"n": item.Number(float64(round)), "t": item.String(fmt.Sprint("item ", i, " round ", round))})
			ups = append(ups, Update{Key: fmt.Sprint("k", i), Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
		}
		if _, err := r.Write(ups...); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	open := func(held int) *Repo {
		t.Helper()
		replayHeld = held
		r, err := Open(path, &Options{Key: key, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	all, few := open(1<<20), open(16)
	defer all.Close()
	defer few.Close()
	for i := range 40 {
		k := fmt.Sprint("k", i)
		a, _, _ := all.Get(k)
		b, _, ok := few.Get(k)
		if !ok || !item.ItemsEqual(a, b) || get(b, "n").Float() != 29 {
			t.Fatalf("%s: %v replayed holding every commit, %v holding few", k, a, b)
		}
		ha, hb := all.History(k), few.History(k)
		if len(ha) != 30 || len(hb) != 30 {
			t.Fatalf("%s: %d and %d commits, want 30", k, len(ha), len(hb))
		}
		for j := range ha {
			if string(ha[j].Commit.Encode()) != string(hb[j].Commit.Encode()) {
				t.Fatalf("%s: commit %d differs", k, j)
			}
		}
	}
	if ps := few.Check(); len(ps) > 0 {
		t.Fatalf("check: %v", ps)
	}
}

// acceptAll is a Validator that accepts every value.
type acceptAll struct{}

func (acceptAll) Validate(item.Item, commit.Schema) error { return nil }

// TestReceiveDecodesBaseOnce: a repository that opened its log (from the
// head index, or by replay) and receives a peer's deltas on its items,
// checked by a Validator and an Admit, reads each item's delta base from
// the log at most once, for the first delta, and decodes nothing for the
// next ones: the head's value and the base's are held, where reading a
// commit may mean decompressing a whole group record.
func TestReceiveDecodesBaseOnce(t *testing.T) {
	ixSetup(t)
	_, key, _ := ed25519.GenerateKey(nil)
	_, peerKey, _ := ed25519.GenerateKey(nil)
	schema := commit.Schema{NS: "note", Version: 1}
	const items = 3
	update := func(r *Repo, round int) [][]byte {
		t.Helper()
		var ups []Update
		for i := range items {
			v := item.New(map[string]item.Value{"title": item.String("a long enough title to make deltas pay"),
				"body": item.String("and a body that does not change between the writes at all"), "n": item.Number(float64(round))})
			ups = append(ups, Update{Key: fmt.Sprint("k", i), Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
		}
		cs, err := r.Write(ups...)
		if err != nil {
			t.Fatal(err)
		}
		var encs [][]byte
		for _, c := range cs {
			encs = append(encs, c.Encode())
		}
		return encs
	}
	for _, viaIndex := range []bool{true, false} {
		t.Run(fmt.Sprintf("index=%v", viaIndex), func(t *testing.T) {
			dir := t.TempDir()
			opts := &Options{Key: key, Durability: Sync, Validator: acceptAll{}}
			a, err := Open(filepath.Join(dir, "a.log"), opts)
			if err != nil {
				t.Fatal(err)
			}
			var all [][]byte
			for round := range 3 {
				all = append(all, update(a, round)...)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := Open(filepath.Join(dir, "b.log"), &Options{Key: peerKey, Durability: Sync})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, rej, err := b.Receive(all); err != nil || len(rej) > 0 {
				t.Fatal(rej, err)
			}
			if !viaIndex {
				if err := os.Remove(filepath.Join(dir, "a.log") + IndexSuffix); err != nil {
					t.Fatal(err)
				}
			}
			if a, err = Open(filepath.Join(dir, "a.log"), opts); err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			admitted := 0
			admit := func(c *commit.Commit, before, after item.Item) error {
				if get(before, "n").Float()+1 != get(after, "n").Float() {
					return fmt.Errorf("before %v, after %v", before, after)
				}
				admitted++
				return nil
			}
			for round := 3; round < 6; round++ {
				encs := update(b, round)
				before := a.decodes.Load()
				stored, rej, err := a.ReceiveChecked(encs, admit)
				if err != nil || len(rej) > 0 || len(stored) != items {
					t.Fatalf("round %d: stored %d, rejected %v, err %v", round, len(stored), rej, err)
				}
				want := int64(0)
				if round == 3 && viaIndex {
					want = items // each item's delta base, which the index does not hold
				}
				if n := a.decodes.Load() - before; n > want {
					t.Fatalf("round %d: receiving %d deltas decoded %d commits, want at most %d", round, items, n, want)
				}
				for _, c := range encs {
					dc, _ := commit.Decode(c)
					if dc.IsFull() {
						t.Fatalf("round %d: %s is a full snapshot, want a delta", round, dc.ID().Short())
					}
				}
				if v, _, _ := a.Get("k0"); get(v, "n").Float() != float64(round) {
					t.Fatalf("round %d: value %v", round, v)
				}
			}
			if admitted != 3*items {
				t.Fatalf("admitted %d commits, want %d", admitted, 3*items)
			}
		})
	}
}
