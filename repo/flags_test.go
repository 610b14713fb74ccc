package repo_test

import "flag"

// long enables the slow variants of the crash, fault and fuzz-style loops:
// go test ./repo -long.
var long = flag.Bool("long", false, "run long tests")

// update rewrites the expected results of golden files under testdata/ from
// the actual ones: go test ./repo -run Golden -update.
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixedSeed runs the randomized tests with this one seed only (0: the usual
// range of seeds), to reproduce a failure: go test ./repo -run Converge -seed N.
var fixedSeed = flag.Uint64("seed", 0, "run the randomized tests with this seed only")
