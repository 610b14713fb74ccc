package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

// Web sessions: the JSON API's credentials for curl and browsers, which
// hold no session key of their own. POST /v1/auth/token logs in with the
// same credentials as /v1/auth/login; the server makes a new session key,
// certifies it as the user exactly as a login does, and answers a bearer
// token (and an HttpOnly, SameSite=Strict cookie) that stands for that
// session. The private key stays in this process's memory only, for the
// token's life (at most WebSessionLifetime), and signs the commits the
// JSON API writes for the token: their author is the web session,
// certified as the user, so the write rules, revocations and the history
// see a session of that user like any other. Revoking the session (or
// the user) refuses the token at once; a restart forgets every token.

// WebSessionLifetime bounds a token's life.
const WebSessionLifetime = time.Hour

// maxWebSessions bounds the tokens held at once (about 200 bytes each);
// a login past it, once expired tokens are dropped, gets 503.
const maxWebSessions = 100_000

// TokenCookie is the cookie that carries a web session's token.
const TokenCookie = "goatdb_token"

// tokenPrefix starts every token, so that one is recognised in logs and
// secret scanners.
const tokenPrefix = "gdbt_"

type webSession struct {
	key     ed25519.PrivateKey
	session commit.SessionID
	expires time.Time
}

// webSessions holds the live tokens by the SHA-256 of the token, so that
// a memory dump does not hand them out.
type webSessions struct {
	mu    sync.Mutex
	byTok map[[32]byte]*webSession
}

func (ws *webSessions) add(w *webSession, now time.Time) (string, error) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.byTok == nil {
		ws.byTok = map[[32]byte]*webSession{}
	}
	if len(ws.byTok) >= maxWebSessions {
		for h, x := range ws.byTok {
			if !now.Before(x.expires) {
				delete(ws.byTok, h)
			}
		}
		if len(ws.byTok) >= maxWebSessions {
			return "", errTooManyWebSessions
		}
	}
	ws.byTok[sha256.Sum256([]byte(tok))] = w
	return tok, nil
}

var errTooManyWebSessions = errors.New("too many web sessions are open on this server; retry later")

// lookup returns the live web session of tok.
func (ws *webSessions) lookup(tok string, now time.Time) (*webSession, bool) {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > 128 {
		return nil, false
	}
	h := sha256.Sum256([]byte(tok))
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w, ok := ws.byTok[h]
	if ok && !now.Before(w.expires) {
		delete(ws.byTok, h)
		return nil, false
	}
	return w, ok
}

func (ws *webSessions) remove(tok string) {
	h := sha256.Sum256([]byte(tok))
	ws.mu.Lock()
	delete(ws.byTok, h)
	ws.mu.Unlock()
}

// bearer returns the token a request carries (Authorization: Bearer, else
// the cookie) and whether it came in the cookie.
func bearer(r *http.Request) (tok string, cookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, found := strings.Cut(h, " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(rest), false, true
		}
		return "", false, false
	}
	if c, err := r.Cookie(TokenCookie); err == nil && c.Value != "" {
		return c.Value, true, true
	}
	return "", false, false
}

// sameOrigin reports whether a request authenticated by cookie comes from
// this server's own pages: its Origin is this host, or, without one, the
// browser says same-origin. SameSite=Strict keeps the cookie off other
// sites' requests already; this refuses the rest (a same-site sibling).
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		site := r.Header.Get("Sec-Fetch-Site")
		return site == "" || site == "same-origin" || site == "none"
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

type tokenAnswer struct {
	Token   string   `json:"token"`
	User    string   `json:"user"`
	Roles   []string `json:"roles"`
	Session string   `json:"session"`
	Expires string   `json:"expires"`
}

// handleToken logs in with credentials and answers a token (POST
// /v1/auth/token).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if s.accounts == nil {
		apiError(w, http.StatusNotFound, "this server runs without authentication and needs no login; call the API without credentials")
		return
	}
	// Every login counts against its address's budget for requests
	// without a session (as refused ones do): each writes a certificate.
	s.chargeFailure(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAuthBody+1))
	if err != nil || len(body) > maxAuthBody || !json.Valid(body) {
		apiError(w, http.StatusBadRequest, "the body must be JSON credentials of at most %d bytes, like {\"user\": NAME, \"code\": CODE}", maxAuthBody)
		return
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	var session commit.SessionID
	copy(session[:], pub)
	var cert *authz.SessionCertificate
	if s.auth.Authenticator != nil {
		user, roles, aerr := s.auth.Authenticator.Authenticate(r.Context(), session, body)
		if aerr != nil {
			apiError(w, http.StatusUnauthorized, "login refused: %v", aerr)
			return
		}
		cert, err = s.accounts.Certify(session, user, roles)
	} else {
		var in codeLogin
		if jerr := json.Unmarshal(body, &in); jerr != nil || in.User == "" || in.Code == "" {
			apiError(w, http.StatusBadRequest, "send {\"user\": NAME, \"code\": CODE}: a one-time login code from 'goatdb user add NAME'")
			return
		}
		cert, err = s.accounts.LoginCode(session, in.User, in.Code)
	}
	switch {
	case errors.Is(err, ErrLoginRefused):
		apiError(w, http.StatusUnauthorized, "%v", err)
		return
	case err != nil:
		s.storageError(w, r, "", fmt.Errorf("log in: %w", err))
		return
	}
	now := s.accounts.opts.Now()
	exp := now.Add(WebSessionLifetime)
	if ce := cert.Expires(); ce.Before(exp) {
		exp = ce
	}
	tok, err := s.web.add(&webSession{key: key, session: session, expires: exp}, now)
	if err != nil {
		w.Header().Set("Retry-After", "60")
		apiError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: tok, Path: "/", Expires: exp, MaxAge: int(exp.Sub(now).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.Header().Set("Cache-Control", "no-store")
	roles := cert.Roles()
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, tokenAnswer{Token: tok, User: cert.User(), Roles: roles, Session: session.String(), Expires: formatTime(exp)})
}

// handleTokenDelete logs a web session out: its session is revoked and
// the token forgotten (DELETE /v1/auth/token).
func (s *Server) handleTokenDelete(w http.ResponseWriter, r *http.Request) {
	tok, _, ok := bearer(r)
	if !ok || s.accounts == nil {
		apiError(w, http.StatusBadRequest, "log out with the token to end: Authorization: Bearer TOKEN, or the %s cookie", TokenCookie)
		return
	}
	p := principalOf(r)
	if err := s.accounts.RevokeSession(p.Session); err != nil && !errors.Is(err, ErrNoSession) {
		s.storageError(w, r, "", fmt.Errorf("log out: %w", err))
		return
	}
	s.web.remove(tok)
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

type sessionAnswer struct {
	Auth    bool     `json:"auth"`
	User    string   `json:"user,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	Session string   `json:"session,omitempty"`
	Expires string   `json:"expires,omitempty"`
}

// handleSession says whether the server authenticates and who the
// request's principal is (GET /v1/auth/session).
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		writeJSON(w, sessionAnswer{})
		return
	}
	a := sessionAnswer{Auth: true, User: p.User, Roles: p.Roles, Session: p.Session.String()}
	if ws, ok := webSessionFrom(r.Context()); ok {
		a.Expires = formatTime(ws.expires)
	}
	writeJSON(w, a)
}

// webSessionKey holds a request's web session in its context.
type webSessionKey struct{}

func webSessionFrom(ctx interface{ Value(any) any }) (*webSession, bool) {
	ws, ok := ctx.Value(webSessionKey{}).(*webSession)
	return ws, ok
}
