package main

import (
	"fmt"
	"regexp"
)

// fullN is the size of the big repository in a full run, the size the
// workload's figures are published for.
const fullN = 100_000

// The sync section's published sizes: commits in sync, and in the big
// repository of "100,000 in sync + 1 new".
const (
	fullSyncN    = 10_000
	fullSyncBigN = 100_000
)

// config is what one run measures.
type config struct {
	mode    string         // "quick" or "full"
	items   int            // N, the big repository's size
	samples [numKinds]int  // timed samples per operation, by opKind
	warmups [numKinds]int  // untimed samples first, by opKind
	dir     string         // where the temporary data directory goes
	only    *regexp.Regexp // runs an engine's op if it matches "ENGINE OP"; nil runs all
	sync    syncConfig
	http    httpGetConfig
	cluster clusterConfig
}

// syncConfig is what the sync section measures.
type syncConfig struct {
	on      bool
	n       int          // commits in sync in the wire scenarios
	bigN    int          // commits in sync in "BigN in sync + 1 new"
	newN    int          // new commits per writing side
	reps    int          // measured syncs per repeated scenario
	arrival []arrivalRun // write-to-arrival runs
	// eventCommits lets the server's change events carry commits
	// (server.Options.EventCommitBytes at its default); false turns them
	// off, to measure arrival by sync alone.
	eventCommits bool
	// firstContact runs the first-contact part (bench/firstcontact.go) at
	// n and bigN commits.
	firstContact bool
}

// arrivalRun is one write-to-arrival measurement.
type arrivalRun struct {
	receivers int // clients receiving, B included
	writes    int // measured writes
}

// part is the run's name for --only, after "sync ".
func (a arrivalRun) part() string { return fmt.Sprintf("arrival-%d", a.receivers) }

// The sync section's parts besides the arrival runs.
const syncWirePart = "wire"

// fullConfig is the default run, a few minutes on 2 cores: about a
// minute for the engines and 30–45 s more for the compaction (which
// builds its databases, then reloads goatdb's 500,000 commits before
// each of its 3 samples), one to five for sync.
func fullConfig() config {
	return config{
		mode:    "full",
		items:   fullN,
		samples: [numKinds]int{kindInstance: 50, kindBig: 11, kindWrite: 200, kindRead: 500, kindCompact: 3},
		// A compaction sample reloads goatdb's 500,000 commits first
		// (about a second): no warm-up, which would add a quarter.
		warmups: [numKinds]int{kindInstance: 3, kindBig: 2, kindWrite: 10, kindRead: 20, kindCompact: 0},
		// With 500 receivers a write takes 50–250 ms until all of them
		// hold it: 1000 writes take one to four minutes.
		sync: syncConfig{on: true, n: fullSyncN, bigN: fullSyncBigN, newN: 10, reps: 50, firstContact: true,
			arrival: []arrivalRun{{receivers: 1, writes: 1000}, {receivers: 500, writes: 1000}}},
		// About 20 s: 3 servers × 8 rounds of 20,000 requests.
		http:    httpGetConfig{on: true, requests: 20_000, samples: 7, warmups: 1, warm: 250, conns: 4},
		cluster: clusterConfig{on: true, writes: 1000, warmups: 20},
	}
}

// quickConfig is --quick: a smaller big repository and fewer samples,
// well under a minute on 2 cores.
func quickConfig() config {
	return config{
		mode:    "quick",
		items:   10_000,
		samples: [numKinds]int{kindInstance: 30, kindBig: 11, kindWrite: 50, kindRead: 200, kindCompact: 5},
		warmups: [numKinds]int{kindInstance: 2, kindBig: 1, kindWrite: 5, kindRead: 10, kindCompact: 1},
		sync: syncConfig{on: true, n: 2_000, bigN: 20_000, newN: 10, reps: 50, firstContact: true,
			arrival: []arrivalRun{{receivers: 1, writes: 100}, {receivers: 50, writes: 100}}},
		http:    httpGetConfig{on: true, requests: 4_000, samples: 3, warmups: 1, warm: 100, conns: 4},
		cluster: clusterConfig{on: true, writes: 50, warmups: 5},
	}
}

// selected reports whether the run includes op on the engine.
func (c *config) selected(e *engineSpec, o op) bool {
	return c.only == nil || c.only.MatchString(e.id+" "+string(o.id))
}

// syncSelected reports whether the run includes the sync section's part
// ("wire", "arrival-500"), which --only matches as "sync PART".
func (c *config) syncSelected(part string) bool {
	return c.sync.on && (c.only == nil || c.only.MatchString("sync "+part))
}
