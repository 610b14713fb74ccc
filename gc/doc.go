// Package gc decides what goatdb collects, and when: the history horizon
// and the triggers of compaction. The mechanism, rewriting a repository's
// log with only what is kept, is repo.Compact.
//
// # The horizon
//
// A commit is accepted only while a certificate covers its time and
// within that certificate's expiry plus the offline grace, and no commit
// stamped more than the clock skew ahead is taken. So no commit older than
//
//	H(now) = floor_day(now − L − G − S)
//
// can ever arrive anew, where L is the longest session certificate
// lifetime, G the offline grace and S the clock skew (30 days, 7 days and
// 5 minutes by default: 37 days back). Flooring to whole UTC days makes H
// the same on every node with the same Policy for a whole day, so a
// repository is compacted at most once a day, and nodes compare their
// policies (Policy.Same) before they peer.
//
// # What is kept
//
// Everything from H on; every commit that was a head at some time since
// H (an author offline within the grace may build on it); the frontier
// below them as shallow roots that keep their generation numbers, so that
// merges are the same on collected and uncollected peers; the snapshots
// that kept deltas need; and every current head, however old: current
// state is never collected. See repo.Compact.
//
// # Invariants
//
//   - Collect never compacts a repository whose log already has the
//     horizon it would compact to, nor one where less than
//     Policy.MinFraction of the log (and less than Policy.MinBytes) would
//     be reclaimed, unless forced or it holds commits to drop (Options.Drop:
//     what goatdb purge shunned), which go at the next pass whatever
//     their size.
//   - A dry run changes nothing.
//   - The Collector stops its goroutine in Stop, and holds a lease on a
//     repository while it plans and compacts it.
package gc
