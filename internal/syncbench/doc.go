// Package syncbench measures goatdb's sync end to end: goatdb databases
// syncing through a real server (server.New and Serve, no rate limit) over
// HTTP on 127.0.0.1. Every peer uses the default options: signed commits
// and Sync durability. The bench program (bench/) and the server's
// benchmarks report what it measures.
//
// # Wire
//
// Wire runs the wire scenarios and returns, for each, what the measured
// syncs moved, from the syncing client's SyncStats: bytes on the wire each
// way (after compression) and round trips. A server database and a client
// database, each in its own directory, start from N items written on the
// server (one commit each, in batches of 1000). In the order they run:
//
//   - ToEmpty: the empty client syncs once and receives all N commits.
//     Ratio is the bytes on the wire, both ways, over the size of all the
//     commits compressed together (see CommitZstd below).
//   - InSync: the client syncs again, Reps times, with nothing new. It
//     synced with this server before, so it has a resume point, as in
//     real use.
//   - InSyncFirstContact: the same N commits on both sides, but the two
//     peers never talked: the server database syncs, as a client, with a
//     second server that serves the client's database. With no resume
//     point this takes the Bloom path.
//   - NewOnClient: Reps times, the client updates New items, then syncs.
//   - NewBothSides: Reps times, the client and the server each update New
//     items (never the same ones, so no merge is needed), then the client
//     syncs.
//   - NewOneBig: another pair of peers, BigN commits in sync (the client
//     received them from the server, then synced once more); Reps times,
//     one item is updated, on the server and on the client in turn, then
//     the client syncs.
//
// CommitBytes is the encoded size (signatures included) of the commits a
// sync had to move, read from the repositories after the writes;
// CommitZstd is their size compressed with zstd at the level the protocol
// uses (SpeedDefault), each side's commits together, since they travel in
// different messages. Overhead is the bytes on the wire both ways minus
// CommitZstd: what the protocol adds to the commits themselves. Figures
// over several syncs are medians, except OneRound (the fraction of syncs
// done in one round trip), Rounds (the mean) and MaxRounds. Every measured
// sync must converge, or Wire fails.
//
// # Write-to-arrival latency
//
// A Rig is a server and clients that keep one repository in sync in the
// background (DB.StartSync, each client with its own http.Client and
// connections, as separate machines would have): client A writes, client B
// and Receivers-1 other clients receive. A, B and the server keep their
// data on disk with Sync durability; the other receivers keep it in memory
// (vfs.NewMem), since their fsyncs would happen on their own disks, not
// this one. Rig.Write measures one write: the time from the start of A's
// Put to the moment B's repository holds the value. It then waits until
// every receiver holds the write, so that writes do not pile up.
//
// All the clients share this machine's CPUs with the server, so the figure
// with many receivers is pessimistic: every receiver's signature checks
// and HTTP work compete with B's and the server's.
//
// # Lifetime
//
// Every function takes a base directory, makes a temporary directory
// under it, and removes that directory when it returns (Rig: when it is
// closed), also on error. Logger, if set, receives progress at Info level;
// the databases and servers log nowhere. Nothing here is safe for
// concurrent use: a Rig is used by one goroutine.
package syncbench
