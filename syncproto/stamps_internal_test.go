package syncproto

import (
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// stampRepo is a Repo that lists stamps by sequence number (a commit's
// Time is its sequence number here) and records from where each listing
// started.
type stampRepo struct {
	Repo
	ss             []repo.Stamp
	epoch, xs, seq uint64
	from           []uint64
	during         func() // runs inside the next listing, once
}

func (r *stampRepo) Epoch() uint64       { return r.epoch }
func (r *stampRepo) ExcludedSeq() uint64 { return r.xs }
func (r *stampRepo) StampsSince(seq uint64) ([]repo.Stamp, uint64) {
	r.from = append(r.from, seq)
	var out []repo.Stamp
	for _, s := range r.ss {
		if uint64(s.Time) > seq {
			out = append(out, s)
		}
	}
	cur := r.seq
	if f := r.during; f != nil {
		r.during = nil
		f()
	}
	return out, cur
}

// exclude drops commit i, as an exclusion record would.
func (r *stampRepo) exclude(i int) {
	r.ss = slices.Delete(r.ss, i, i+1)
	r.seq++
	r.xs = r.seq
}

func (r *stampRepo) write(n int) {
	for range n {
		var id commit.ID
		r.seq++
		id[0], id[1] = byte(r.seq), byte(r.seq>>8)
		r.ss = append(r.ss, repo.Stamp{ID: id, Key: "k", Time: int64(r.seq)})
	}
}

// TestStampMemo: a sync's memo of its stamps lists from the start once,
// then only what was written since; and from the start again after the
// log is rewritten or its exclusions change, before or while it lists.
func TestStampMemo(t *testing.T) {
	r := &stampRepo{epoch: 1}
	r.write(5)
	var m stampMemo
	check := func(what string, wantFrom uint64) {
		t.Helper()
		r.from = nil
		got := m.all(r)
		if !slices.Equal(got, r.ss) {
			t.Fatalf("%s: %d stamps, want the repository's %d", what, len(got), len(r.ss))
		}
		if len(r.from) == 0 || r.from[0] != wantFrom {
			t.Fatalf("%s: listed from %v, want from %d", what, r.from, wantFrom)
		}
	}
	check("first listing", 0)
	check("unchanged", 5)
	r.write(3)
	check("after writes", 5)

	// Rewritten (compacted): a new epoch, sequence numbers anew.
	r.epoch, r.ss, r.seq = 2, r.ss[:4], 4
	check("new epoch", 0)

	r.exclude(1)
	check("exclusion", 0)

	r.write(2)
	r.during = func() { r.exclude(0) }
	r.from = nil
	if got := m.all(r); !slices.Equal(got, r.ss) || !slices.Equal(r.from, []uint64{5, 0}) {
		t.Fatalf("exclusion while listing: %d stamps (want %d), listed from %v, want [5 0]", len(got), len(r.ss), r.from)
	}

	// A run serves its own repository's listing from the start from the
	// memo, and any other listing as asked.
	u := &run{Local: Local{Repo: r}}
	r.write(1)
	ss, cur := u.stampsSince(r, 0)
	if !slices.Equal(ss, r.ss) || cur != r.seq {
		t.Fatalf("run's listing: %d stamps at %d, want %d at %d", len(ss), cur, len(r.ss), r.seq)
	}
	r.from = nil
	if ss, _ := u.stampsSince(r, 5); !slices.Equal(ss, r.ss[2:]) || !slices.Equal(r.from, []uint64{5}) {
		t.Fatalf("run's listing from 5: %d stamps from %v, want %d from [5]", len(ss), r.from, len(r.ss)-2)
	}
}
