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
//	                  syncproto.MaxMessageSize, 415 for another content
//	                  type, 429 with Retry-After when the client is over
//	                  its rate.
//	GET  /v1/events   a text/event-stream: first a "changed" event per
//	                  repository (its position), then "ready", then a
//	                  "changed" event each time a repository changes, and
//	                  a keep-alive comment every KeepAlive. ?repo=/t/r
//	                  (repeatable) limits the stream to those
//	                  repositories. The data of "changed" is a
//	                  syncproto.Notice.
//	GET  /healthz     the storage state (goatdb.DB.Health): 200 "ok"; 200
//	                  "damaged" and a line per repository that holds
//	                  quarantined damage or cannot be opened (the others
//	                  serve); 503 "degraded" while writes to a repository
//	                  fail; 503 while shutting down. It names
//	                  repositories, never server paths.
//	GET  /metrics     Prometheus text format
//
// # Invariants
//
//   - The server keeps no state per client beyond an open event stream and
//     a rate-limit bucket; every sync request is answered from the
//     repositories alone (see syncproto).
//   - A sync response is written only after the commits of its request are
//     stored with the database's durability, so under Sync durability a
//     commit the server acknowledged survives a crash.
//   - Incoming commits pass through syncproto.Responder's one acceptance
//     point and outgoing ones through its one selection point, both under
//     Options.Policy.
//   - Repositories are created only for a peer that holds or sends commits
//     for them (even if those commits are then refused); a peer that only
//     asks for an unknown repository is answered "not found".
//   - A commit from a client is taken only if it names the repository it
//     is sent to, is not stamped more than 5 minutes ahead of the
//     server's clock, hangs from parents the server holds (else it is
//     refused as retryable: nobody can make the server keep commits hanging
//     from made-up parents), and fits the schema the server has registered
//     for it (run the server with the application's schemas).
//   - A repository that cannot be opened is reported (log, /healthz,
//     /metrics) and does not keep the server from starting or serving the
//     others.
//   - Every goroutine the server starts is stopped by Serve's return (per
//     connection and peer work) or by Close (repository watchers).
package server
