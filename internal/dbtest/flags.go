package dbtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	longFlag   = flag.Bool("long", false, "run the long variants of the tests")
	updateFlag = flag.Bool("update", false, "rewrite the golden files under testdata/ from the actual results")
	seedFlag   = flag.Uint64("seed", 0, "run the randomized tests with this seed only (0: their usual seeds)")
)

// Long reports whether -long was given: run the long variants.
func Long() bool { return *longFlag }

// Update reports whether -update was given: golden tests rewrite their
// files under testdata/ from the actual results instead of comparing.
func Update() bool { return *updateFlag }

// Seed returns the seed given with -seed, or 0 when there is none.
func Seed() uint64 { return *seedFlag }

// Seeds returns the seeds a randomized test runs: the -seed alone if given,
// else 1..normal, or 1..long under -long.
func Seeds(normal, long int) []uint64 {
	if s := Seed(); s != 0 {
		return []uint64{s}
	}
	n := normal
	if Long() {
		n = long
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// ClockSeed returns the seed of a test that explores new cases on every
// run: the -seed if given, else one from the clock. It logs the seed and
// the command that replays it.
func ClockSeed(t testing.TB) uint64 {
	t.Helper()
	seed := Seed()
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	LogSeed(t, seed)
	return seed
}

// LogSeed logs seed and the command that replays it.
func LogSeed(t testing.TB, seed uint64) {
	t.Helper()
	t.Logf("seed %d (replay: %s)", seed, Replay(t, seed))
}

// Replay returns the command that runs t's top-level test with seed only,
// such as go test ./repo -run '^TestConverge$' -seed 3.
func Replay(t testing.TB, seed uint64) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return fmt.Sprintf("go test %s -run '^%s$' -seed %d", packageDir(), name, seed)
}

// packageDir returns the directory of the package under test relative to
// its module's root, as go test takes it (./repo, or . for the root),
// found from the working directory, which go test sets to the package's.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for root := wd; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		up := filepath.Dir(root)
		if up == root {
			return "."
		}
		root = up
	}
}
