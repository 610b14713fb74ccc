// Package syncproto is goatdb's sync protocol, independent of transport:
// the messages and their codec, Bloom filters of commit ids, set digests,
// the server side (Responder) and the client side (Syncer). The HTTP
// server and the embedding API carry its messages; an in-memory Loopback
// transport serves tests.
//
// # Invariants
//
//   - The server keeps no per-client state. Each request carries what the
//     server needs to answer it; a replayed, duplicated or reordered
//     request is answered as if it were new, and storing commits twice is
//     a no-op. The Responder's only memory is a digest cache per
//     repository and a bounded cache of view states per repository and
//     view key (ResponderOptions.MaxViews), shared by every requester with
//     that view; losing either costs time, never a commit.
//   - Both sides compare commits by their stamps (id, item, time: a Repo's
//     StampsSince, where it has one), which a repository lists without
//     decoding anything, and read only the commits they send; a view
//     reads a commit only to ask Own of it, for an item it may not read.
//   - Every commit received, on either side, goes through repo.Receive,
//     which checks ids, signatures, the repository, the time, parents and
//     merges before anything is stored; a refused commit is reported back
//     with a reason, never silently dropped. A Responder uses the Repo's
//     ReceiveComplete when it has one (unless KeepPending), so a client
//     cannot make the server keep commits whose parents it does not hold,
//     nor ones that break the server's schemas.
//   - On the server, Responder.accept is the one place incoming commits
//     are accepted or rejected (Policy.AcceptCommit, then
//     Policy.AdmitCommit through the Repo's ReceiveChecked), and
//     Responder.send the one place outgoing commits are chosen. Before
//     either, Policy.View decides what the requester may read; every
//     element of the answer is then computed over that view (see Views).
//   - No answer names an id of a commit outside the requester's view,
//     but the ids of commits the request itself carried (Rejected,
//     Hidden). A repository the requester may read nothing of is
//     answered exactly as one that does not exist.
//   - Nothing collected is sent again (see Horizons): no side compares,
//     filters, bulk-sends or pushes commits below the server's horizon
//     once the client named it; such commits travel only when asked for
//     by id (missing) or to a client that holds nothing (cold start). The
//     server never asks for a collected parent: a shallow root is
//     complete.
//   - Decoders never panic, check every length against a bound and the
//     bytes left before allocating, accept only the canonical encoding,
//     and reject trailing bytes. Encoders refuse what decoders would.
//   - Responder, Syncer, Filter.Has and the codec are safe for concurrent
//     use.
//
// # Rounds
//
// A sync is a series of round trips between a client (Syncer) and a server
// (Responder), for any number of repositories at once. In every request
// the client gives, per repository, its commit count and the Digest of its
// commit-id set (a sum of hashes, kept incrementally); the server stores
// the commits the request carries, then compares digests: equal digests
// end the repository's sync in that round trip, with nothing else sent.
// Otherwise the server answers with the commits it finds the client to
// lack, the ids it is missing itself, its digest, and sometimes a filter.
// The client stores them and compares digests again. Rounds repeat until
// every repository converged or MaxRounds round trips are spent. A commit
// one side refused, or the server hides (see Views), is subtracted from
// the other side's digest, so refusals do not stop convergence.
//
// Resume path (routine syncs). After a converged sync the client keeps,
// on its side only, a Resume point per repository: the server's (epoch,
// sequence number) and its own. The next sync sends the local commits
// since its own point and asks for the server's commits since the
// server's point (repo.CommitsSince), so a sync costs what changed, not
// the repository's size: one round trip, unless both sides wrote to the
// same items (each computes the same deterministic merge) or something
// changed during the round.
//
// Sketch path (first contact: no resume point, as with a new server URL,
// a lost resume file, another server). The client sends its count and
// digest as always, and a Sketch: a fresh random 128-bit key it drew for
// this sync, whose SHA-256 is the riblt key (package riblt). If the sets differ, the server answers with a run of
// rateless IBLT coded symbols over the 64-bit short ids, under that key,
// of its commits in the requester's view from the request's horizon on
// (the set whose count and digest it answers with): 1.9 per commit the
// counts differ by (3 per commit, plus one, below 64), 64 if the counts
// are equal, at most MaxSymbols and what the answer's byte budget allows.
// The client decodes as they arrive; if it is not done, it asks for more
// from the next index (Sketch.From), as many as an estimate of the
// difference from the empty symbols received says (Sketch.Ask), and at
// least enough for 64 in all (a first answer sized by a small count
// difference that did not decode means both sides differ), and the
// server computes them again (it keeps nothing: the first 64 symbols of
// 10,000 commits cost about 1.5 ms, riblt's BenchmarkSymbols). Once decoded, the client knows both
// directions: in one request it pushes the commits only it holds (from
// the server's horizon on) and names those only the server holds
// (Sketch.Want, 4 bytes each); the server sends every commit of the view
// with such a name. A difference of d on one side costs two round trips
// and about 1.9·d symbols of 17–19 bytes; nothing differing costs one
// round trip of about 170 bytes, whatever the repository's size. A resume
// point the server does not recognise (a new epoch after a compaction, a
// view state evicted) is still followed by a Bloom round.
//
// Why the client chooses the key, afresh for each sync: short ids are
// keyed so that nobody can write commits aimed at a collision (two
// commits of one short id, one on each side, cancel out of the symbols
// and would never be found), which needs the key before the commits are
// written. A key drawn at random when the sync starts is unknown to every
// author of the commits compared, whichever side draws it; the client
// draws it because it speaks first, so that the sync still takes one
// round trip when nothing differs (a server-chosen key would cost one
// more before any symbol). The server learns the key with the request,
// once both sets are fixed. It could then forge symbols, but a server can
// always lie about its own set: the decoder's bounds (riblt: a budget of
// symbols and of peeling work, at most one element per symbol) stop
// garbage with an error, a forged difference makes the client push or
// ask for commits by name only within its own set and the view, and the
// digest comparison that ends every round catches a decode that does not
// make the sets equal; each of these falls back to the Bloom path.
// Nothing is cached per key, so a requester cannot use keys to make the
// server hold state.
//
// The sketch path gives way to the others: a client that holds nothing
// sends no sketch (bulk); a client that lacks more than about a third of
// the server's set (its count below two thirds of the server's) gets no
// symbols, and its next round takes the Bloom path, whose answer is the
// bulk path; any decoder error (riblt.ErrBudget, ErrCollision,
// ErrInconsistent, a malformed or out-of-order run), a difference too
// large to name (MaxWant), a decode that changes nothing, an estimated
// difference whose symbols would cost more than two Bloom filters, or
// digests still unequal after the decoded round end it, and the rounds
// after take the Bloom path, still naming the horizon the sketch named.
// The symbols are a fixed set's: the client pushes nothing until it
// decoded, and a server that changes meanwhile makes the decoder fail or
// the digests differ, which the Bloom path then settles. Repairs take the
// Bloom path. A server that refuses version 3 (a build that predates
// sketches) is synced without them for the Syncer's lifetime, after one
// refused round trip.
//
// Bloom path (the fallback of the sketch path, repair). The client sends
// a Bloom filter of its ids (from the horizon on, see Horizons) under a
// fresh random salt;
// the server sends every commit the filter certainly lacks, and, unless
// its digest after those commits will equal the client's, a filter of its
// own ids, from which the client finds and pushes what the server lacks
// in the next request. False positives differ with each salt, so a commit
// hidden in one round is found in a later one. The false-positive rate
// follows from an estimate of the difference and the rounds left (see
// falsePositiveRate): a round needs a follow-up with probability about
// 2%, and a commit stays hidden through every remaining round with
// probability at most 1e-9.
//
// Bulk path. A client with no commits sends no filter, and the server
// sends everything. A side whose filter lacks more than half of the
// other's commits gets all of them (those it lacks first), so that no
// further round is needed to find the few hidden by false positives.
// Messages are bounded; a side that cannot send everything in one message
// says so (RepoResponse.More) and the next round continues.
//
// Repair. Every SyncerOptions.RepairEvery-th sync of a repository with a server
// runs the Bloom path even if the digests match, so a digest collision
// cannot hide a difference for ever.
//
// # Horizons
//
// A server that collected its history (repo.Repo.Compact) keeps the
// commits from its horizon H on, and a few older ones: current heads,
// leaves of the window, shallow roots (commits whose parents it
// collected) and the delta bases of what it keeps. A client may keep its
// whole history. The two still agree, and nothing collected is ever sent
// again:
//
//   - Each answer carries H (RepoResponse.Horizon); the client names it in
//     its requests (RepoRequest.Horizon, kept in its Resume point), and
//     both sides give the count and digest of their commits with a time
//     at or after H only, ignoring older ones, collected or not. A
//     request that named another horizon (an old resume point, none yet)
//     is answered over the horizon it named, plus the server's set from H
//     on (AtHorizon), which the client compares with its own: an
//     up-to-date client converges in that one round trip, whatever the
//     compaction changed, and a client behind takes the Bloom path once.
//   - Sets from H on cost O(days), not O(commits): each side keeps its
//     Digest and count per UTC day of the commits' times, and takes the
//     days before H's from the total (a horizon inside a day also counts
//     that day's commits before it once, and keeps that cut up to date).
//   - Filters hold, and bulk sends and pushes choose among, commits from
//     H on only, once the client named H. The client never pushes an
//     older commit for a filter: the server collected it. It pushes on the
//     resume path what it wrote since its resume point, old-stamped or
//     not: the server refuses a commit below H that it does not hold with
//     the reason "below horizon" (repo.Receive), final, which the embedding
//     layer quarantines like any refusal. A commit refused for missing
//     parents has those held here pushed in the next round with it, once
//     (parents older than H, written on while offline, no filter finds;
//     a younger one can miss the push of its child): the server takes
//     them, or refuses them below the horizon; only a commit refused
//     again is reported.
//   - Cold start: a client that holds nothing names no horizon, and keeps
//     naming none until it converged: it gets every commit the server
//     holds, older ones too, and the two compare everything they hold, so
//     that an answer cut short (More) still ends with all of them. The
//     server marks the commits it sends whose parents it collected
//     (RepoResponse.Shallow, with their generation numbers, like Git's
//     shallow lines); the client stores them as roots of that generation
//     (repo.Repo.ReceiveShallow), so both build the same graph and
//     compute the same merges.
//   - A client that named no horizon but holds commits (its first sync
//     with this server since it collected) compares from H on, but is
//     also offered the older commits its filter lacks: a client offline
//     past the horizon gets the old heads it missed. Once it named H,
//     older commits come only by id.
//
// An answer is made of one state of the repository: the server pins it
// (repo.Repo.Pin) from the horizon it reads to the shallow roots of the
// commits it sends, so a compaction's swap waits for the answer. Without
// it, a client answered with the horizon before a swap and the commits
// after it could get commits whose collected parents it is never sent.
//
// Resume points name the log's epoch, which a compaction changes; a
// client whose point names the old one takes the path above: one round
// trip of about 200 bytes when it was up to date, else one Bloom round
// (measured, BenchmarkResumeAfterCompaction: 10,000 items, 5,000 updates
// after the horizon, the client 100 updates behind: two round trips,
// 11 KB up and 4 KB down). The compacted log names the epoch it replaced
// (repo.Repo.PreviousEpoch) but keeps no map of old positions to new, so
// such a point is not translated.
//
// # Views
//
// A Policy gives each request a View of each repository (nil: all of
// it). The view V of repository R is the commits of the items the
// requester may read (View.MayRead, per item, asked again whenever the
// item changes) plus the commits it wrote (View.Own, so that write-only
// "drop box" items converge). Every element of an answer is computed over
// V, never over R:
//
//   - count and digest: V's, so a restricted client converges;
//   - the server's Bloom filter holds only ids in V, and its coded
//     symbols are over V's ids only (a client that decoded them learns
//     V's short ids, nothing of the rest), and a name in Want is matched
//     against V's commits only;
//   - commits sent are in V (send checks each once more);
//   - ids the client asks for (missing) are answered only if in V, and
//     otherwise exactly as ids the server does not hold;
//   - the ids the server itself misses are those commits in V wait for;
//   - the position (epoch, seq) is the view's own: Seq counts the changes
//     of V and Epoch is a keyed hash of the view key, the log's epoch and
//     where the view's state began, so it tells nothing of the log. A
//     position the server does not recognise (tampered, evicted, another
//     view) means no resume: the Bloom path, never an error;
//   - hidden: the ids of commits the request carried that the server
//     holds outside V (the client lost read access to their items). The
//     client leaves them out of the comparison as if refused, and reports
//     them (Stats.Hidden, SyncerOptions.OnHidden) so the embedding layer
//     can purge them; until it does, its syncs take the Bloom path.
//
// An item that enters V (a rule change, or a change of its value) reaches
// the client with its whole history; resuming, in the same round trip.
// Views with equal keys share one state, kept incrementally: each request
// reads only the commits written since the last, and asks MayRead only
// for their items, so a resumed sync of a view costs about what an
// unrestricted one does. An item entering or leaving V makes the state
// count V again from the whole log, once. A nil View costs nothing.
//
// # Wire format
//
// All integers are uvarints in shortest form unless said otherwise;
// fixed-size integers are little-endian. A string is a uvarint length and
// that many bytes.
//
//	message   := version kind codec body
//	  version   1 byte: 1, or 2 for a message with a horizon field (flag
//	            bit 3 of a request section, bits 3 to 5 of an answer): a
//	            version 2 message has at least one, a version 1 message
//	            none; 3 for a message with a sketch field (request flag
//	            bits 4 and 5, answer flag bit 6), which may also have
//	            horizon fields: a version 3 message has at least one
//	            sketch field, others none. Others are refused with
//	            ErrVersion, naming the versions this build reads; a build
//	            that predates horizons so refuses anything about a
//	            repository that collected history, which it could not
//	            sync, and one that predates sketches refuses a first
//	            contact's request (the Syncer then goes on without).
//	  kind      1 byte: 1 request, 2 response
//	  codec     1 byte: 0 none (body is the payload), 1 zstd (body is
//	            zstd frames of the payload, at most MaxPayloadSize bytes;
//	            a frame that does not declare its content size holds at
//	            most UndeclaredBound bytes, so a server knows what to
//	            reserve before it decompresses)
//	The whole message is at most MaxMessageSize bytes.
//
//	request   := session nrepos reqrepo*
//	  session   32 bytes: the requesting peer's session id
//	  nrepos    uvarint, at most MaxRepos
//	reqrepo   := path flags count digest [horizon] [resume] [filter]
//	             [sketch] commits missing
//	  path      string, 1 to MaxPathLen bytes, unique in the request
//	  flags     1 byte: bit 0 resume, bit 1 filter, bit 2 repair, bit 3
//	            horizon (version 2 or 3), bit 4 sketch and bit 5 decoded
//	            (version 3; bit 5 only with bit 4); others 0
//	  count     uvarint: the client's commit count (from the horizon on)
//	  digest    32 bytes: the client's Digest (from the horizon on)
//	  horizon   uvarint, 1 to 2^63-1: Unix milliseconds (iff flag bit 3;
//	            set iff the horizon is not 0)
//	  resume    8-byte epoch, uvarint seq: the server position to resume
//	            from (iff flag bit 0)
//	  filter    the client's filter (iff flag bit 1)
//	  sketch    (iff flag bit 4) 16-byte key (the riblt key is its
//	            SHA-256: Sketch.RibltKey), then, unless flag bit
//	            5: uvarint from, 0 to riblt.MaxIndex (the first symbol
//	            wanted), uvarint ask, 0 to MaxSymbols (how many; 0: the
//	            server's choice); with flag bit 5 (decoded): uvarint n, 0
//	            to MaxWant, n × 4-byte name (the high 32 bits of a short
//	            id: the server's commits the client lacks)
//	  commits   uvarint n (at most MaxCommits), n × (uvarint length,
//	            1 to MaxCommitSize, and a commit encoding)
//	  missing   uvarint n (at most MaxMissing), n × 32-byte commit id
//
//	response  := nrepos resprepo*      one per reqrepo, in request order
//	resprepo  := path status (message | answer)
//	  status    1 byte: 0 ok, 1 not found, 2 error
//	  message   string, at most MaxReasonLen bytes (status not ok)
//	answer    := flags epoch seq count digest [horizon] [athorizon]
//	             [filter] [symbols] commits missing rejected [hidden]
//	             [shallow]
//	  flags     1 byte: bit 0 filter, bit 1 more, bit 2 hidden, bits 3
//	            horizon, 4 athorizon and 5 shallow (version 2 or 3), bit
//	            6 symbols (version 3); others 0
//	  epoch     8 bytes: the server log's epoch (or the view's, see Views)
//	  seq       uvarint: the sequence number (or view position) of count
//	            and digest
//	  count     uvarint, digest 32 bytes: the server's (over the view,
//	            from the request's horizon on), after the request
//	  horizon   uvarint, 1 to 2^63-1: the server's horizon (iff flag bit
//	            3; set iff it is not 0)
//	  athorizon uvarint count, 32-byte digest: the server's from its
//	            horizon on (iff flag bit 4; set iff the request named
//	            another horizon)
//	  filter    the server's filter (iff flag bit 0)
//	  symbols   (iff flag bit 6) uvarint length, then a riblt symbol run
//	            of that many bytes (riblt.AppendRun: uvarint start,
//	            uvarint n, n × (8-byte sum, 8-byte check, zigzag varint
//	            count)), n 1 to MaxSymbols, start+n at most
//	            riblt.MaxIndex, counts within ±riblt.MaxCount
//	  commits, missing   as in reqrepo
//	  rejected  uvarint n (at most MaxCommits), n × (32-byte id, string
//	            reason of at most MaxReasonLen bytes)
//	  hidden    uvarint n (1 to MaxCommits), n × 32-byte commit id (iff
//	            flag bit 2; the flag is set iff there are hidden ids).
//	            Only answers to a requester with a restricted view carry
//	            it; a build that predates it refuses such an answer as
//	            malformed.
//	  shallow   uvarint n (1 to MaxCommits), n × (32-byte commit id,
//	            uvarint generation 1 to 2^32-1, uvarint delta depth 0 to
//	            2^16-1, uvarint mask of the collected parents, bit i for
//	            parent i, not 0): the commits of this answer some of
//	            whose parents the server collected (iff flag bit 5; set
//	            iff there are some)
//
//	filter    := salt k m words
//	  salt      16 bytes
//	  k         1 byte: hash functions, 1 to MaxFilterK
//	  m         uvarint: bits, 64 to MaxFilterBits
//	  words     ⌈m/64⌉ × 8-byte words; filter bit i is bit i%64 of word
//	            i/64; bits from m up are 0
//
// Why this shape: one small envelope so that an unknown version is
// recognised before anything else; compression of the whole payload
// (commits of one repository share keys, field names and session ids) but
// only when it pays, so an in-sync round stays a few dozen bytes; no
// checksum, since the transport (TLS, HTTP) has one and every commit
// carries its own hash; and no ids beside commits, since a commit's id is
// the hash of its bytes and the receiver computes it.
package syncproto
