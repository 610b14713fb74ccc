// Package transport is the client's side of goatdb's HTTP API (the routes
// package server serves) and the event stream format both sides share.
//
// A Client sends requests to one server: sync messages (RoundTrip, which
// makes it a syncproto.Transport), the /v1/auth routes (Call) and the
// event stream (Events). Package goatdb keeps one Client per server for a
// database's lifetime and tells it, through Config, what the database
// knows: the stored login's audience and when to renew it. A Client is
// safe for concurrent use; what it learns from a server (audience, node
// key, clock offset) is kept in memory only.
//
// # Signed requests
//
// Every request a Client sends carries a Goat-Auth header of at most
// authz.MaxHeaderLen bytes, which servers without authentication ignore.
// It names the server's deployment (its audience) and is either signed
// with the session key (v1, authz.SignRequest: an Ed25519 signature for
// the server to verify) or, once the server has named its node's public
// key, MACed with the request key the session shares with that node (v2,
// authz.MACRequest: a keyed hash to check). A server that takes v2
// headers names its node key in a login or renewal answer and in a
// Goat-Node header of its answers to v1 requests and of its 401s; the
// request key is derived once per server, node key and audience, and kept
// in memory. A server that refuses a request answers 401 with the
// audience in a Goat-Audience header, and, when the request's time was
// too far from its clock, a server nonce in Goat-Nonce. So:
//
//   - A client that does not know a server's audience yet (never logged in
//     there, nothing learned since it was made) sends its first request
//     unsigned, learns the audience from the 401 and sends the request
//     again, signed.
//   - A 401 that names another audience than the one signed for is
//     answered the same way, once.
//   - A 401 with a Goat-Nonce is answered by signing the same request again
//     with the nonce echoed, once, so a device with a wrong clock works.
//     The server's clock, from the answer's Date header, then moves the
//     time later requests to that server are signed with, so they need no
//     challenge.
//   - A 401 to a v2 request that names another node key than the one the
//     request was MACed for (the server's key changed) is answered by
//     MACing the request again for that key, once. If that is refused
//     naming yet another key, the address leads to several nodes that do
//     not share a key: the request is signed with v1, as every later one to
//     that server; so it is too once the server has named another node
//     key more than four times.
//   - A 401 to a v2 request that names no node key (a server that no
//     longer takes v2, or a refusal by the route itself) makes the client
//     forget the node key: later requests are signed with v1 until an
//     answer names one again.
//
// Anything else, and a fifth 401, is the answer: ErrUnauthenticated.
//
// # Event stream
//
// GET /v1/events answers a text/event-stream, a subset of the HTML
// EventSource format. The server (EventWriter) writes exactly this:
//
//	stream    = retry *(changed / keepalive) ready *(changed / keepalive)
//	retry     = "retry: 2000" LF LF
//	changed   = "event: changed" LF "data: " notice LF [commits] LF
//	commits   = "from: " epoch " " seq LF 1*("commits: " 1*1024base64 LF)
//	ready     = "event: ready" LF "data: {}" LF LF
//	keepalive = ": keep-alive" LF LF
//	notice    = the JSON of syncproto.EncodeNotice, one line
//	epoch     = 16 lowercase hex digits; seq = a decimal number, no leading 0
//	base64    = standard base64 without padding (RFC 4648 §4), split
//	            anywhere: the lines' texts, joined, encode the frames
//	frames    = 1*(uvarint(len(commit)) commit), at most MaxEventCommits
//	            bytes of commits (commit.Commit.Encode, len > 0)
//
// for example:
//
//	retry: 2000␊
//	␊
//	event: changed␊
//	data: {"repo":"/data/tasks","epoch":"00000000075bcd15","seq":42}␊
//	␊
//	event: ready␊
//	data: {}␊
//	␊
//	: keep-alive␊
//	␊
//	event: changed␊
//	data: {"repo":"/data/tasks","epoch":"00000000075bcd15","seq":43}␊
//	from: 00000000075bcd15 42␊
//	commits: nQEBAAAA…␊
//	␊
//
// The changed events before ready list the repositories the server has,
// with their positions; those after it announce changes. A reader
// (EventReader) accepts more, so that the format can grow:
//
//   - A line ends in LF or CR LF and is at most MaxEventLine bytes, its
//     line ending included; a longer one is an error, so a peer cannot make
//     a reader buffer more.
//   - A line starting with ":" is a comment. "event:" and "data:" set the
//     event's type (spaces trimmed) and data (one leading space dropped);
//     a later one replaces an earlier one. "from:" is read like data;
//     the texts of "commits:" lines are joined. Other lines are ignored.
//   - A blank line ends an event: Next returns it, with the type "" if no
//     event line came (a keep-alive, the retry), so that every block is a
//     sign of life. Types other than changed and ready are for the caller
//     to ignore; the data of changed must decode as a notice.
//
// # Commits in events
//
// A changed event after ready may carry the commits that moved the
// repository: from is the position before them (the position the stream
// last announced), the notice the position after, and the commits are
// every commit the stream's session may read written in between, in log
// order, parents first. A server sends them only when they are few and
// small (its per-event and per-stream bounds) and the session's view of
// the repository changed only by them (no item entered or left it);
// otherwise the event is a bare notice. A receiver whose resume point is
// exactly from stores them as any commits it receives (signatures
// checked, parents required) and may then take the notice's position as
// its resume point, without a round trip; any other receiver, or one that
// cannot store them all, syncs as for a bare notice.
//
// Why extra lines rather than a field of the notice: readers before
// commits in events decode the notice strictly and refuse lines over
// MaxEventLine bytes, but ignore unknown lines; so they read such an
// event as the bare notice it also is, and sync. Why base64 in short
// lines: the stream is text, and a line stays within MaxEventLine.
//
// A reader bounds what an event may make it hold: MaxEventLine bytes a
// line and MaxEventCommits bytes of commits an event; past them, or with
// a from line without commits lines (or the reverse), the event is an
// error.
package transport
