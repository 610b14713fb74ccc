package goatdb

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/transport"
)

// Login is this peer's login to one server: the session certificate the
// server issued, as stored in the data directory.
type Login struct {
	// Server is the server's URL, normalised (NormalizeServerURL).
	Server string
	// User is the user the session acts for; "" is an anonymous session
	// (DB.Register).
	User string
	// Roles are the user's roles, sorted.
	Roles []string
	// Session is this peer's session id, which the certificate names.
	Session commit.SessionID
	// Expires is when the certificate ends; the zero time when a server's
	// WhoAmI answer names none. Syncs renew it automatically once less
	// than half of its lifetime is left.
	Expires time.Time
}

// renewRetry is how long a failed renewal is not tried again.
const renewRetry = time.Minute

// Login logs this peer's session in to the goatdb server at serverURL
// with the application's credentials, sent as JSON (the server's
// Authenticator reads them; goatdb's one-time codes are LoginCode's). The
// server answers with a session certificate binding this peer's key to a
// user and roles, which Login verifies before it stores it in the data
// directory (DIR/credentials.json): the certificate must decode
// canonically, name this peer's session, not have expired, and chain to
// the deployment's root key and audience the server named. The root key
// is pinned at the first login to a server: a later login that chains to
// another root is refused (an error wrapping authz.ErrUntrusted) until
// Logout forgets it. Nothing is stored when Login fails.
//
// From then on every request to that server is signed by this peer's key
// for that deployment, and syncs renew the certificate while it is valid
// and less than half of its lifetime is left. The error wraps
// ErrUnauthenticated (and *ServerError) if the server refused the
// credentials, and ErrUnreachable if it could not be reached. On a
// read-only database Login fails with ErrReadOnly.
func (db *DB) Login(ctx context.Context, serverURL string, credentials any) (Login, error) {
	body, err := json.Marshal(credentials)
	if err != nil {
		return Login{}, fmt.Errorf("goatdb: login to %s: credentials: %w", serverURL, err)
	}
	return db.certify(ctx, serverURL, "login", body, "", "the server refused the credentials")
}

// LoginCode logs in to the server at serverURL as user with a one-time
// login code (made on the server by 'goatdb user add'); see Login. The
// certificate must name user.
func (db *DB) LoginCode(ctx context.Context, serverURL, user, code string) (Login, error) {
	body, err := json.Marshal(struct {
		User string `json:"user"`
		Code string `json:"code"`
	}{user, code})
	if err != nil {
		return Login{}, err
	}
	return db.certify(ctx, serverURL, "login", body, user,
		fmt.Sprintf("login refused: check the user and the code (a code works once, until it expires; 'goatdb user add %s' on the server makes a new one)", user))
}

// Register asks the server at serverURL for an anonymous certificate for
// this peer's session (Login.User ""), which servers that allow anonymous
// sessions give; others answer 403 (a *ServerError). The certificate is
// checked and stored as Login's.
func (db *DB) Register(ctx context.Context, serverURL string) (Login, error) {
	return db.certify(ctx, serverURL, "register", nil, "", "")
}

// Logins returns the logins stored in the data directory, sorted by
// server URL, expired ones included (see Login.Expires). A missing or
// damaged credentials file means none.
func (db *DB) Logins() []Login {
	var out []Login
	for u, c := range db.creds.all() {
		out = append(out, c.login(u))
	}
	slices.SortFunc(out, func(a, b Login) int { return strings.Compare(a.Server, b.Server) })
	return out
}

