// Package repo stores one repository: an append-only log file of commits and,
// in memory, the commit graph of every item in it.
//
// # Log
//
// The log (format drawn in log.go) starts with a header (magic number,
// version, the creating peer's session, a random epoch) and holds CRC-32C
// framed records: one commit, or every commit of one Write, so that a crash
// keeps all of a write or none of it. Opening a log replays it, decoding on
// every core while inserting in log order: a torn tail is cut at the exact
// end of the last good record; a damaged record in the middle is skipped,
// reported by Damage and Check, and the records after it are kept (the lost
// commits can come back from a peer). Replay does not re-verify signatures;
// Check does.
//
// # Graph
//
// Per item: every commit, its complete commits (all parents and the delta
// base present and complete), the leaves (complete commits without a
// complete child) and the head. A commit whose parents or base are missing
// is pending: stored, never a leaf, and its missing ids are listed by
// Missing. As soon as an item has several leaves the repository writes the
// deterministic merge commit: package item's MergeStamped over the leaves'
// changes since their lowest common ancestors (merged recursively when a
// criss-cross history has several), with the last writer of each field
// decided by when that field was written: the newest (timestamp, id) of the
// non-merge commits in that leaf's own history that changed it. So peers
// holding the same commits hold the same value for every item, and a peer
// that catches up in batches does not restamp old writes. A merge received
// from a peer is recomputed before it is trusted.
//
// # Sequence numbers
//
// Every commit's sequence number is the log position just after its record;
// Seq returns the latest. Since lists the items with commits after a given
// sequence number, which is how queries and sync resume without rescanning.
//
// # Durability
//
// Under Sync a write returns after fdatasync; concurrent writers share one
// (group commit). Under Async a background flusher syncs every
// FlushInterval; a crash loses at most that window, and the log stays a
// valid prefix. A failed write or fsync makes the log refuse further writes
// (ErrLogFailed): reopening recovers it to its durable state.
//
// # Concurrency
//
// A Repo is safe for concurrent use. One mutex guards the in-memory graph;
// the log writer has its own, so writers wait for fsync without holding the
// graph lock. Writers build, hash and sign their commits outside the graph
// lock from a snapshot of the items' heads, then take the lock to check the
// heads did not move (else they build again) and to append. Update
// functions may therefore run more than once and must have no side effects.
// Commits and values returned are immutable.
package repo
