package main

import (
	"fmt"

	"github.com/goatdb/goatdb"
)

// engine runs the workload's operations on one database configuration.
// Its methods are called from one goroutine.
type engine interface {
	// setup creates the engine's data in dir, an empty directory: the
	// main instance, open until close, with the smallN-item repository
	// and updateN items for updates; and, if big, an instance of n items
	// on disk, closed. dir's parent is the run's directory, where engines
	// may share files they would build alike (see sharedSource).
	setup(dir string, n int, big bool) error
	// task binds an operation to the engine, doing its untimed setup.
	task(op opID) (task, error)
	// close closes what the engine holds open.
	close() error
}

// task is one operation bound to one engine. The runner calls before, run
// (timed) and after for every sample, with k counting the calls of run so
// far so that each can pick fresh names and items.
type task struct {
	before func(k int) error // untimed; nil for nothing
	run    func(k int) error // the timed work: one operation
	after  func(k int) error // untimed; nil for nothing
	// batch says run may be repeated within one timed sample, for
	// operations too short to time one by one. Such a task has no before
	// or after.
	batch bool
	// gc asks for a garbage collection before each sample (untimed), so
	// that a slow operation does not pay for the garbage of the one
	// before it.
	gc bool
	// compacted, for a compaction, is what the sample's compaction did,
	// which run or after sets; the runner keeps it for timed samples.
	compacted *compaction
	// pauseWhole says writers wait for the whole compaction, not only a
	// part of it.
	pauseWhole bool
}

// class is a durability class: engines are compared within theirs.
type class int

const (
	durable    class = iota // a write returns once it is on stable storage
	notDurable              // a write may be lost in a crash after it returns
)

var classes = []struct {
	id, title string
}{
	durable:    {"durable", "Durable: a write returns after it is on stable storage"},
	notDurable: {"not-durable", "Not durable on return: the last writes may be lost in a crash"},
}

// family is the database an engine runs.
type family int

const (
	familyGoat family = iota
	familySQLite
	familyBolt
)

// engineSpec describes an engine of the comparison.
type engineSpec struct {
	id     string // for --only and JSON
	name   string // for the tables
	family family
	class  class
	new    func() engine
}

var engineSpecs = []engineSpec{
	{"goatdb-signed-sync", "goatdb signed/sync", familyGoat, durable,
		func() engine { return &goatEngine{durability: goatdb.Sync} }},
	{"goatdb-trusted-sync", "goatdb trusted/sync", familyGoat, durable,
		func() engine { return &goatEngine{durability: goatdb.Sync, trusted: true} }},
	{"goatdb-trusted-async", "goatdb trusted/async", familyGoat, notDurable,
		func() engine { return &goatEngine{durability: goatdb.Async, trusted: true} }},
	{"sqlite-full", "SQLite FULL", familySQLite, durable,
		func() engine { return &sqliteEngine{synchronous: "FULL"} }},
	{"sqlite-off", "SQLite OFF", familySQLite, notDurable,
		func() engine { return &sqliteEngine{synchronous: "OFF"} }},
	{"bbolt-sync", "bbolt sync", familyBolt, durable,
		func() engine { return &boltEngine{} }},
	{"bbolt-nosync", "bbolt NoSync", familyBolt, notDurable,
		func() engine { return &boltEngine{noSync: true} }},
}

// errUnknownOp is returned by an engine's task for an operation it lacks.
func errUnknownOp(op opID) error { return fmt.Errorf("unknown operation %q", op) }
