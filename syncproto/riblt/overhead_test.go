package riblt_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
)

// overheadCase is one difference size and its trial counts (normal,
// -long).
var overheadCases = []struct {
	d            int
	trials, long int
}{
	{1, 400, 10000}, {2, 400, 10000}, {3, 400, 10000}, {5, 400, 10000},
	{10, 400, 10000}, {20, 400, 10000}, {50, 400, 10000}, {100, 200, 2000},
	{200, 100, 1000}, {500, 40, 400}, {1000, 20, 200},
}

// TestOverhead pins the average number of symbols a difference of d
// elements needs, over fixed seeds, in testdata/overhead.golden (or
// overhead_long.golden under -long); -update rewrites it. Trial t of
// difference d reconciles two sets drawn from seed d<<32|t (newSets): no
// common elements, since they cancel exactly, ⌈d/2⌉ remote-only and ⌊d/2⌋
// local-only.
func TestOverhead(t *testing.T) {
	name := "overhead.golden"
	if dbtest.Long() {
		name = "overhead_long.golden"
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# symbols needed to decode a difference of d elements\n")
	fmt.Fprintf(&out, "# d trials seeds avg-symbols-per-difference worst-trial-symbols\n")
	for _, c := range overheadCases {
		trials := c.trials
		if dbtest.Long() {
			trials = c.long
		}
		total, worst := 0, 0
		for trial := range trials {
			seed := uint64(c.d)<<32 | uint64(trial)
			s := newSets(seed, 0, c.d-c.d/2, c.d/2)
			dec, n := s.reconcile(t)
			if len(dec.RemoteOnly())+len(dec.LocalOnly()) != c.d {
				t.Fatalf("d=%d seed %#x: decoded %d+%d elements", c.d, seed, len(dec.RemoteOnly()), len(dec.LocalOnly()))
			}
			total += n
			worst = max(worst, n)
		}
		avg := float64(total) / float64(trials*c.d)
		fmt.Fprintf(&out, "%d %d %#x..%#x %.3f %d\n", c.d, trials, uint64(c.d)<<32, uint64(c.d)<<32|uint64(trials-1), avg, worst)
		switch {
		case c.d == 1 && avg != 1:
			t.Errorf("d=1: %.3f symbols, want exactly 1", avg)
		case c.d >= 10 && (avg < 1 || avg > 1.8):
			t.Errorf("d=%d: %.3f symbols per difference, want within [1.0, 1.8]", c.d, avg)
		case c.d == 1000 && avg > 1.45:
			t.Errorf("d=1000: %.3f symbols per difference, want at most 1.45", avg)
		}
	}
	path := filepath.Join("testdata", name)
	if dbtest.Update() {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("symbol counts differ from %s (-update to accept):\n got:\n%s\nwant:\n%s", path, out.Bytes(), want)
	}
}
