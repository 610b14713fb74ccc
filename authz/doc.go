// Package authz is goatdb's identity and authorization: principals,
// certificates that bind session keys to users, revocations, signed HTTP
// requests, and the rules that decide who reads and writes which paths. It
// is a library with no server and no storage: the server and the client
// call it.
//
// # Identity
//
// A session is a device's Ed25519 key; its public key is its id
// (commit.SessionID). The deployment's root key signs node certificates
// (IssueNode); a node's key signs session certificates (Issue), which bind
// a session to a user and roles for an interval and carry their node's
// certificate, so anyone holding the root public key verifies one offline
// (SessionCertificate.Verify). Revocation records void every certificate of
// a session or a user issued before a time (Revoke, Revocation.Covers).
// A Principal is what rules see of a verified session.
//
// # Requests
//
// Every request carries a Goat-Auth header signed by the session's key
// over the method, host, path and query, a digest of the body, the time, a
// nonce and the deployment's id (SignRequest, v1), or MACed over the same
// with a request key the session shares with the server's node (v2:
// NewRequestKey, MACRequest), which costs the server a keyed hash instead
// of a signature check. A Verifier checks either, refuses a time outside
// its window (answering with a server nonce the client echoes; see
// ChallengeError) and a nonce used before by either (NonceCache).
//
// # Rules
//
// Rules map path patterns to Go functions that decide reads (per item,
// filtering) and writes (per commit, seeing the item before and after). The
// most specific pattern wins, ambiguity is refused when the rules are
// compiled, and no rule means deny. Built-in rules protect /sys/ and
// /user/<uid>/ whatever the app's rules say. ParseRulesFile compiles the
// same rules from a JSON file of expr-lang expressions. Check and CheckRead
// run a decision without a server.
//
// Rules see only the item they decide about: a hook for reading other
// repositories (a bounded Lookup, for group memberships kept in data) is
// not part of the package yet.
//
// # Invariants
//
//   - Certificates, revocations and parsed headers are immutable once built
//     or decoded. Every type here is safe for concurrent use, except a
//     Builder, which one goroutine fills before Compile.
//   - Decoders (DecodeNodeCertificate, DecodeSessionCertificate,
//     DecodeRevocation, ParseAuthHeader) accept only the canonical
//     encoding, so decode then encode gives the input back; they check
//     every length against a bound before slicing, refuse trailing bytes,
//     and never panic. Their errors are bad input from a peer and do not
//     match goatdb.ErrCorrupt.
//   - A signature covers every byte of its record before it, and each kind
//     of signed message starts differently (certificates "goatdb-cert\x00",
//     requests "goatdb-req-v1\x00", commits a 32-byte id), so a signature
//     made for one is never valid as another. Request MACs cover
//     "goatdb-req-v2\x00" messages, under keys derived for one session,
//     one node key and one deployment, used for nothing else.
//   - Only the holder of a session's private key, or of the node's, can
//     compute their request key: a v2 header proves possession of the
//     session's key to that node as a v1 signature does. Cached request
//     keys are bounded (VerifierOptions.MACSessions).
//   - A certificate is valid at t only if it chains to the root key, names
//     the audience asked for, lies inside its node's interval, and its
//     interval [NotBefore, Expires) holds t. Revocations are checked apart
//     from certificates, against the receiver's clock.
//   - A request is accepted at most once: its nonce (or the echoed server
//     nonce) is remembered until its window closes. Memory for nonces is
//     bounded per session and in all; past the bound requests are refused
//     with ErrTooManyRequests, never accepted unchecked.
//   - A decision with no matching rule denies; a rule that panics or whose
//     expression fails denies. Root and node principals are allowed
//     everything. For everyone else the built-in rules of /sys/ and /user/
//     are checked first, and an app rule can only narrow them.
//   - Decisions depend only on their inputs (principal, path, values): no
//     clock, no I/O.
package authz
