// Package commit defines the commit: goatdb's immutable, content-addressed,
// signed unit of change to one item.
//
// # Fields
//
// A commit names its item key, its parents (sorted commit ids), a timestamp
// (Unix milliseconds, UTC), the session that wrote it, and its contents:
// either a full snapshot of the item (with the item's schema) or a delta (the
// id of a base commit, which must be a full-snapshot ancestor, plus per-field
// edits). A delta has its base's schema, since the delta rule never crosses a
// schema change, so it does not repeat it.
//
// # Identity and signature
//
// The id is blake3-256 over the body: the canonical encoding of every field
// but the signature. A session id is an Ed25519 public key; the signature is
// Ed25519 over the id by that key, so the signer is always the author and
// anyone can check it without a lookup. Trusted mode writes no signature.
// Merge commits (two or more parents) have no session and no signature:
// their contents and timestamp follow from their parents, so every peer that
// merges the same leaves writes the same commit with the same id.
//
// # Encoding
//
// Integers are uvarints in shortest form (see package item, which also
// encodes the contents).
//
//	commit  := body signature
//	body    := version flags [repo] key parents time [session] contents
//	  version   1 byte, 2 (1: the same without repo)
//	  flags     1 byte: bit 0 delta contents, bit 1 session present; other bits 0
//	  repo      version 2: uvarint len, bytes: the repository, /type/repo
//	  key       uvarint len, bytes (1–128 bytes of A-Z a-z 0-9 . _ -)
//	  parents   uvarint n (0–1024), n × 32-byte ids, strictly increasing
//	  time      uvarint, Unix milliseconds, at most 2^62
//	  session   32 bytes, Ed25519 public key (iff flag bit 1)
//	  contents  full : uvarint len, schema namespace, uvarint schema version, item
//	            delta: 32-byte base id, delta
//	signature 0 bytes (unsigned) or 64 bytes (Ed25519 over the id)
//
// The body is self-delimiting, so the signature is whatever follows it. The
// decoder accepts only this canonical form (a commit decoded and encoded
// again has the same bytes) and never panics. Compression is not part of a
// commit: the log and the sync protocol compress records, so a commit's id
// does not depend on a compressor's version.
//
// Version 2 names the commit's repository, so the id and the signature
// cover it: a signed commit cannot be replayed into another repository
// (from /data/a into /sys/admins, say), which a receiver checks. Version 1
// commits, which name none, are still read (old logs) and written for
// Fields without a Repo.
//
// # Invariants
//
//   - A commit with two or more parents is a merge: no session, no signature.
//   - Any other commit names a session; if signed, by that session's key.
//   - A delta has at least one parent and its base is one of its ancestors.
//   - A Commit is immutable and safe for concurrent use once built.
package commit
