// Package vfs is the filesystem seam: every file goatdb reads or writes goes
// through an [FS], so tests can inject faults and simulate crashes.
//
// [OS] is the real filesystem; its Sync, SyncDir and locks are per-OS (see
// OS). [WriteFileAtomic] and [MkdirAllSync] make a file's contents and a
// directory durable with the calls a crash requires. [NewMem] returns a
// [MemFS], an in-memory filesystem that remembers what each Sync and SyncDir
// made durable and can show what a power loss would leave. [MemFS.FailAfter]
// makes every mutating operation after the first n fail, which lets a test
// crash "between any two writes"; [MemFS.SetHook] fails chosen ones.
//
// # The crash model
//
// [MemFS.CrashWith] returns the filesystem a machine would see after losing
// power now. What was made durable survives; what was not may survive or
// not, each part independently, as a [CrashPlan] decides:
//
//   - Entries. A directory has its entries (the names of its files and
//     directories) as of its last SyncDir and as they are now. Each name
//     whose entry differs (created, removed, replaced, or renamed to or from,
//     however many times) holds after the crash either its current entry or
//     its synced one, independently of every other name (KeepEntry). The two
//     entries of a rename are one decision, so a file renamed within a
//     directory, or over another file, is found under its old name or its
//     new one, never both or neither; after a rename between two
//     directories, sync both.
//   - Directories. A directory MkdirAll creates is an entry in its parent
//     like a file: durable once the parent is synced after its creation.
//     A crash that loses a directory's entry loses everything under it, synced
//     or not. The roots "/" and "." always exist.
//   - Sizes. A file's size after the crash is anything from its size at its
//     last Sync to its size now (Size): an append or a truncation may have
//     reached the disk in part.
//   - Pages. Below that size, each page of [PageSize] bytes (at file offsets
//     that are multiples of it) whose bytes changed since the last Sync holds
//     either its current bytes or its synced ones, independently of every
//     other page (KeepPage): a crash may keep a later page and lose an
//     earlier one. A lost page reads as its synced bytes and zeros past
//     their end, so the page that holds the end of the synced bytes keeps
//     them whatever happens to the rest of it. A kept page reads as its
//     current bytes, and past the current end (a truncation that did not
//     reach the disk) as its synced ones.
//
// Nothing else is lost: a file that was synced after its last change, whose
// entry and the entries of every directory above it were synced after they
// last changed, reads back exactly. The result of a crash is durable as it
// stands: crashing it again changes nothing.
//
// [CrashRandom] makes every decision at random, for property tests over a
// whole crash suite. [MemFS.Crash] is the narrow case: it loses every
// unsynced entry, and keeps a file's synced bytes plus, where the only
// change is bytes written at their end (appended, or over zeros reserved
// with [Allocator]), the prefix of them its tear function asks for.
//
// # Invariants
//
// An FS and its Files are safe for concurrent use. A MemFS crash never loses
// what was made durable, as above. MemFS does not rename directories. MkdirAll, and the file Lock creates,
// are not mutating operations for FailAfter and the hook.
package vfs
