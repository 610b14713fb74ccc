package authz

import "errors"

// Errors about certificates and revocation records. Their bytes come from
// peers, so a record that does not decode is bad input, not damage to this
// peer's data: these errors do not match goatdb.ErrCorrupt.
var (
	// ErrBadCertificate is returned when bytes are not the canonical
	// encoding of a certificate or revocation record (truncated, trailing
	// bytes, a bound broken, another kind or version), or when Issue,
	// IssueNode or Revoke is given fields that break a rule. Errors that
	// wrap it say what is wrong.
	ErrBadCertificate = errors.New("authz: bad certificate")

	// ErrUntrusted is returned when a certificate or revocation record
	// does not chain to the deployment's root key: a signature does not
	// verify, it names another audience, or a session certificate's
	// interval is not inside its node certificate's.
	ErrUntrusted = errors.New("authz: certificate not trusted")

	// ErrExpired is returned when a certificate that verifies does not
	// cover the time asked about: before its NotBefore, or at or after its
	// Expires.
	ErrExpired = errors.New("authz: certificate not valid at this time")
)

// Errors about signed requests. Every reason a request is not
// authenticated matches ErrUnauthenticated (errors.Is), so a server needs
// one test to answer 401; the reason's own sentinel says why.
var (
	// ErrUnauthenticated is matched by every error that refuses a request's
	// Goat-Auth header. A server answers it with 401.
	ErrUnauthenticated = errors.New("authz: unauthenticated")

	// ErrMalformed is returned when a Goat-Auth header is not the one
	// canonical form, or a request part holds a NUL byte. It matches
	// ErrUnauthenticated.
	ErrMalformed = unauthenticated("authz: malformed Goat-Auth header")

	// ErrBadSignature is returned when the header's signature (v1) or MAC
	// (v2) does not verify over the request: the method, host, path, query, body digest,
	// time, nonce, echoed server nonce or audience differ from what the
	// session signed. It matches ErrUnauthenticated.
	ErrBadSignature = unauthenticated("authz: bad request signature")

	// ErrUnknownNodeKey is returned when a v2 header's MAC is under a
	// request key derived with a node key the Verifier does not hold, or
	// the Verifier takes no v2 headers (no VerifierOptions.MACKey). A
	// server answers it naming its node key in a Goat-Node header, if it
	// has one, so that the client derives the request key for that key,
	// or signs with v1. It matches ErrUnauthenticated.
	ErrUnknownNodeKey = unauthenticated("authz: request MAC for another node key")

	// ErrBodyMismatch is returned when the body digest in the header is not
	// the digest of the body received. It matches ErrUnauthenticated.
	ErrBodyMismatch = unauthenticated("authz: body digest mismatch")

	// ErrStale is returned, inside a *ChallengeError that carries a fresh
	// server nonce, when a request's time is further from the server's
	// clock than the window. It matches ErrUnauthenticated.
	ErrStale = unauthenticated("authz: request time outside the window")

	// ErrBadChallenge is returned, inside a *ChallengeError that carries a
	// fresh server nonce, when an echoed server nonce was not issued by
	// this verifier for this session, or its window has passed. It
	// matches ErrUnauthenticated.
	ErrBadChallenge = unauthenticated("authz: echoed server nonce not valid")

	// ErrReplay is returned when a request's nonce (or echoed server
	// nonce) was already used by the session within its window. It
	// matches ErrUnauthenticated.
	ErrReplay = unauthenticated("authz: replayed request")

	// ErrTooManyRequests is returned when the nonce cache is full, for the
	// session or as a whole. It does not match ErrUnauthenticated: the
	// request may be genuine, and a server answers 429.
	ErrTooManyRequests = errors.New("authz: too many requests")
)

// Errors about rules.
var (
	// ErrDenied is returned (wrapped, naming the path and the reason) when
	// a principal may not read or write a path: no rule matches it, a
	// built-in rule refuses it, or the app's rule does.
	ErrDenied = errors.New("authz: denied")

	// ErrBadRule is returned by Builder.Compile and ParseRulesFile (wrapped,
	// naming the pattern, and for a file the entry) when a pattern does not
	// parse, two patterns are equally specific and match the same paths,
	// or a rule expression does not compile.
	ErrBadRule = errors.New("authz: bad rule")
)

// unauthenticated returns a sentinel with message msg that matches
// ErrUnauthenticated.
func unauthenticated(msg string) error { return &authError{msg} }

type authError struct{ msg string }

func (e *authError) Error() string        { return e.msg }
func (e *authError) Is(target error) bool { return target == ErrUnauthenticated }
