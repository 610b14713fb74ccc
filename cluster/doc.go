// Package cluster keeps the membership of a cluster of goatdb servers and
// places repositories on them.
//
// Commits are immutable, content-addressed and merge deterministically,
// so replicas of a repository agree through the sync protocol alone and
// need no consensus. What must be unique is decided by a raft group of
// the members (github.com/hashicorp/raft, with its own transport and
// storage): who the members are, how many own each repository (r), and
// when a change of placement takes effect.
//
// # Placement
//
// Owners places a repository on r members by rendezvous hashing: each
// member scores BLAKE3 of its name and the repository's path, and the r
// highest own it. Every node computes the same owners from the same
// member list; a member joining n−1 others takes about r/n of the
// repositories, and nothing moves between the others.
//
// # Changes
//
// A member joins through the leader (Node.Join) as a voter of the raft
// group and a joining member, and leaves the same way (Node.Leave). Either
// moves the epoch without changing the placement in force
// (View.Serving, View.OwnersNow): each serving member first hands the
// repositories it holds to their owners in the next placement (View.Next,
// View.OwnersNext) by syncing them, and reports it (Node.Handoff for the
// current epoch). Once every serving member has, the leader activates the
// change: the next placement is in force, a departed member leaves the
// raft group, and an old owner may drop its copy of a repository, whose
// new owners hold it already.
//
// # Invariants
//
//   - Every node applies the same raft log, so equal log positions give
//     equal Views and equal owners for every repository.
//   - A change takes effect only after every serving member reported its
//     handoff for the change's epoch; a report for another epoch is
//     refused (ErrStaleEpoch).
//   - The last member cannot leave.
//   - At most MaxVoters (5) members vote in the raft group; the others
//     follow its log, and an active one is promoted when a voter leaves.
//   - Calls that change the membership run on the leader; elsewhere they
//     fail with a *NotLeaderError naming the leader when one is known.
package cluster
