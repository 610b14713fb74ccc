package raftstore_test

// Crash recovery: a workload is cut at every mutating filesystem operation
// (vfs.MemFS.FailAfter), the machine loses power (MemFS.Crash and
// CrashWith, keeping none, a torn prefix, or a random choice of the
// unsynced pages, sizes and directory entries), and the store is opened
// again. Every acknowledged write must survive, and the one in flight must
// be wholly there or wholly absent (each batch here fits in one frame).

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/vfs"
)

// crashState is what a store holds.
type crashState struct {
	logs []*raft.Log
	kv   map[string][]byte
}

func (st crashState) String() string { return fmt.Sprintf("logs %s, kv %q", indexes(st.logs), st.kv) }

// crashOp is one call of the workload and its effect on the state.
type crashOp struct {
	name  string
	do    func(*raftstore.Store) error
	apply func(crashState) crashState
}

func opStore(logs ...*raft.Log) crashOp {
	return crashOp{fmt.Sprintf("StoreLogs %d-%d", logs[0].Index, logs[len(logs)-1].Index),
		func(s *raftstore.Store) error { return s.StoreLogs(logs) },
		func(st crashState) crashState {
			st.logs = append(slices.Clone(st.logs), logs...)
			return st
		}}
}

func opDelete(min, max uint64) crashOp {
	return crashOp{fmt.Sprintf("DeleteRange %d-%d", min, max),
		func(s *raftstore.Store) error { return s.DeleteRange(min, max) },
		func(st crashState) crashState {
			st.logs = slices.DeleteFunc(slices.Clone(st.logs), func(l *raft.Log) bool { return l.Index >= min && l.Index <= max })
			return st
		}}
}

func opSet(key, val string) crashOp {
	return crashOp{"Set " + key,
		func(s *raftstore.Store) error { return s.Set([]byte(key), []byte(val)) },
		func(st crashState) crashState {
			st.kv = maps.Clone(st.kv)
			st.kv[key] = []byte(val)
			return st
		}}
}

// sized returns entries lo to hi with n bytes of data each.
func sized(lo, hi uint64, n int) []*raft.Log {
	ls := entries(lo, hi)
	for _, l := range ls {
		l.Data = bytes.Repeat([]byte{byte(l.Index)}, n)
	}
	return ls
}

// crashWorkload appends small and page-spanning batches, sets stable keys,
// and deletes a prefix and a suffix, then stores over the suffix.
func crashWorkload() []crashOp {
	return []crashOp{
		opStore(entries(1, 3)...),
		opSet("CurrentTerm", "\x00\x00\x00\x00\x00\x00\x00\x01"),
		opStore(sized(4, 4, 5000)...),
		opStore(sized(5, 20, 700)...),
		opSet("LastVoteCand", "node-2"),
		opDelete(1, 5),
		opStore(entries(21, 25)...),
		opDelete(23, 25),
		opStore(sized(23, 30, 300)...),
		opSet("CurrentTerm", "\x00\x00\x00\x00\x00\x00\x00\x02"),
	}
}

// crashPlans returns the crashes tried at each point.
func crashPlans(n int) map[string]func(*vfs.MemFS) *vfs.MemFS {
	plans := map[string]func(*vfs.MemFS) *vfs.MemFS{
		"synced only": func(m *vfs.MemFS) *vfs.MemFS { return m.Crash(nil) },
		"torn in half": func(m *vfs.MemFS) *vfs.MemFS {
			return m.Crash(func(_ string, b []byte) int { return len(b) / 2 })
		},
		"all appended": func(m *vfs.MemFS) *vfs.MemFS {
			return m.Crash(func(_ string, b []byte) int { return len(b) })
		},
	}
	for seed := range uint64(6) {
		plans[fmt.Sprintf("random %d/%d", n, seed)] = func(m *vfs.MemFS) *vfs.MemFS {
			return m.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, uint64(n)))))
		}
	}
	return plans
}

func TestCrash(t *testing.T) {
	ops := crashWorkload()
	for n := 0; ; n++ {
		fsys := vfs.NewMem()
		fsys.FailAfter(n)
		acked := crashState{kv: map[string][]byte{}}
		next, inflight := acked, "Open"
		done := false
		if s, err := raftstore.Open(fsys, dir); err == nil {
			done = true
			for _, op := range ops {
				next, inflight = op.apply(acked), op.name
				if err := op.do(s); err != nil {
					done = false
					break
				}
				acked = next
			}
			_ = s.Close()
		}
		for name, crash := range crashPlans(n) {
			t.Run(fmt.Sprintf("fail after %d ops/%s", n, name), func(t *testing.T) {
				checkCrash(t, crash(fsys), acked, next, inflight)
			})
		}
		if done {
			if n < 20 {
				t.Fatalf("the workload took only %d filesystem operations", n)
			}
			return
		}
	}
}

// checkCrash opens the store after a crash and checks that it holds the
// acknowledged state or the state after the operation in flight, and that
// it takes and keeps a write.
func checkCrash(t *testing.T, fsys *vfs.MemFS, acked, next crashState, inflight string) {
	t.Helper()
	s, err := raftstore.Open(fsys, dir)
	if err != nil {
		t.Fatalf("Open after a crash during %s: %v", inflight, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got := readState(t, s, acked, next)
	if !sameState(got, acked) && !sameState(got, next) {
		t.Fatalf("after a crash during %s the store holds\n%v\nwant\n%v\nor\n%v", inflight, got, acked, next)
	}
	last := uint64(0)
	if len(got.logs) > 0 {
		last = got.logs[len(got.logs)-1].Index
	}
	store(t, s, entry(last+1))
	s = reopen(t, s, fsys, dir)
	checkLogs(t, s, append(got.logs, entry(last+1)))
}

// readState reads the logs of s, and the stable keys known to either state.
func readState(t *testing.T, s *raftstore.Store, states ...crashState) crashState {
	t.Helper()
	st := crashState{logs: readAll(t, s), kv: map[string][]byte{}}
	for _, want := range states {
		for k := range want.kv {
			if v, err := s.Get([]byte(k)); err == nil {
				st.kv[k] = v
			}
		}
	}
	return st
}

func sameState(a, b crashState) bool {
	return slices.EqualFunc(a.logs, b.logs, sameLog) && maps.EqualFunc(a.kv, b.kv, bytes.Equal)
}
