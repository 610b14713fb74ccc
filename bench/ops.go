package main

import (
	"strconv"
	"strings"
)

// opID names an operation of the workload in --only and in JSON.
type opID string

// The operations, in the order they run and are reported.
const (
	opCreateInstance opID = "create-instance"
	opOpenEmptyRepo  opID = "open-empty-repo"
	opOpenBig        opID = "open-big"
	opReadAll        opID = "read-all"
	opCreate         opID = "create"
	opReadByPath     opID = "read-by-path"
	opUpdate         opID = "update"
	opBulkCreate     opID = "bulk-create"
	opBulkRead       opID = "bulk-read"
	opQuerySimple    opID = "query-simple"
	opQueryComplex   opID = "query-complex"
	opCount          opID = "count"
	opKeys           opID = "keys"
	opCompact        opID = "compact"
)

// opKind groups operations that take the same number of samples.
type opKind int

const (
	kindInstance opKind = iota // opens or creates a database
	kindBig                    // works on all N items: slow
	kindWrite                  // writes, durably or not
	kindRead                   // reads the smallN-item repository
	kindCompact                // compacts a copy of an N-item database: slowest
	numKinds
)

// op is one operation of the workload. In name, "N" stands for the size
// of the big repository.
type op struct {
	id   opID
	name string
	kind opKind
}

var ops = []op{
	{opCreateInstance, "create instance", kindInstance},
	{opOpenEmptyRepo, "open empty repository", kindInstance},
	{opOpenBig, "open N items", kindBig},
	{opReadAll, "read N items", kindBig},
	{opCreate, "create item", kindWrite},
	{opReadByPath, "read item by path", kindRead},
	{opUpdate, "update item", kindWrite},
	{opBulkCreate, "bulk create 100 items", kindWrite},
	{opBulkRead, "bulk read 100 items", kindRead},
	{opQuerySimple, "simple query", kindRead},
	{opQueryComplex, "complex query", kindRead},
	{opCount, "count", kindRead},
	{opKeys, "keys", kindRead},
	{opCompact, "compact N items written " + strconv.Itoa(compactRounds) + " times", kindCompact},
}

// title is the operation's name for a big repository of n items.
func (o op) title(n int) string {
	return strings.Replace(o.name, "N", thousands(n), 1)
}

// thousands formats n with commas: 100000 is "100,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