// Logout tells the server at serverURL to revoke this peer's session,
// then forgets the stored login (and with it the pinned root key). The
// login is forgotten even if the server cannot be reached or refuses:
// the error then says so, and wraps the cause (ErrUnreachable,
// *ServerError); the session stays valid on the server until its
// certificate expires or an admin revokes it. A server that does not
// consider the session logged in (401) has nothing to revoke: that is
// not an error. On a read-only database Logout fails with ErrReadOnly.
func (db *DB) Logout(ctx context.Context, serverURL string) error {
	if db.opts.ReadOnly {
		return fmt.Errorf("goatdb: logout from %s: %w", serverURL, ErrReadOnly)
	}
	rm, err := db.remote(serverURL, nil)
	if err != nil {
		return err
	}
	var told error
	resp, err := rm.c.Do(ctx, http.MethodPost, transport.AuthPrefix+"logout", nil, nil)
	switch {
	case err != nil:
		told = err
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusUnauthorized:
		transport.Drain(resp)
	default:
		told = transport.ReadServerError(resp)
		resp.Body.Close()
	}
	ferr := db.creds.update(rm.url, func(credential, bool) (credential, bool, error) {
		return credential{}, false, nil
	})
	if told != nil {
		told = fmt.Errorf("goatdb: logout from %s: the login is forgotten here, but the server was not told and the session stays valid there until it expires or is revoked: %w", rm.url, told)
	}
	return errors.Join(told, ferr)
}

// WhoAmI asks the server at serverURL who it takes this peer's session
// for: its user ("" anonymous), roles and certificate expiry (zero if the
// server names none). The error wraps ErrUnauthenticated if the server
// does not accept the session.
func (db *DB) WhoAmI(ctx context.Context, serverURL string) (Login, error) {
	rm, err := db.remote(serverURL, nil)
	if err != nil {
		return Login{}, err
	}
	var ans struct {
		User    string   `json:"user"`
		Roles   []string `json:"roles"`
		Session string   `json:"session"`
		Expires string   `json:"expires"`
	}
	if err := rm.c.Call(ctx, http.MethodGet, "whoami", nil, "", &ans); err != nil {
		return Login{}, err
	}
	l := Login{Server: rm.url, User: ans.User, Roles: ans.Roles}
	if l.Session, err = commit.ParseSessionID(ans.Session); err != nil {
		return Login{}, fmt.Errorf("goatdb: whoami at %s: session %q: %v", rm.url, ans.Session, err)
	}
	if ans.Expires != "" {
		if l.Expires, err = time.Parse(time.RFC3339, ans.Expires); err != nil {
			return Login{}, fmt.Errorf("goatdb: whoami at %s: expires %q: %v", rm.url, ans.Expires, err)
		}
	}
	return l, nil
}

// certify runs a route that issues a certificate (login, register,
// renew), checks the certificate and stores it. user, if not "", is the
// user the certificate must name; hint is what a 401 tells to do ("" for
// logging in).
func (db *DB) certify(ctx context.Context, serverURL, route string, body []byte, user, hint string) (Login, error) {
	if db.opts.ReadOnly {
		return Login{}, fmt.Errorf("goatdb: %s at %s: %w", route, serverURL, ErrReadOnly)
	}
	rm, err := db.remote(serverURL, nil)
	if err != nil {
		return Login{}, err
	}
	return rm.certify(ctx, route, body, user, hint)
}

func (rm *remote) certify(ctx context.Context, route string, body []byte, user, hint string) (Login, error) {
	var ans authz.LoginAnswer
	if err := rm.c.Call(ctx, http.MethodPost, route, body, hint, &ans); err != nil {
		return Login{}, err
	}
	c, err := rm.db.checkAnswer(&ans, user)
	if a := rm.c.Audience(); err == nil && a != "" && a != c.audience {
		err = fmt.Errorf("%w: the server took the request for deployment %q but certifies for %q", authz.ErrUntrusted, a, c.audience)
	}
	if err == nil {
		err = rm.db.creds.update(rm.url, func(old credential, ok bool) (credential, bool, error) {
			if ok && !old.root.Equal(c.root) {
				return credential{}, false, fmt.Errorf("%w: the server's root key is %s, but this directory pinned %s at its first login there; if the deployment's root key really changed, run 'goatdb logout %s' and log in again",
					authz.ErrUntrusted, keyString(c.root), keyString(old.root), rm.url)
			}
			return c, true, nil
		})
	}
	if err != nil {
		return Login{}, fmt.Errorf("goatdb: %s at %s: %w", route, rm.url, err)
	}
	rm.c.SetAudience(c.audience)
	if node, err := base64.StdEncoding.DecodeString(ans.Node); err == nil && len(node) == ed25519.PublicKeySize {
		rm.c.SetNode(node)
	}
	return c.login(rm.url), nil
}

