// Package query runs queries as incremental iterators over a repository's
// commit sequence.
//
// A query has a source (a repository, or another query: chaining), an
// optional schema namespace, a predicate, an order (a field, or a
// comparator) and a limit. Package goatdb wraps it in the embedding API;
// package query/filter compiles the expressions the command line uses.
//
// # Incremental by construction
//
// A query remembers the log position (sequence number) its results
// reflect. Its first update scans every item; every later update, and
// every live one, evaluates only the items with commits after that
// position (Source.Since), so its cost follows what changed, not the
// repository's size. Commits received by sync advance the same position
// as local writes and so update queries the same way. Deleted items never
// match.
//
// Matching items live in an ordered index (a copy-on-write B-tree,
// github.com/tidwall/btree) keyed by (sort value or comparator, key): an
// update moves one entry, and Limit shows the first Limit entries — all of
// them when there are fewer. The index counts its entries, so the last
// visible entry is found in O(log n), and items that cross the limit
// because others moved are found between the old and new last visible
// entries: never more than the items that changed.
//
// # Chained queries
//
// A query whose Spec.Up is another query sees only that query's visible
// results and their values. Its update first updates the upstream, then
// takes the keys whose visible entries changed in the upstream's last
// pass, or, when it fell behind, the keys with commits since its own
// position (plus, when a limit upstream makes visibility depend on other
// items, the upstream's visible keys and every key in its own index).
//
// # Invariants
//
//   - Results reflect exactly the source up to Seq: an update that fails
//     or is cancelled midway publishes nothing. A cancelled pass resumes
//     where it stopped; a failed one (a panicking Where or Less, an
//     unreadable item) makes the next update rescan.
//   - A resumed query trusts its state file only if the file's checksum,
//     the query's definition hash, and the log's length and bytes before
//     the saved position all match; otherwise it rescans. Where and Less
//     are Go functions, which cannot be hashed: Spec.Version stands for
//     them.
//   - A compaction rewrites the log and starts positions over, under a new
//     epoch (Source.Epoch). A query whose position is of an older epoch —
//     idle, interrupted mid-pass, chained, resumed or live — rescans on its
//     next update, and its changes are computed against the results it
//     published, so subscribers see only what really changed; Wait waits
//     for the new epoch's position; and Save writes no state for results
//     of an older epoch (it removes the file: the next open rescans).
//   - Values are read from the source at the head the query evaluated, so
//     results never show a value the predicate did not see.
//   - Subscribers see, per subscription and in order, the visible results
//     as Added events and then every change of them; changes queued while
//     a subscriber is slow are coalesced to one per item.
//
// # Concurrency
//
// A Query is safe for concurrent use. One update runs at a time (the
// update lock, taken with a context); a chained query's update also holds
// its upstream's, child before parent. Results, Count and Total read an
// immutable published snapshot and never wait for an update. Where and
// Less run on the updating goroutine and must not call the query.
// Subscribers' functions run on the query's watcher goroutine, which
// Subscribe starts and Close (or the last cancel) stops.
package query
