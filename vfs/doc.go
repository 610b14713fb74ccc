// Package vfs is the filesystem seam: every file goatdb reads or writes goes
// through an [FS], so tests can inject faults and simulate crashes.
//
// [OS] is the real filesystem. [NewMem] returns an in-memory filesystem that
// remembers, per file, which bytes were made durable by Sync and whether the
// file's directory entry was made durable by SyncDir. [MemFS.Crash] returns
// the filesystem a machine would see after losing power: only durable bytes
// survive, plus, if the test asks for it, a torn prefix of what was written
// after the last Sync. [MemFS.FailAfter] makes every mutating operation
// after the first n fail, which lets a test crash "between any two writes".
//
// Invariants: an FS and its Files are safe for concurrent use; a MemFS never
// loses bytes that were synced and whose directory entry was synced.
package vfs
