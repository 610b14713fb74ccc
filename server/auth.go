package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/transport"
)

// AuthOptions turn on authentication and authorization: every /v1
// request must be signed by its session's key (Goat-Auth), the session
// is resolved to a principal from its certificates, and Rules decide what
// each principal reads and writes.
type AuthOptions struct {
	// Identity is the deployment and this node's key (OpenIdentity,
	// NewIdentity). Required.
	Identity *Identity
	// Rules decide reads and writes. nil means authz's built-in rules
	// only: nothing outside /sys/ and /user/<name>/ is readable or
	// writable by users.
	Rules *authz.Rules
	// Authenticator, if set, decides logins (/v1/auth/login) from the
	// credentials a client sends; nil means goatdb's one-time login codes
	// (Accounts.AddUser).
	Authenticator Authenticator
	// Anonymous lets sessions without a certificate in, as the anonymous
	// principal (User ""), and lets /v1/auth/register certify them. Off
	// by default: a session must log in.
	Anonymous bool
	// Window is how far a request's time may be from the server's clock;
	// 0 means authz.DefaultWindow.
	Window time.Duration
	// Accounts tune certificate and code lifetimes and the offline grace.
	Accounts AccountOptions
}

type principalKey struct{}

// withPrincipal returns ctx carrying the principal of the request.
func withPrincipal(ctx context.Context, p authz.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated principal of a request's
// context. ok is false on a server without authentication.
func PrincipalFrom(ctx context.Context) (p authz.Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(authz.Principal)
	return p, ok
}

// AudienceHeader names the deployment in every 401 answer, so a client
// that does not know it yet can sign its next request.
const AudienceHeader = "Goat-Audience"

// NonceHeader carries the server nonce of a clock-skew challenge.
const NonceHeader = "Goat-Nonce"

// maxAuthBody bounds the body of an /v1/auth request.
const maxAuthBody = 64 << 10

// authenticate verifies the Goat-Auth header of every /v1 request (signed,
// v1, or MACed with the session's request key for this node, v2) and puts
// the principal in the request's context. Unsigned, badly signed,
// replayed or stale requests get 401 with a reason and this node's key; a session that has no
// valid certificate gets 401 too, except on the login and register routes
// (and when anonymous sessions are allowed).
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.accounts == nil {
		return next
	}
	// Every 401, and the answer to every v1 request, names this node's key
	// (Goat-Node), so that a client derives the request key for it and
	// MACs its next requests (v2), which are cheaper to check.
	node := s.verifier.NodeHeader()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(format string, args ...any) {
			s.chargeFailure(r)
			if node != "" {
				w.Header().Set(authz.NodeHeaderName, node)
			}
			s.unauthorized(w, format, args...)
		}
		header := r.Header.Get(authz.AuthHeaderName)
		if header == "" {
			refuse("request not signed (no %s header); log in with 'goatdb login URL NAME --code CODE'", authz.AuthHeaderName)
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		session, err := s.verifier.Verify(header, authz.Request{Method: r.Method, Host: r.Host, PathQuery: r.RequestURI, Body: authz.BodyDigest(body)})
		var ch *authz.ChallengeError
		switch {
		case errors.As(err, &ch):
			w.Header().Set(NonceHeader, ch.Nonce)
			refuse("%v; sign the request again with the %s nonce (check this device's clock)", err, NonceHeader)
			return
		case errors.Is(err, authz.ErrTooManyRequests):
			s.metrics.nonces.Add(1)
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusTooManyRequests, "%v; retry later", err)
			return
		case err != nil:
			refuse("%v", err)
			return
		}
		var p authz.Principal
		if nc := r.Header.Get(transport.NodeCertHeader); nc != "" {
			p, err = s.nodePrincipal(session, nc)
		} else {
			p, err = s.principal(session, r.URL.Path)
		}
		if errors.Is(err, errAccounts) {
			s.storageError(w, r, "", err)
			return
		}
		if err != nil {
			refuse("%v", err)
			return
		}
		if p.Node {
			err := s.sameHistory(r.Header.Get(transport.NodeHistoryHeader))
			if err == nil {
				err = s.sameRules(r.Header.Get(transport.NodeRulesHeader))
			}
			if err != nil {
				s.log.Warn("peer node refused", "node", p.Node, "session", p.Session, "err", err)
				httpError(w, http.StatusForbidden, "%v", err)
				return
			}
		}
		if node != "" && strings.HasPrefix(header, "v1;") {
			w.Header().Set(authz.NodeHeaderName, node)
		}
		ctx := context.WithValue(withPrincipal(r.Context(), p), bodyKey{}, body)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sameRules checks a peer node's rules fingerprint
// (transport.NodeRulesHeader) against this server's: nodes that enforce
// different rules must not relay each other's commits, since each would
// take writes the other refuses.
func (s *Server) sameRules(header string) error {
	own := s.auth.Rules.Fingerprint()
	if header != own {
		if header == "" {
			header = "none"
		}
		return fmt.Errorf("the rules differ: this node enforces rules %s, the peer %s; deploy the same rules (and authz.Builder.Version) to every node", own, header)
	}
	return nil
}

// errAccounts wraps a failure to read the accounts, which is the
// server's (a storage error), not the request's.
var errAccounts = errors.New("server: reading the accounts failed")

// principal resolves a verified session to the principal it acts as on
// route path.
func (s *Server) principal(session commit.SessionID, path string) (authz.Principal, error) {
	if session == sessionOf(s.auth.Identity.NodeKey) {
		return s.auth.Identity.Node.Principal(), nil
	}
	c, err := s.accounts.Current(session)
	if err == nil {
		return c.Principal(), nil
	}
	anon := authz.Principal{Session: session}
	switch {
	case path == "/v1/auth/login" || path == "/v1/auth/register":
		return anon, nil // a session logs in (again) without a valid certificate
	case errors.Is(err, ErrNoSession) && s.auth.Anonymous:
		return anon, nil
	case errors.Is(err, ErrNoSession):
		return authz.Principal{}, fmt.Errorf("session %s is not logged in on this server; log in with 'goatdb login URL NAME --code CODE'", session)
	case errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrCertificateExpired):
		return authz.Principal{}, err
	}
	return authz.Principal{}, fmt.Errorf("%w: %w", errAccounts, err)
}

