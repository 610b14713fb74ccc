// Package goatdb is an embeddable, version-controlled document database.
//
// A database is a data directory. Items are typed documents at paths
// /type/repo/item; every item keeps its own graph of signed,
// content-addressed commits, and every repository /type/repo lives in one
// append-only log file, DIR/type/repo.log. Concurrent edits (from other
// goroutines, or from peers by sync) merge deterministically, so peers that
// hold the same commits see the same items.
//
//	db, err := goatdb.Open("./data", nil)
//	...
//	defer db.Close()
//	path, err := db.Create("/data/tasks", goatdb.Fields{"title": "Write docs", "done": false})
//	task, err := db.Get(path)
//	fmt.Println(task.Get("title"))
//
// # Values
//
// Fields are plain Go values or item.Values (see [Fields]); [Item.Get]
// returns them as string, float64 (number), int64 (int), bool, time.Time
// (date), []any (set) or map[string]any (map). Ints and numbers are
// distinct types, and which one a value gets depends on how it is written,
// never on who writes it: a Go integer is an int, a Go float a number, and
// a JSON integer literal that fits in an int64 (as the goatdb command and
// json.Number give it) an int, any other JSON number a number. So
// Put(path, Fields{"n": 1}) and 'goatdb put PATH {"n": 1}' both store the
// int 1, and it.Get("n").(int64) works on either. Queries compare ints and
// numbers by value (n == 1 matches the int 1 and the number 1.0), and
// schemas convert one to the other where nothing is lost. [FieldsOf] and
// [Item.Decode] map structs to fields and back, honouring omitempty.
//
// # Guarantees
//
//   - Under Sync durability (the default) a write returns only when it is on
//     stable storage; concurrent writers share one fsync, and it becomes
//     readable (and syncable) only then. A write that returns an error is
//     never readable and never reappears. Async returns at once and
//     flushes in the background, keeping a prefix of each repository's
//     writes. Both recover automatically after a crash, and after a full
//     or failing disk once it works again.
//   - Nothing that may hold acknowledged data is destroyed: damage found
//     in a log is moved to a quarantine file beside it, what still
//     verifies is salvaged, and DB.Health reports it (and the repositories
//     whose writes fail, or that cannot be opened) until a sync with a
//     peer brings the lost commits back. Every corruption error matches
//     ErrCorrupt.
//   - A write either happens whole or not at all: bad input (an invalid
//     path, a value of the wrong type for the item's schema, a missing
//     required field) returns an error and writes nothing.
//   - One process owns a data directory for writing at a time. A read-only
//     open (Options.ReadOnly) creates nothing, works beside that writer,
//     and refuses every write with ErrReadOnly. Reads never create a
//     repository: reading one that does not exist is ErrNotFound.
//   - DB.Backup writes a consistent copy of the directory while writers go
//     on: every write acknowledged before it began, and perhaps later ones.
//   - Items read are immutable snapshots; a DB is safe for concurrent use.
//   - DB.Update, a write conditional on a head (IfHead, IfAbsent) and
//     DB.Txn commit only if the items they read have not moved since, so
//     no local write is lost between a read and the write built on it;
//     DB.View reads a repository as it was at one instant. These hold
//     within one repository of this database: a sync may bring a peer's
//     concurrent edits to the same items, which merge like any other.
//
// # Open repositories
//
// A repository is opened (its log read into memory, one file descriptor
// held) when first used. Without a bound (the default) it stays open until
// DB.Close. Options.MaxOpenRepos, MaxOpenRepoBytes and RepoIdleTimeout
// bound them, for a process that serves more repositories than it can
// keep open:
//
//   - A repository is in use while a lease on it is held: DB.Acquire and
//     DB.AcquireExisting return one, and the database holds one for each
//     operation while it runs (a read, a write, a sync), for the life of
//     an open Query and of a Watch, and for the round of a background
//     Syncer. One in use is never closed before DB.Close.
//   - Over a bound, the least recently used repositories not in use are
//     flushed and closed until the bounds hold again, or only
//     repositories in use are left (the bounds are then exceeded until a
//     lease is released). Repositories under /sys/ are never closed for
//     idleness.
//   - Closing never loses an acknowledged write: a repository is flushed
//     first, and one whose flush fails stays open (and is tried again a
//     minute later). It is reopened on its next use with the same content,
//     and nothing opens it while it closes.
//   - DB.Repo and DB.LookupRepo take no lease: under a bound what they
//     return may be closed once idle (its writes then fail with
//     repo.ErrClosed); hold a repository with Acquire instead.
//   - DB.OnRepoOpen hooks run again at each reopening; a repository closed
//     for idleness reports Closed and closes its Changed channel, which is
//     how watchers learn of it.
//   - Under a bound DB.Health opens nothing: it reports the repositories
//     open now and what was seen of the others (failed opens, damage held
//     when they closed).
//
// # Sessions
//
// Each data directory has a session key (DIR/session.key, mode 0600: the
// Ed25519 seed and public key, so damage is found: ErrSessionKey), made by
// the first open and saved at its first use that needs it (a repository
// opened, a request to a server, DB.Session, Close), so that an open
// costs no fsync until then. Its public key is the session id that every
// commit names; commits are signed with it unless Options.Trusted is set.
//
// # Sync
//
// DB.Sync exchanges commits with a goatdb server (package server) until
// both sides hold the same commits; DB.StartSync keeps every repository in
// sync in the background, driven by local writes and the server's event
// stream. The protocol is package syncproto's. Every commit received is
// verified before it is stored, and a commit the server refuses is
// reported (ErrRejected, SyncStats.Rejected), never dropped silently: it
// is quarantined, kept out of its item's value and of sync but listed by
// DB.Rejected until DB.Reauthor writes it again (after a new login, say),
// DB.Discard drops it or DB.Restore brings it back. Items the server no
// longer lets this session read are forgotten: they leave every read
// and query (Watch yields ErrAccessRemoved, a query's removal is marked
// QueryEvent.AccessRemoved) until the server sends them again.
// Resume points (DIR/resume.json) make routine syncs cost what changed; a
// lost or stale one costs a Bloom-filter round, never a commit.
//
// # Logins
//
// Every request to a server is signed with the session key for the
// server's deployment (package authz; the Goat-Auth header), which a
// server without authentication ignores. DB.LoginCode (or DB.Login with an
// application's credentials, DB.Register for an anonymous session) asks
// the server for a session certificate, verifies it (it names this
// session and chains to the deployment's root key, pinned at the first
// login to that server) and keeps it in DIR/credentials.json (mode 0600);
// syncs renew it once less than half of its lifetime is left, and
// DB.Logout revokes it. A missing or damaged credentials file means "not
// logged in", never a failed Open. A server that refuses the session
// answers 401: the error wraps ErrUnauthenticated.
package goatdb
