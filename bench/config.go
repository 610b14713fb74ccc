package main

import "regexp"

// fullN is the size of the big repository in a full run, the size the
// workload's figures are published for.
const fullN = 100_000

// config is what one run measures.
type config struct {
	mode    string         // "quick" or "full"
	items   int            // N, the big repository's size
	samples [4]int         // timed samples per operation, by opKind
	warmups [4]int         // untimed samples first, by opKind
	dir     string         // where the temporary data directory goes
	only    *regexp.Regexp // runs an engine's op if it matches "ENGINE OP"; nil runs all
}

// fullConfig is the default run, about a minute on 2 cores.
func fullConfig() config {
	return config{
		mode:    "full",
		items:   fullN,
		samples: [4]int{kindInstance: 50, kindBig: 11, kindWrite: 200, kindRead: 500},
		warmups: [4]int{kindInstance: 3, kindBig: 2, kindWrite: 10, kindRead: 20},
	}
}

// quickConfig is --quick: a smaller big repository and fewer samples,
// well under a minute on 2 cores.
func quickConfig() config {
	return config{
		mode:    "quick",
		items:   10_000,
		samples: [4]int{kindInstance: 30, kindBig: 11, kindWrite: 50, kindRead: 200},
		warmups: [4]int{kindInstance: 2, kindBig: 1, kindWrite: 5, kindRead: 10},
	}
}

// selected reports whether the run includes op on the engine.
func (c *config) selected(e *engineSpec, o op) bool {
	return c.only == nil || c.only.MatchString(e.id+" "+string(o.id))
}