// nodePrincipal checks a node certificate a request carries (base64 in
// transport.NodeCertHeader): it must chain to the deployment's root, be valid
// now, and be for the key that signed the request. Verified certificates
// are remembered (a bounded cache), so a node's requests cost no more than
// a session's.
func (s *Server) nodePrincipal(session commit.SessionID, header string) (authz.Principal, error) {
	now := s.accounts.opts.Now()
	s.nodesMu.Lock()
	c, ok := s.nodes[header]
	s.nodesMu.Unlock()
	if !ok {
		b, err := base64.StdEncoding.Strict().DecodeString(header)
		if err != nil || len(b) > maxNodeCertLen {
			return authz.Principal{}, fmt.Errorf("%s is not a base64 node certificate", transport.NodeCertHeader)
		}
		if c, err = authz.DecodeNodeCertificate(b); err != nil {
			return authz.Principal{}, err
		}
		if err := c.Verify(s.auth.Identity.Root, now); err != nil {
			return authz.Principal{}, fmt.Errorf("node certificate: %w", err)
		}
		s.nodesMu.Lock()
		if s.nodes == nil || len(s.nodes) >= maxNodeCerts {
			s.nodes = map[string]*authz.NodeCertificate{}
		}
		s.nodes[header] = c
		s.nodesMu.Unlock()
	}
	if !c.Covers(now) {
		return authz.Principal{}, fmt.Errorf("node certificate of %s is not valid at %s", c.Node(), now.UTC().Format(time.RFC3339))
	}
	if !c.Key().Equal(ed25519.PublicKey(session[:])) {
		return authz.Principal{}, fmt.Errorf("node certificate of %s is not for the key that signed the request", c.Node())
	}
	return c.Principal(), nil
}

// Bounds on node certificates: their encoded size, and how many verified
// ones a server remembers.
const (
	maxNodeCertLen = 4 << 10
	maxNodeCerts   = 1024
)

// unauthorized answers 401 with a reason and the deployment's audience.
func (s *Server) unauthorized(w http.ResponseWriter, format string, args ...any) {
	s.metrics.unauthorized.Add(1)
	w.Header().Set(AudienceHeader, s.auth.Identity.Audience)
	httpError(w, http.StatusUnauthorized, format, args...)
}

// authRoutes mounts /v1/auth/.
func (s *Server) authRoutes(r interface {
	Post(string, http.HandlerFunc)
	Get(string, http.HandlerFunc)
}) {
	r.Post("/auth/login", s.handleLogin)
	r.Post("/auth/register", s.handleRegister)
	r.Post("/auth/renew", s.handleRenew)
	r.Post("/auth/logout", s.handleLogout)
	r.Post("/auth/revoke", s.handleRevoke)
	r.Get("/auth/whoami", s.handleWhoami)
}

func principalOf(r *http.Request) authz.Principal {
	p, _ := PrincipalFrom(r.Context())
	return p
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// readJSON decodes a small JSON body strictly into v.
func readJSON(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, maxAuthBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("the body is not the JSON this route takes: %v", err)
	}
	if d.More() {
		return errors.New("the body holds more than one JSON value")
	}
	return nil
}

