// Command goatdb reads and writes a goatdb data directory from the shell.
//
//	goatdb [--dir DIR] [--schemas FILE] COMMAND [flags] [ARGS]
//
//	init                          create DIR and this peer's session key; print both
//	put PATH [JSON]               set fields (JSON object, argument or stdin); print the head commit id
//	    --schema NS --replace
//	get PATH [--at COMMIT|TIME]   print the fields as one JSON object
//	rm PATH                       delete the item (soft; put restores it)
//	ls [REPO] [--deleted]         item paths, sorted (without REPO: the repositories)
//	query REPO [--where EXPR]     matching items in order, one JSON line each
//	    --sort FIELD --desc --limit N --schema NS
//	log PATH                      history, newest first, one JSON object per line
//	import REPO [FILE]            load JSON lines {"key", "fields", "schema"?}
//	    --schema NS --batch N --progress N
//	export REPO                   print the live items as those JSON lines, sorted by key
//	verify                        check every repository log
//	backup DEST                   copy the directory consistently, while it is in use
//	schema                        list the registered schemas and their fields
//	serve [--addr HOST:PORT]      run the sync server (default 127.0.0.1:8080) until SIGINT/SIGTERM
//	    --rules FILE|open --anonymous --tls-cert FILE --tls-key FILE --metrics-addr HOST:PORT
//	    --peer URL --rate N --memory-budget MIB --log-level L --log-json
//	    --cors-origin ORIGIN
//	user add NAME [--role ROLE]   add a user to the server's DIR; print a one-time login code, last
//	user list | revoke NAME       the users (--json); disable one and void its sessions
//	session list | revoke SESSION the logged-in sessions (--json); void one
//	sync URL [REPO...]            sync with a server until both sides hold the same commits
//	    --json
//	rejected [REPO] [--json]      the local writes servers refused, kept out of the items
//	reauthor PATH ID...|--all     write refused writes again as new commits; print their ids
//	discard PATH ID...|--all      drop refused writes for good
//	login URL NAME --code CODE    log this directory's session in to a server; print user, server, expiry
//	whoami [--json]               the servers this directory is logged in to, as whom, until when
//	logout [URL]                  tell the server to revoke the session and forget the login
//	version, help [COMMAND]
//
// --json is accepted by init, ls, verify, schema, whoami, rejected, user
// list and session list, whose default output is for people. --dir defaults to
// $GOATDB_DIR, else ./goatdb-data. Only init and serve (which says so) make
// it a data directory: every other command exits 1, creating nothing, on a
// directory that is not one (missing, or without session.key; see
// goatdb.Options.MustExist), so a mistyped --dir is not a new, empty
// database. Schemas come from --schemas FILE or, when it exists,
// DIR/schemas.json (format: schema/FORMAT.md).
//
// # Exit status
//
//   - 0: success.
//   - 1: not found (a missing or deleted item, repository or commit, or a
//     directory that is not a goatdb data directory), or a failed check
//     (verify found problems, a sync in which either side refused
//     commits).
//   - 2: anything else: bad usage, bad input (an invalid path, malformed
//     JSON, a value of the wrong type for the schema, a user or session
//     that user and session do not know), a data directory
//     held by another process (for a command that writes), a damaged
//     file, an I/O error.
//
// A failure prints exactly one line on standard error, starting with
// "goatdb:", that says what to do. The exceptions are deliberate: goatdb
// with no command prints the usage (exit 2), library warnings about
// damage it worked around ("goatdb: warning: ...") come before the result,
// and import reports its progress on standard error.
//
// # Invariants
//
//   - A command that fails writes nothing: arguments, JSON and schemas are
//     checked before the data directory is opened, and writes go through
//     goatdb's atomic Put and Batch. The new repository's log that opening
//     a repository would create is not created for a write that is going
//     to fail (put and import check the first items of a new repository
//     before writing). The one exception is import, below.
//   - get, ls, log, query, export, verify, backup, whoami and rejected open the
//     directory read-only: they create, repair and write nothing in it,
//     and they work beside a running 'goatdb serve' or any
//     other writer, reading each log up to its last complete record.
//   - Flags may come before or after the positional arguments, global flags
//     after the command too; after -- everything is positional.
//   - run, the whole program, takes its arguments and streams as
//     parameters and returns the exit status, so tests run every command
//     in-process; main only wires it to the process.
//
// # Serving and accounts
//
// serve always authenticates: every client logs in (login, with a
// one-time code from user add) and signs its requests, and rules decide
// what each user reads and writes (authz.DefaultRules, or --rules). The
// deployment's identity (its root and node keys) is kept in DIR/auth/,
// created at the first start or the first user add. user and session
// reach a running serve through its admin socket DIR/auth/admin.sock (mode
// 0600, removed when serve stops); when no server runs they open DIR
// themselves (list read-only, and revoke creates nothing). If the
// socket's path is too long for a Unix socket (over 103 bytes), serve
// warns and runs without it, and user add, user revoke and session revoke
// then ask to stop the server first. Metrics are served only with
// --metrics-addr, which must be a loopback address. serve prints the web
// console's address (/) after its own; the JSON API it serves is for the
// server's own pages and non-browser clients, and for the pages of the
// origins given with --cors-origin.
//
// # Backup and restore
//
// backup DEST copies every repository log up to its last complete record
// (so every write acknowledged before it began), the quarantine files,
// session.key, schemas.json, a server's deployment keys (auth/) and stored
// logins (credentials.json) into DEST, a new or empty directory, each
// file through a synced temporary file. To restore, stop the server, move
// DIR aside, copy DEST in its place and start the server; peers send back
// the commits newer than the backup at the next sync.
//
// # Import atomicity
//
// import reads and checks the whole input before it writes anything: the
// JSON of every line, its key (each key once), every field against its
// schema and against the item it replaces. A bad line is reported with its
// line number and nothing is written. It then writes in batches (--batch,
// 1000 by default), each atomic. Only a failure during the writes (a full
// disk, an interrupt) leaves the earlier batches written; the message says
// how many, and running the same import again finishes it, because items
// already equal to their line are not written again. The whole input is
// held in memory while it is checked.
//
// # JSON
//
// JSON input is typed by its JSON type (see json.go): strings, integer
// literals that fit int64 as ints, other numbers as numbers (float64),
// bools, arrays as sets, objects as maps; null removes a field. Numbers are
// decoded with json.Decoder.UseNumber and typed by item.FromAny, the rule
// Go values follow too, so ints keep all 64 bits. Dates come only from
// schema coercion (an RFC 3339 string for a date field), as do ints from
// integral numbers and numbers from ints. Output sorts keys, prints sets as
// sorted arrays, dates as RFC 3339 UTC with milliseconds, ints as integers
// and integral numbers with a fraction (3.0), so it reads back as it was.
package main
