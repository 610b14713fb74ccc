// Package repo stores one repository: an append-only log file of commits and,
// in memory, the commit graph of every item in it.
//
// # Log
//
// The log (format drawn in log.go) starts with a header (magic number,
// version, the creating peer's session, a random epoch), in a compacted log
// horizon records (see Compaction), and holds records
// with a checksummed head and checksummed data: one commit, or every
// commit of one Write, so that a crash keeps all of a write or none of it.
// Each record claims the bytes that were durable when it was framed, a
// clean Close ends the log with a mark claiming all of it, and recovery
// (recover.go) follows the rules users trust:
//
//   - Only a prefix survives a crash: damage at or after every claim is a
//     torn tail, cut, and nothing after it is resurrected, whatever shape
//     the tear has (cut short, or zeros and then valid records).
//   - Corruption, damage within claimed bytes or in the header, is never
//     destroyed: its bytes go to the quarantine file PATH.quarantine
//     (quarantine.go) before the log is rebuilt without them; every commit
//     in it that still verifies is salvaged; it is reported by Quarantine,
//     Health, Check and a warning at every open until a sync that agrees
//     (Agreed) finds the lost commits back.
//   - What scanning past damage finds is verified like commits from an
//     unknown peer, never taken as the owner's on trust.
//   - Recovery is linear in the size of the log.
//
// A read-only open changes nothing: it reads up to the last complete
// record (a writer may be appending) and reports damage it finds in place.
// Replay does not re-verify signatures of records read in order from the
// header; Check does.
//
// # Graph
//
// Per item: every commit, its complete commits (all parents and the delta
// base present and complete), the leaves (complete commits that are not
// excluded, without such a child) and the head. A commit whose parents or
// base are missing is pending: stored, never a leaf, and its missing ids
// are listed by Missing. As soon as an item has several leaves the repository writes the
// deterministic merge commit: package item's MergeStamped over the leaves'
// changes since their lowest common ancestors (merged recursively when a
// criss-cross history has several), with the last writer of each field
// decided by when that field was written: the newest (timestamp, id) of the
// non-merge commits in that leaf's own history that changed it. So peers
// holding the same commits hold the same value for every item, and a peer
// that catches up in batches does not restamp old writes. A merge received
// from a peer is recomputed before it is trusted.
//
// In memory, a commit is what places it in its item's graph (id, parents,
// time, delta base) and where its record is in the log. The newest
// commits also keep their encoding, packed in slabs (stored.go), up to
// encBudget bytes (4 MiB) once durable: the oldest are dropped, in log
// order, past it. A commit's value or delta is decoded again, from its
// encoding or read from the log by position (of a large write's record,
// only the frame of about 8 KiB that holds it, groupchunk.go; another
// record whole, ahead a megabyte at a time when read in log order), when
// a merge, a delta, History, ValueAt,
// Commit, CommitsSince or compaction asks for it, and kept decoded only
// from its insertion until the sequence number next advances. An item's
// head value is kept decoded (reads by key decode nothing; after an open
// from the head index, from its first read). So history costs a fixed
// part per commit (BenchmarkOpenHistory reports it), not its encoded or
// decoded size, however long a repository is written to; after an open
// from the head index no encoding is held until commits are added.
// Commits are found by id, and items by key, through tables of 4-byte
// references (commitindex.go) to the slabs an open loaded from the head
// index and to those added later: no map, no pointer for the collector to
// follow. A sync compares commits by StampsSince (id, item, time),
// which decodes nothing.
//
// The log's file may reach past the log: a writable repository reserves
// space ahead of its writes (logWriter), zeros that are no part of the
// log, given back at Close and cut by the next open after a crash. A new
// repository syncs nothing until its first write or Close (create).
//
// # Head index
//
// Beside the log, PATH.index holds the graph as a replay of the log's
// first bytes leaves it (headindex.go, which draws the format): an open
// that finds it valid builds the graph from it without decoding a commit,
// replays only the records after it, and reads commits' contents from the
// log by position when asked. It is a cache: written atomically at Close
// and in the background, checked against the log's epoch, length and last
// indexed record, and passed over (with a warning) when it does not fit;
// recovery never depends on it.
//
// # Exclusion
//
// Exclude takes commits out of the graph without deleting them (exclude.go):
// a local write a server refused (quarantined: listed by Excluded until
// Restore, Reauthor or Discard), the commits of an item this peer may no
// longer read (forgotten), or old history a server collected that this
// peer kept, which would otherwise merge as a leaf with the history that
// replaced it (collected). The invariants:
//
//   - A commit is excluded if it was named to Exclude (a root) or descends
//     from an excluded commit: a child or a merge over it, whether it was
//     here then or arrives later. Restore lifts roots; nothing else does,
//     so receiving an excluded commit again leaves it excluded.
//   - Excluded commits are never leaves and never in a value or merge;
//     what remains of an item is ancestor-closed, so its leaves are the
//     latest commits that are not excluded, and several of them get the
//     usual deterministic merge, built from them and their ancestors
//     only. An item with every commit excluded has no head: it leaves
//     Get, Keys, All and Count. A merge is never a root (it would be
//     recomputed as it is), so that merge is never an excluded commit.
//   - Excluded commits are held (Has) but left out of IDs, CommitsSince,
//     Commit and Missing, so sync neither offers nor asks for them, and a
//     peer converges with a server that refused them. ExcludedSeq tells a
//     cache of CommitsSince to start over.
//   - Restore gives back the graph as it was, unless excluding left an
//     item with several leaves: their merge is a commit like any other
//     (a server that never held the excluded commits writes the same one)
//     and stays, so the item's value after Restore is the merge of its
//     whole history, which three-way merging may resolve differently from
//     the original one (a field set back to its value at the merge base
//     counts as unchanged).
//
// Every Exclude, Restore and Discard is a record in the log (type 6), not
// a file beside it: it is durable before the call returns (under either
// durability), joins the graph in log order like a write's commits, and
// advances Seq, so Since, Changed, queries' saved states, sync resume
// points and backups see it as they see writes, with no second file to
// keep in step with the log across crashes, rebuilds and copies. Recovery
// treats it as any record: a torn one was never acknowledged and is cut
// (nothing is excluded that no call acknowledged); a damaged one in
// claimed bytes is quarantined and reported by Health and Check, the log
// opens without it and its commits come back, which the next sync
// corrects (the server refuses or hides them again); one found by
// scanning past damage is ignored, as a commit's content could forge it.
// Replay folds the records into the roots before it inserts any commit,
// so the graph is a function of the commits and the roots, live and after
// recovery; a read-only open applies them and writes nothing.
//
// # Compaction
//
// Compact (compact.go) rewrites the log without the history before a
// horizon H while writers go on writing; package gc decides when and at
// which H. The invariants:
//
//   - Current state is never collected: every leaf and head of every item
//     stays, however old, with the snapshot its value needs; so do
//     excluded commits (Restore can still bring them back, and their
//     exclusion records are written again in the new log), pending
//     commits and what they wait on.
//   - Whatever a valid author may still build on stays: every commit
//     stamped at or after H, and every commit that was a leaf at some
//     time at or after H (its earliest child is stamped at or after H, or
//     it has none). No commit older than H can be accepted any more
//     (B.4.1 of the design), so nothing else can get a child.
//   - Merges come out the same as on a peer that keeps everything. Per
//     item, compaction collects only the ancestors of one commit, the
//     frontier, that every kept commit descends from and that is an
//     ancestor or a descendant of every one of them, taken at or below
//     every kept delta's base: what it collects is below the common
//     ancestors of any leaves a merge will join, where a merge's walk
//     never goes. The frontier, and the kept merges with a parent below
//     it, are shallow: the horizon record (a type 7 record after the
//     header of a version 3 log, horizon.go) lists them with their
//     generation numbers and delta depths, which replay uses instead of
//     recomputing them from parents it does not have. Check accepts
//     missing parents of listed commits, and nothing else. An item with no
//     such frontier (histories that never joined) keeps everything.
//   - A purge (CompactOptions.Drop) drops the commits named and every
//     commit descending from them, current heads included; an item left
//     with nothing is forgotten and its key can be written again.
//   - Reads of collected history say so (ErrCollected: ValueAt, ItemAsOf,
//     ItemHistory), and Receive refuses a commit stamped before H that is
//     not here (BelowHorizon).
//   - A crash at any point leaves the old log or the new one, whole: the
//     copy is PATH.compact, synced before it is renamed over the log, and
//     the directory synced after; an open deletes a leftover copy.
//     Everything acknowledged before the swap is in both.
//   - Writers wait for the swap only (CompactStats.Pause, a few
//     milliseconds: the last of the log is written and synced, the copy's
//     tail completed and synced, the rename and the directory sync), and
//     for planning batches of a few hundred commits. The copy and its
//     catch-up run without the lock. The graph keeps only what the new log
//     holds, and sequence numbers start over in it under a new epoch (see
//     below).
//   - Pin holds the swap off (not writers or readers) for a reader that
//     must see one state: a sync's answer takes its horizon, its commits
//     and their shallow roots under a pin.
//
// # Sequence numbers
//
// Every commit's sequence number is the log position just after its record;
// Seq returns the latest (an exclusion record advances it too). Since lists
// the items with commits, or commits excluded or restored, after a given
// sequence number, which is how queries and sync resume without rescanning.
// A sequence number names a position in one file: compaction gives the log
// a new epoch (Epoch; PreviousEpoch names the one before), maps every
// sequence number into the new file and wakes watchers (Changed, Wait), so
// a saved (epoch, seq) from before must start over.
//
// # Durability
//
// Under Sync a write returns after fdatasync; concurrent writers share one
// (group commit), and its commits join the graph, so become readable and
// syncable, only once that fsync succeeded (tentative.go). A write whose
// write or fsync fails returns ErrLogFailed and never appears, not even
// after a crash: the log cuts the failed bytes off, and syncs the cut,
// before the error returns (if that fails too, the error says the write
// may reappear). It takes writes again as soon as the disk does, and
// Health reports the failure meanwhile.
// Under Async a background flusher syncs every FlushInterval; a write is
// visible at once, a crash loses at most that window and keeps a prefix,
// and a failed flush keeps the records to write again. A new log's
// directory entries are synced before anything in it is acknowledged.
//
// # Concurrency
//
// A Repo is safe for concurrent use. One mutex guards the in-memory graph;
// the log writer has its own, so writers wait for fsync without holding
// the graph lock. Writers build, hash and sign their commits outside the
// graph lock from a snapshot of the items' heads, then take the lock to
// check the heads did not move (else they build again) and to append.
// Under Sync a write's new heads wait as pending heads, so the next write
// of an item builds on them while readers still see the durable ones.
// Update functions may therefore run more than once and must have no side
// effects. Commits and values returned are immutable. Exclude, Restore,
// Discard and Reauthor run one at a time (their own mutex), each seeing
// what the previous one left; an exclusion joins the graph in log order
// among writes, and a write still waiting for its fsync that builds on a
// commit just excluded is excluded with it when it joins (the next write
// of the item builds on what remains).
package repo
