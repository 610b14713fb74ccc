// Package server is goatdb's HTTP sync server: a goatdb database that
// serves its repositories to peers with the sync protocol of package
// syncproto, pushes change notices over Server-Sent Events, and can
// replicate with other servers by the same protocol.
//
// # Routes
//
//	POST /v1/sync     one sync round: a syncproto request in the body
//	                  (Content-Type application/x-goatdb-sync), a
//	                  syncproto response back. 400 with a reason for a
//	                  malformed request or an unsupported protocol version
//	                  (naming the supported ones), 413 for one over
//	                  syncproto.MaxMessageSize or over a whole quota,
//	                  415 for another content type, 429 with Retry-After
//	                  when the client is over what remains of a quota
//	                  (see Quotas), 408 when its body arrives slower than
//	                  Options.MinBodyRate after Options.BodyGrace, 503 with
//	                  Retry-After when the memory budget for requests in
//	                  flight (Options.MemoryBudget) has no room for it;
//	                  429, 408 and 503 close the connection. A storage
//	                  failure storing the request's commits answers the
//	                  whole request (see Storage errors).
//	GET  /v1/events   a text/event-stream: first a "changed" event per
//	                  repository open, or opened since the server
//	                  started (its position; with a policy, only those
//	                  open now; a client syncs the others it holds), then
//	                  "ready", then a "changed" event each time a
//	                  repository changes, and
//	                  a keep-alive comment every KeepAlive. ?repo=/t/r
//	                  (repeatable) limits the stream to those
//	                  repositories. The data of "changed" is a
//	                  syncproto.Notice; after "ready", a change also
//	                  carries its commits, those the session may read
//	                  since the position the stream last announced,
//	                  within EventCommitBytes per event and
//	                  EventCommitRate per stream (else it is a bare
//	                  notice; a change outside the session's view sends
//	                  nothing). Package transport draws the format and
//	                  reads and writes it.
//	GET  /healthz     the storage state (goatdb.DB.Health) as JSON
//	                  (application/json):
//	                    {"status": "ok"|"damaged"|"degraded"|"shutting_down",
//	                     "repos": [{"repo": "/t/r", "status": "damaged",
//	                                "problem": "...", "quarantined": 1}],
//	                     "storage_failures": {"last_minute": 3,
//	                       "last_15_minutes": 3, "total": 3, "last":
//	                       {"time", "repo", "problem", "request_id"}}}
//	                  200 for "ok" and "damaged" (some repository holds
//	                  quarantined damage or cannot be opened; the others
//	                  serve); 503 for "degraded" (writes to a repository
//	                  fail) and "shutting_down". "repos" lists the
//	                  repositories that are not ok. "storage_failures"
//	                  counts the requests answered with a storage error
//	                  (to 10 seconds, in constant memory), so that a
//	                  failure shows after its repository recovered.
//	                  Problems are known texts: no server paths. With
//	                  authentication, "repos" and the repository of
//	                  "last" are left out (clients may not know of
//	                  them): OpsHandler's /healthz has them.
//	GET  /livez       200 "ok" while the process serves HTTP; it never
//	                  touches storage (liveness).
//	GET  /readyz      whether to send the server traffic (readiness), as
//	                  JSON {"ready", "status", "reason"}: 200 while
//	                  serving; 503 with the reason before Serve
//	                  ("starting"), once Serve begins to shut down
//	                  ("shutting_down"), and while writes to a repository
//	                  fail or the repositories cannot be listed
//	                  ("degraded": a server that cannot store commits
//	                  acknowledges none; with one server, that takes it
//	                  out of a balancer's rotation until the disk
//	                  recovers, and clients retry meanwhile). A damaged
//	                  repository does not make it unready.
//	GET  /metrics     Prometheus text format; only without
//	                  authentication: with it, serve OpsHandler (or
//	                  MetricsHandler) on an address only operators reach
//
// OpsHandler serves /metrics, /healthz (naming repositories), /livez and
// /readyz for operators, on a listener of its own (goatdb serve
// --metrics-addr), which the connection cap of the public one does not
// hold up.
//
// With authentication (Options.Auth), the auth routes, each signed like
// every /v1 request:
//
//	POST /v1/auth/login     JSON credentials ({"user","code"} for
//	                        one-time login codes, else whatever the
//	                        Authenticator reads) → a session
//	                        certificate as JSON; 401 with a reason
//	POST /v1/auth/register  an anonymous certificate (AuthOptions.Anonymous
//	                        only; 403 otherwise)
//	POST /v1/auth/renew     a new certificate for a session whose
//	                        certificate is valid, with the user's roles
//	                        as they are now
//	POST /v1/auth/logout    revokes the session
//	POST /v1/auth/revoke    {"session"} or {"user"}: an admin (role
//	                        "admin"), or the user itself
//	GET  /v1/auth/whoami    the principal the server sees
//
// The JSON API (api.go) and the web console, for curl, scripts and
// browsers: answers are JSON, errors {"error": CODE, "reason": SENTENCE}
// with CODE named after the status, and reads and writes go through the
// same Policy as sync (a repository or item the principal may not read
// is answered as a missing one):
//
//	GET  /, /console/...     the web console (package console); HEAD too
//	GET  /v1/openapi.json    the OpenAPI 3.1 description of the JSON API
//	POST /v1/auth/token      log in with /v1/auth/login's credentials →
//	                         a web session's token (and its cookie);
//	                         DELETE logs out, revoking the session
//	GET  /v1/auth/session    the request's principal
//	GET  /v1/server          the status and quotas; the whole server's
//	                         counters for admins, nodes and the root only
//	GET  /v1/repos           the readable repositories; /{type}/{repo}
//	                         one, with its cursor; /{type}/{repo}/items a
//	                         page of its items (filter, sort, desc, limit,
//	                         after)
//	GET  /v1/items/{type}/{repo}/{key}
//	                         an item, with its head as ETag (?at= an
//	                         earlier version); PUT replaces its fields,
//	                         PATCH merges a JSON merge patch, DELETE
//	                         deletes it, each honouring If-Match (412) and
//	                         PUT If-None-Match: *; .../history and
//	                         .../diff
//	GET  /v1/changes         ?repo=/t/r&since=CURSOR: the repository's
//	                         changed items as Server-Sent Events, from the
//	                         cursor on, then live
//
// A JSON API request is authenticated by a Goat-Auth signature, as for
// sync (it then only reads), or by a web session's token, as
// Authorization: Bearer or the goatdb_token cookie (HttpOnly,
// SameSite=Strict; a write it authenticates must come from the server's
// own pages). A web session (websession.go) is a session the server makes
// at login and certifies as the user; it holds the session's key in
// memory only, for the token's life (at most WebSessionLifetime), and
// signs the token's writes with it, so their author is that session of
// the user. CORS is off unless Options.CORSOrigins (goatdb serve
// --cors-origin) lists origins: /v1 answers to a listed Origin carry
// Access-Control-Allow-Origin, its preflights are answered 204, and other
// origins' preflights 403.
//
// # Authentication and authorization
//
// Every /v1 request (but a JSON API request with a token) carries a
// Goat-Auth header signed by its session's key over the method, host,
// path and query, a digest of the body, the time, a nonce and the
// deployment's audience (package authz): with Ed25519 (v1), or, once the server has named its node key (Goat-Node,
// and the login answer), with a MAC under a key only the session's key
// holder and this node can derive (v2, X25519 of the two keys), which
// costs the server a few microseconds instead of a signature check. The
// server
// refuses with 401, a one-line reason and the Goat-Audience header: an
// unsigned or badly signed request, a replayed one, one outside the
// ±60 s window (with a Goat-Nonce to echo, for clients with wrong
// clocks), and one from a session without a valid, unrevoked certificate
// (except to log in; and, with AuthOptions.Anonymous, sessions that never
// had one act as the anonymous principal). The session the server acts
// for is the one that signed, whatever a request's body claims.
//
// Certificates, users, login codes and revocations are records in the
// /sys repositories (Accounts), so they replicate like data; only root
// and node principals read or write /sys, except that a session may read
// its own certificate. The data directory's auth/ folder holds the
// deployment's identity (OpenIdentity); its admin socket (ServeAdmin)
// lets the operator manage accounts while the server runs.
//
// A commit a client sends is stored only if (DESIGN §8) it is signed by
// its author; a certificate of its author covered its time; no
// revocation voids that certificate for a commit received now (so a
// commit back-dated by a revoked key is refused, while those stored
// before the revocation stay); it arrives within the certificate's expiry
// plus the offline grace; its parents are here; it fits its schema; and
// the write rule, as its author, allows it, seeing the item before and
// after. Merges are recomputed instead. Commits relayed by a node or the
// root are trusted to have been checked where they were first accepted.
// What a session reads is what the rules let it read (syncproto's
// views): a repository it may not read looks exactly like one that does
// not exist.
//
// Revoking a session or a user (Accounts.RevokeSession, RevokeUser)
// refuses its next request and ends its event streams at once.
//
// Servers of one deployment (one audience and root key, a node key and
// certificate each: OpenIdentity) replicate with Options.Peers as nodes:
// their requests are signed with the node key and carry the node
// certificate (transport.NodeCertHeader), which the peer checks against the
// root. A node reads and relays everything, /sys included, so logins and
// revocations made on one node hold on all of them. Peers whose rules
// (authz.Rules.Fingerprint, transport.NodeRulesHeader) or history policy
// differ are refused with 403. With Options.AckReplicas, a client's sync
// that brought commits is answered only once that many peers stored them
// (else 503 after AckTimeout); requests of nodes never wait.
//
// # Clusters
//
// With Options.Cluster the server is a member of a sharded cluster (package
// cluster: rendezvous placement of each repository on r members, the
// membership kept by a raft group). cluster.go draws its routes
// (/v1/cluster, for nodes) and what it does: it hands the repositories it
// holds to the owners they gain before a change takes effect, drops those
// it no longer owns once their owners hold them, replicates each with its
// co-owners (Options.AckReplicas then counts co-owners), answers a
// client's sync section for a repository it does not own as moved to the
// owners (syncproto.MovedPrefix) without storing its commits, and answers
// the JSON API's requests about such a repository with 307 to an owner.
// The admin socket serves GET /cluster and POST /cluster/leave to the
// operator (goatdb cluster).
//
// # Storage errors
//
// A storage error (an I/O error, failing writes, a damaged log, a
// repository that cannot be opened) is logged at Error level with the
// request's id (X-Request-Id), and never sent: storage errors name the
// server's files. A client gets a known text that cites the request id:
//
//   - When storing a sync request's commits fails, the whole request is
//     answered 503 with Retry-After if the failure passes by itself
//     (writes failing, retried until the disk takes them; the database
//     closing), else 500: "storage error on the server (request id X):
//     ...". No response acknowledges commits that may not be stored; the
//     client keeps them and retries (goatdb treats 5xx as temporary).
//     Commits of the request's other repositories that were stored stay
//     stored, and a retry finds them there.
//   - A repository that cannot be opened, or whose Policy view fails,
//     fails only its own section (syncproto.StatusError, "repository
//     unavailable on the server (request id X)"), so that the request's
//     other repositories sync; commits sent for it are not stored, and
//     the client does not count them as acknowledged. A refusal written
//     for the client (syncproto.ErrRefused: quotas) keeps its text.
//   - Failures reading or writing the accounts (login, renew, logout,
//     revoke, and finding a session's certificate) are answered the same
//     way as a failed store (503 or 500), not as an authentication
//     failure.
//
// Protocol refusals (malformed input, unknown versions, unknown
// repositories, rejected commits) keep their precise messages.
//
// # Metrics
//
// /metrics (and MetricsHandler) writes the Prometheus text format with
// github.com/VictoriaMetrics/metrics: the format with two small
// dependencies instead of prometheus/client_golang's tree (protobuf,
// client_model, common, procfs, ...); a metrics.Set per Server, so that
// several servers in one process keep separate series; and the Go runtime
// and process series (go_*, process_*) written by the library. Every
// goatdb_ series is listed, with what it counts, in metrics.go
// (families); each has HELP and TYPE. Label values come from fixed sets
// (route patterns, status codes, rejection reasons, limit names) or from
// the operator (peer URLs, without their user information), never from
// what a client sends. Among them: goatdb_sync_rounds_total,
// goatdb_sync_duration_seconds (a histogram with fixed buckets, for
// histogram_quantile), goatdb_sync_commits_rejected_total{reason},
// goatdb_limit_hits_total{limit} (every limit that refused a request),
// goatdb_repositories_open, and per peer of Options.Peers
// goatdb_peer_replication_lag_seconds and goatdb_peer_sync_errors_total.
//
// # Invariants
//
//   - The server keeps no state per client beyond an open event stream and
//     its quota buckets; every sync request is answered from the
//     repositories alone (see syncproto).
//   - Every request counts against the quotas of its session and user, or
//     of its address when it is not authenticated or its session is
//     anonymous (Quotas); a request over one is refused before it is
//     handled, with nothing of it stored, and a repository over the quota
//     on new ones is refused before it is created. Nodes and the root are
//     not limited.
//   - At most Options.MaxConnections connections are open at once; more
//     wait in the listen backlog.
//   - What sync requests in flight hold (bodies, decompressed payloads,
//     answers as they are built and until their clients read them) stays
//     within Options.MemoryBudget, and what the requests of one session,
//     user or address hold within a quarter of it: each is reserved before
//     it is allocated, an answer is made to fit the room left, and a
//     request that does not fit is answered 503 (413 if it never could).
//     With Options.Auth, a payload is opened only for an authenticated
//     request.
//   - A sync response is written only after the commits of its request are
//     stored with the database's durability, so under Sync durability a
//     commit the server acknowledged survives a crash.
//   - Incoming commits pass through syncproto.Responder's one acceptance
//     point and outgoing ones through its one selection point, both under
//     the rules (Options.Auth) or Options.Policy.
//   - Without Options.Auth the server authenticates nobody: for tests and
//     trusted networks only (New logs a warning). goatdb serve always
//     authenticates.
//   - Repositories are created only for a peer that holds or sends commits
//     for them (even if those commits are then refused); a peer that only
//     asks for an unknown repository is answered "not found".
//   - A commit from a client is taken only if it names the repository it
//     is sent to, is not stamped more than 5 minutes ahead of the
//     server's clock, hangs from parents the server holds (else it is
//     refused as retryable: nobody can make the server keep commits hanging
//     from made-up parents), and fits the schema the server has registered
//     for it (run the server with the application's schemas).
//   - New opens no repository: each is opened when a request needs it, so
//     a server starts in the same time with any number of them. With a
//     bound on the database (goatdb.Options.MaxOpenRepos,
//     MaxOpenRepoBytes; goatdb serve sets both) idle ones are closed
//     again: a sync request holds the repository it works on (one at a
//     time) until it moves to the next or is answered, the /sys
//     repositories stay open, and event streams follow repositories as
//     they open and close.
//   - A repository that cannot be opened is reported when a request needs
//     it (logged once, /healthz, /metrics) and does not keep the server
//     from starting or serving the others.
//   - No answer, error or sync section carries the text of a storage
//     error, nor any server file path; /livez never touches storage.
//   - Every goroutine the server starts is stopped by Serve's return (per
//     connection and peer work) or by Close (repository watchers).
package server