// checkAnswer decodes and verifies a certificate a server issued to this
// peer: canonical, for this session (and user, if not ""), chaining to
// the root and audience the server named, and not expired. A clock behind
// the server's does not refuse a certificate that starts in its future.
func (db *DB) checkAnswer(ans *authz.LoginAnswer, user string) (credential, error) {
	root, err := base64.StdEncoding.DecodeString(ans.Root)
	if err != nil || len(root) != ed25519.PublicKeySize {
		return credential{}, fmt.Errorf("%w: the root key %.64q is not a base64 Ed25519 public key", authz.ErrUntrusted, ans.Root)
	}
	cb, err := base64.StdEncoding.DecodeString(ans.Certificate)
	if err != nil {
		return credential{}, fmt.Errorf("%w: the certificate is not base64: %v", authz.ErrBadCertificate, err)
	}
	cert, err := authz.DecodeSessionCertificate(cb)
	if err != nil {
		return credential{}, err
	}
	switch {
	case cert.Session() != db.session:
		return credential{}, fmt.Errorf("%w: the certificate is for session %s, not this peer's %s", authz.ErrUntrusted, cert.Session(), db.session)
	case user != "" && cert.User() != user:
		return credential{}, fmt.Errorf("%w: the certificate is for user %q, not %q", authz.ErrUntrusted, cert.User(), user)
	}
	now := db.opts.Now()
	at := now
	if now.Before(cert.NotBefore()) {
		at = cert.NotBefore()
	}
	if err := cert.Verify(root, ans.Audience, at); err != nil {
		return credential{}, err
	}
	return credential{audience: ans.Audience, root: root, cert: cert}, nil
}

func keyString(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// storedAudience returns the audience of the stored login to the server,
// or "" if there is none (transport.Config.StoredAudience).
func (rm *remote) storedAudience() string {
	if c, ok := rm.db.creds.get(rm.url); ok {
		return c.audience
	}
	return ""
}

// maybeRenew renews the stored certificate for the server if it is valid
// and less than half of its lifetime is left; the transport calls it
// before every request outside /v1/auth/ (transport.Config.BeforeRequest).
// A failed renewal is logged and not tried again for renewRetry; the
// request goes on with the certificate it has.
func (rm *remote) maybeRenew(ctx context.Context) {
	if rm.db.opts.ReadOnly || rm.node || !rm.needsRenewal(rm.db.opts.Now()) {
		return
	}
	rm.renewMu.Lock()
	defer rm.renewMu.Unlock()
	now := rm.db.opts.Now()
	if now.Before(rm.renewAfter) || !rm.needsRenewal(now) {
		return // failed lately, or another request renewed it
	}
	l, err := rm.certify(ctx, "renew", nil, "", "")
	if err != nil {
		rm.renewAfter = now.Add(renewRetry)
		rm.db.opts.Logger.Warn("renewing the login failed; going on with the current certificate", "server", rm.url, "err", err)
		return
	}
	rm.db.opts.Logger.Debug("login renewed", "server", rm.url, "user", l.User, "expires", l.Expires)
}

// needsRenewal reports whether the stored certificate covers now with less
// than half of its lifetime left.
func (rm *remote) needsRenewal(now time.Time) bool {
	c, ok := rm.db.creds.get(rm.url)
	if !ok || !c.cert.Covers(now) {
		return false
	}
	life := c.cert.Expires().Sub(c.cert.NotBefore())
	return c.cert.Expires().Sub(now) < life/2
}
