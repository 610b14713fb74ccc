// Package raftstore is the durable storage of a raft node: a Store is both
// the raft.LogStore and the raft.StableStore of github.com/hashicorp/raft,
// kept in one directory through the vfs filesystem seam.
//
// A membership group's log is small (thousands of entries at most, kept
// short by raft's snapshots), so the design is the simplest that is
// plainly correct: the whole log is held in memory and in one append-only
// file; the stable keys in memory and in one small file.
//
// # Files
//
// A store's directory holds:
//
//   - log: a header, then one frame per write, each holding one or more
//     entries (the format is drawn in codec.go). StoreLogs appends a
//     frame and fsyncs it before it returns; DeleteRange writes the
//     remaining entries to a new file and renames it over the old one
//     (vfs.WriteFileAtomic).
//   - stable: every key and value of the StableStore, replaced whole
//     (vfs.WriteFileAtomic) on each Set and SetUint64 (format in
//     stable.go).
//   - LOCK: held with an exclusive lock from Open to Close, so two
//     processes never open one store.
//
// Open makes the directory and the log (durably, with their directory
// entries) if they are missing, before it returns.
//
// # Invariants
//
//   - Whatever StoreLogs, DeleteRange, Set or SetUint64 acknowledged (by
//     returning nil) survives a crash, and Open reads it back.
//   - A crash during StoreLogs keeps every earlier acknowledged entry and a
//     prefix, by whole frames, of the batch being written: at most the
//     last frame of the file is torn, and Open cuts it off. A crash during
//     DeleteRange leaves the old log or the new one; during Set, the old
//     value or the new one.
//   - A damaged frame with a valid frame anywhere after it is not a crash
//     (frames are synced one at a time) but damage: Open refuses the store
//     with an error wrapping ErrCorrupt rather than drop acknowledged
//     entries. A frame is valid only in the file whose random salt it was
//     written with, so entry data that mimics a frame is never taken for
//     one.
//   - Indexes in the log strictly increase (gaps are allowed, as raft
//     expects after a snapshot); index 0 is never stored.
//   - What readers see in memory is exactly what the files hold: entries
//     are decoded back from the bytes written before they are kept.
//   - Once a write or fsync fails, the Store takes no more writes
//     (ErrFailed): what the disk holds is unknown until it is opened again.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes are serialized; reads
// (FirstIndex, LastIndex, GetLog, Get, GetUint64) answer from memory and
// wait only for the brief moment a write publishes its result, never for
// its fsync. A raft.Log filled by GetLog shares its Data and Extensions
// with the store: callers must not modify them.
//
// # Raft conventions
//
// Get of a missing key returns ErrKeyNotFound, whose message is exactly
// "not found": raft compares error strings to recognise a missing key.
// GetUint64 of a missing key returns 0 and a nil error, as raft's
// InmemStore does. Set and SetUint64 share one namespace; SetUint64 stores
// 8 bytes, big-endian.
package raftstore
