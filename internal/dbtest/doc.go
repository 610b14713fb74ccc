// Package dbtest is the test harness shared by goatdb's packages: the test
// flags, the seeds of randomized tests, and helpers that open a repository
// or a database for one test and check it when the test ends, and the
// authorization rules the tests share (OwnerRules).
//
// Only tests import it. It imports package repo and the root package
// goatdb, so it serves external test packages (package x_test) and packages
// that neither imports; white-box tests inside package repo keep their own
// helpers.
//
// # Flags
//
// The package defines the one set of test flags, so a test binary that
// imports it must not define -long, -update or -seed itself (the flag
// package panics on a flag defined twice):
//
//	-long     run the long variants (Long): more seeds, items, crash points
//	-update   rewrite the golden files under testdata/ (Update)
//	-seed N   run randomized tests with seed N only (Seed, Seeds, ClockSeed)
//
// For example go test ./repo -run '^TestConverge$' -seed 3 replays one
// seed; every randomized test logs the command that replays it (LogSeed).
//
// # Invariants
//
//   - Every repository opened by OpenRepo and every database opened by
//     OpenDB or OpenDBIn is checked when the test ends (repo.Repo.Check on
//     each repository, so the log is re-read, every commit re-hashed and
//     every item's leaves and head recomputed) and then closed; each
//     problem fails the test. A repository or database the test closed
//     itself is not checked again: a test that closes one checks it first,
//     with RequireClean or CheckDB. Only OpenRepoUnchecked and
//     OpenDBUnchecked skip the check, for logs a test leaves inconsistent on
//     purpose.
//   - Cleanups run in the reverse order of registration, so whatever a test
//     starts on an opened database after opening it (a server, a syncer) is
//     stopped before the database is checked.
//   - The flags are read only once tests run (after flag parsing); the
//     functions here are safe for concurrent use by parallel tests.
package dbtest