type codeLogin struct {
	User string `json:"user"`
	Code string `json:"code"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	var cert *authz.SessionCertificate
	var err error
	if s.auth.Authenticator != nil {
		body, rerr := io.ReadAll(io.LimitReader(r.Body, maxAuthBody))
		if rerr != nil || !json.Valid(body) {
			httpError(w, http.StatusBadRequest, "the login body must be JSON credentials")
			return
		}
		user, roles, aerr := s.auth.Authenticator.Authenticate(r.Context(), p.Session, body)
		if aerr != nil {
			s.unauthorized(w, "login refused: %v", aerr)
			return
		}
		cert, err = s.accounts.Certify(p.Session, user, roles)
	} else {
		var in codeLogin
		if err := readJSON(r, &in); err != nil {
			httpError(w, http.StatusBadRequest, "%v; send {\"user\": NAME, \"code\": CODE}", err)
			return
		}
		cert, err = s.accounts.LoginCode(p.Session, in.User, in.Code)
	}
	s.certified(w, r, cert, err)
}

// certified answers a route that issued a certificate.
func (s *Server) certified(w http.ResponseWriter, r *http.Request, cert *authz.SessionCertificate, err error) {
	switch {
	case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrSessionRevoked), errors.Is(err, ErrCertificateExpired), errors.Is(err, ErrNoSession):
		s.unauthorized(w, "%v", err)
		return
	case err != nil:
		s.storageError(w, r, "", fmt.Errorf("certify session: %w", err))
		return
	}
	s.log.Info("session certified", "request_id", requestIDOf(r.Context()), "session", cert.Session(), "user", cert.User(),
		"expires", cert.Expires())
	writeJSON(w, s.accounts.answer(cert))
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.auth.Anonymous {
		httpError(w, http.StatusForbidden, "this server takes no anonymous sessions; log in with 'goatdb login URL NAME --code CODE'")
		return
	}
	if l := s.quotas.registrations; l != nil {
		if ok, wait := l.take(s.clientKey(r), 1, time.Now()); !ok {
			s.refuse(w, &refusal{limit: limitRegistration, status: http.StatusTooManyRequests, wait: wait,
				msg: fmt.Sprintf("this address registered its quota of %s; retry in %v or log in", l.desc, wait.Round(time.Second))})
			return
		}
	}
	cert, err := s.accounts.Register(principalOf(r).Session)
	s.certified(w, r, cert, err)
}

func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request) {
	cert, err := s.accounts.Renew(principalOf(r).Session)
	s.certified(w, r, cert, err)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	err := s.accounts.RevokeSession(principalOf(r).Session)
	if err != nil && !errors.Is(err, ErrNoSession) {
		s.storageError(w, r, "", fmt.Errorf("log out: %w", err))
		return
	}
	writeJSON(w, struct{}{})
}

type revokeRequest struct {
	Session string `json:"session,omitempty"`
	User    string `json:"user,omitempty"`
}

// AdminRole is the role that may revoke other users' sessions.
const AdminRole = "admin"

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	var in revokeRequest
	if err := readJSON(r, &in); err != nil || (in.Session == "") == (in.User == "") {
		httpError(w, http.StatusBadRequest, "send {\"session\": ID} or {\"user\": NAME}")
		return
	}
	admin := p.Root || p.Node || p.HasRole(AdminRole)
	var err error
	if in.User != "" {
		if !admin && (p.User == "" || p.User != in.User) {
			httpError(w, http.StatusForbidden, "only an admin or the user itself may revoke user %s", in.User)
			return
		}
		err = s.accounts.RevokeUser(in.User)
	} else {
		sid, perr := commit.ParseSessionID(in.Session)
		if perr != nil {
			httpError(w, http.StatusBadRequest, "session %q: %v", in.Session, perr)
			return
		}
		if !admin && sid != p.Session && !s.sameUser(sid, p) {
			httpError(w, http.StatusForbidden, "only an admin or its own user may revoke session %s", sid)
			return
		}
		err = s.accounts.RevokeSession(sid)
	}
	switch {
	case errors.Is(err, ErrNoUser), errors.Is(err, ErrNoSession):
		httpError(w, http.StatusNotFound, "%v", err)
	case err != nil:
		s.storageError(w, r, "", fmt.Errorf("revoke: %w", err))
	default:
		writeJSON(w, struct{}{})
	}
}

// sameUser reports whether session belongs to p's (non-anonymous) user.
func (s *Server) sameUser(session commit.SessionID, p authz.Principal) bool {
	return p.User != "" && s.accounts.userOf(session) == p.User
}

type whoami struct {
	User    string   `json:"user"`
	Roles   []string `json:"roles"`
	Session string   `json:"session"`
	Expires string   `json:"expires"`
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	out := whoami{User: p.User, Roles: p.Roles, Session: p.Session.String()}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if c, err := s.accounts.Current(p.Session); err == nil {
		out.Expires = c.Expires().UTC().Format(time.RFC3339)
	}
	writeJSON(w, out)
}

// setupAuth opens the accounts and the request verifier.
func (s *Server) setupAuth(o *AuthOptions) error {
	ao := o.Accounts
	if ao.Logger == nil {
		ao.Logger = s.log
	}
	acc, err := OpenAccounts(s.db, o.Identity, &ao)
	if err != nil {
		return err
	}
	v, err := authz.NewVerifier(o.Identity.Audience, &authz.VerifierOptions{Window: o.Window, Now: o.Accounts.Now,
		MACKey: o.Identity.NodeKey})
	if err != nil {
		return err
	}
	s.auth, s.accounts, s.verifier = o, acc, v
	return nil
}

// Accounts returns the server's accounts (users, sessions, codes), or nil
// without authentication.
func (s *Server) Accounts() *Accounts { return s.accounts }
