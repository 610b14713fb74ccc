package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// The repositories that hold a deployment's accounts. Only root and node
// principals read or write them (authz's built-in rules), except that a
// session may read its own certificate item.
const (
	SessionsRepo    = "/sys/sessions"    // one item per session key: its certificates
	RevocationsRepo = "/sys/revocations" // one item per revocation record
	UsersRepo       = "/sys/users"       // one item per user: roles, disabled
	CodesRepo       = "/sys/codes"       // one item per login code, keyed by its hash
)

// Errors of account operations.
var (
	// ErrLoginRefused is returned when a login code is wrong, used or
	// expired, or the user is disabled.
	ErrLoginRefused = errors.New("server: login refused")
	// ErrNoUser is returned when an operation names a user that does not
	// exist.
	ErrNoUser = errors.New("server: no such user")
	// ErrNoSession is returned when an operation names a session the
	// server never certified.
	ErrNoSession = errors.New("server: no such session")
	// ErrSessionRevoked is returned for a session or user that was
	// revoked.
	ErrSessionRevoked = errors.New("server: session revoked")
	// ErrCertificateExpired is returned for a session whose certificates
	// have all expired.
	ErrCertificateExpired = errors.New("server: session certificate expired")
)

// AccountOptions tune the lifetimes of certificates and codes. The zero
// value means the defaults.
type AccountOptions struct {
	// CertLifetime is how long a user's session certificate lasts; 0
	// means 30 days.
	CertLifetime time.Duration
	// AnonymousLifetime is how long an anonymous certificate lasts; 0
	// means 7 days.
	AnonymousLifetime time.Duration
	// Grace is how long after its certificate expired a session's commits
	// made before the expiry are still accepted (an offline device); 0
	// means 7 days.
	Grace time.Duration
	// CodeLifetime is how long a login code works; 0 means 24 hours.
	CodeLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings about records that do not verify; nil
	// discards.
	Logger *slog.Logger
}

func (o AccountOptions) withDefaults() AccountOptions {
	if o.CertLifetime <= 0 {
		o.CertLifetime = 30 * 24 * time.Hour
	}
	if o.AnonymousLifetime <= 0 {
		o.AnonymousLifetime = 7 * 24 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = 7 * 24 * time.Hour
	}
	if o.CodeLifetime <= 0 {
		o.CodeLifetime = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// User is a user as the accounts know it.
type User struct {
	Name     string
	Roles    []string
	Disabled bool // revoked: no login, no renewal, every session void
}

// SessionInfo is a certified session.
type SessionInfo struct {
	Session   commit.SessionID
	User      string // "" for an anonymous session
	Roles     []string
	NotBefore time.Time // of its newest certificate
	Expires   time.Time // of its newest certificate
	Revoked   bool
}

// Accounts are a deployment's users, login codes, session certificates and
// revocations, kept in the /sys repositories of a database so that they
// replicate like data, and indexed in memory. The index follows the
// repositories: a change made by another process (goatdb user add on a
// stopped server) or received from a peer is seen at the next use.
// Accounts are safe for concurrent use.
type Accounts struct {
	db   *goatdb.DB
	id   *Identity
	opts AccountOptions

	opMu sync.Mutex // serializes operations that read then write (codes)

	mu      sync.RWMutex
	indexed [3]position                                      // of SessionsRepo, RevocationsRepo, UsersRepo
	certs   map[commit.SessionID][]*authz.SessionCertificate // sorted by NotBefore
	revItem map[string]*authz.Revocation                     // by item key
	revs    []*authz.Revocation                              // revItem's values
	users   map[string]User
	revoked chan struct{} // closed and replaced when revocations change

	// The /sys repositories, once open (the database keeps them open for
	// good), and which were missing when last looked for: a missing one
	// is not looked for on disk again until the database opens (creates)
	// it, which sysOpened sees. Every request reads the accounts' position,
	// so that costs no file system call.
	sysMu  sync.Mutex
	sys    [3]*repo.Repo
	absent [3]bool
}

// OpenAccounts returns the accounts kept in db for the deployment id.
func OpenAccounts(db *goatdb.DB, id *Identity, opts *AccountOptions) (*Accounts, error) {
	var o AccountOptions
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	if err := id.Validate(o.Now()); err != nil {
		return nil, err
	}
	a := &Accounts{db: db, id: id, opts: o, revoked: make(chan struct{})}
	db.OnRepoOpen(a.sysOpened)
	if err := a.refresh(); err != nil {
		return nil, err
	}
	return a, nil
}

// position is how far the index has read a /sys repository.
type position struct {
	epoch, seq uint64
	ok         bool // the repository was read at least once
}

// sysRepos are the repositories the index follows, in the order of
// Accounts.indexed.
var sysRepos = [3]string{SessionsRepo, RevocationsRepo, UsersRepo}

// sysOpened records a /sys repository the database opened (or created).
func (a *Accounts) sysOpened(path string, r *repo.Repo) {
	for i, p := range sysRepos {
		if p == path {
			a.sysMu.Lock()
			a.sys[i], a.absent[i] = r, false
			a.sysMu.Unlock()
		}
	}
}

// positionOf returns where /sys repository i (of sysRepos) is now (the
// zero position if it does not exist) and the repository.
func (a *Accounts) positionOf(i int) (position, *repo.Repo) {
	a.sysMu.Lock()
	r, absent := a.sys[i], a.absent[i]
	a.sysMu.Unlock()
	if r == nil || r.Closed() {
		if absent {
			return position{}, nil
		}
		var err error
		if r, err = a.db.LookupRepo(sysRepos[i]); err != nil {
			if errors.Is(err, goatdb.ErrNotFound) {
				a.sysMu.Lock()
				a.absent[i] = a.sys[i] == nil // unless it was opened meanwhile
				a.sysMu.Unlock()
			}
			return position{}, nil
		}
		a.sysMu.Lock()
		a.sys[i], a.absent[i] = r, false
		a.sysMu.Unlock()
	}
	return position{epoch: r.Epoch(), seq: r.Seq(), ok: true}, r
}

// refresh brings the index up to date with the /sys repositories: it
// rereads only the items written since it last read them (all of them
// after a log was rewritten), and verifies only certificates and records
// it has not verified before, so that a login costs a few item reads, not
// a pass over every session.
func (a *Accounts) refresh() error {
	var now [3]position
	var repos [3]*repo.Repo
	for i := range sysRepos {
		now[i], repos[i] = a.positionOf(i)
	}
	a.mu.RLock()
	same := a.certs != nil && now == a.indexed
	a.mu.RUnlock()
	if same {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.certs == nil {
		a.certs, a.revItem, a.users = map[commit.SessionID][]*authz.SessionCertificate{}, map[string]*authz.Revocation{}, map[string]User{}
	}
	revsChanged := false
	for i, path := range sysRepos {
		old, r := a.indexed[i], repos[i]
		if r == nil || old == now[i] {
			continue
		}
		var keys []string
		seq := now[i].seq
		if !old.ok || old.epoch != now[i].epoch {
			keys = r.Keys(true) // everything: a first read, or a rewritten log
			a.resetLocked(path)
		} else {
			keys, seq = r.Since(old.seq)
		}
		for _, k := range keys {
			if err := a.reindexLocked(path, k); err != nil {
				return err
			}
		}
		if path == RevocationsRepo {
			revsChanged = true
		}
		a.indexed[i] = position{epoch: now[i].epoch, seq: seq, ok: true}
	}
	if revsChanged {
		a.revs = a.revs[:0:0]
		for _, r := range a.revItem {
			a.revs = append(a.revs, r)
		}
		close(a.revoked)
		a.revoked = make(chan struct{})
	}
	return nil
}

// resetLocked forgets what the index holds of one repository.
func (a *Accounts) resetLocked(path string) {
	switch path {
	case SessionsRepo:
		clear(a.certs)
	case RevocationsRepo:
		clear(a.revItem)
	case UsersRepo:
		clear(a.users)
	}
}

// reindexLocked reads one item of a /sys repository into the index (or
// drops it, if it is gone or deleted).
func (a *Accounts) reindexLocked(path, key string) error {
	it, err := a.db.Get(path + "/" + key)
	gone := errors.Is(err, goatdb.ErrNotFound)
	if err != nil && !gone {
		return fmt.Errorf("server: load %s/%s: %w", path, key, err)
	}
	switch path {
	case SessionsRepo:
		sid, perr := commit.ParseSessionID(key)
		if perr != nil {
			a.opts.Logger.Warn("session item ignored: its key is not a session", "item", path+"/"+key)
			return nil
		}
		old := a.certs[sid]
		delete(a.certs, sid)
		if gone {
			return nil
		}
		known := make(map[string]*authz.SessionCertificate, len(old))
		for _, c := range old {
			known[base64.StdEncoding.EncodeToString(c.Encode())] = c
		}
		var cs []*authz.SessionCertificate
		for _, enc := range stringsOf(it, "certs") {
			c := known[enc]
			if c == nil {
				if c, err = a.decodeCert(enc); err != nil {
					a.opts.Logger.Warn("session certificate ignored", "item", it.Path(), "err", err)
					continue
				}
			}
			if c.Session() != sid {
				a.opts.Logger.Warn("session certificate ignored: it is another session's", "item", it.Path())
				continue
			}
			cs = append(cs, c)
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].NotBefore().Before(cs[j].NotBefore()) })
		if len(cs) > 0 {
			a.certs[sid] = cs
		}
	case RevocationsRepo:
		delete(a.revItem, key)
		if gone {
			return nil
		}
		rec, _ := it.Get("record").(string)
		r, err := a.decodeRevocation(rec)
		if err != nil {
			a.opts.Logger.Warn("revocation record ignored", "item", it.Path(), "err", err)
			return nil
		}
		a.revItem[key] = r
	case UsersRepo:
		delete(a.users, key)
		if gone {
			return nil
		}
		d, _ := it.Get("disabled").(bool)
		a.users[key] = User{Name: key, Roles: stringsOf(it, "roles"), Disabled: d}
	}
	return nil
}

// stringsOf returns a set-of-strings field of an item.
func stringsOf(it goatdb.Item, field string) []string {
	v, ok := it.Value(field)
	if !ok || v.Type() != item.TypeSet {
		return nil
	}
	var out []string
	for _, e := range v.Elems() {
		if e.Type() == item.TypeString {
			out = append(out, e.Str())
		}
	}
	return out
}

func (a *Accounts) decodeCert(s string) (*authz.SessionCertificate, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", authz.ErrBadCertificate)
	}
	c, err := authz.DecodeSessionCertificate(b)
	if err != nil {
		return nil, err
	}
	// Verify the chain at the certificate's own start: expiry is checked
	// where it matters, against the time of each use.
	if err := c.Verify(a.id.Root, a.id.Audience, c.NotBefore()); err != nil {
		return nil, err
	}
	return c, nil
}

func (a *Accounts) decodeRevocation(s string) (*authz.Revocation, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", authz.ErrBadCertificate)
	}
	r, err := authz.DecodeRevocation(b)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(a.id.Root, a.id.Audience); err != nil {
		return nil, err
	}
	return r, nil
}

// Revoked returns a channel that is closed when the revocations change.
func (a *Accounts) Revoked() <-chan struct{} {
	_ = a.refresh()
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.revoked
}

// revokedLocked reports whether a revocation voids cert for something
// received at t.
func (a *Accounts) revokedLocked(cert *authz.SessionCertificate, t time.Time) bool {
	for _, r := range a.revs {
		if r.Covers(cert, t) {
			return true
		}
	}
	return false
}

// Current returns the certificate that certifies session now: among those
// covering now and not revoked, the one issued last. The error wraps
// ErrSessionRevoked or ErrCertificateExpired when the session had
// certificates and none is usable, ErrNoSession when it never had one.
func (a *Accounts) Current(session commit.SessionID) (*authz.SessionCertificate, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	now := a.opts.Now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	cs := a.certs[session]
	if len(cs) == 0 {
		return nil, ErrNoSession
	}
	var revoked, expired bool
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		switch {
		case !c.Covers(now):
			expired = true
		case a.revokedLocked(c, now) || a.disabledLocked(c):
			revoked = true
		default:
			return c, nil
		}
	}
	if revoked {
		return nil, fmt.Errorf("%w: session %s was revoked; log in again (goatdb login)", ErrSessionRevoked, session)
	}
	_ = expired
	return nil, fmt.Errorf("%w: session %s has no certificate valid at %s; log in again (goatdb login)",
		ErrCertificateExpired, session, now.UTC().Format(time.RFC3339))
}

// disabledLocked reports whether cert's user was revoked as a user (so it
// may not log in or renew).
func (a *Accounts) disabledLocked(c *authz.SessionCertificate) bool {
	if c.User() == "" {
		return false
	}
	u, ok := a.users[c.User()]
	return ok && u.Disabled
}

// author returns the principal a commit stamped at t by session was made
// as, checking what a server checks before it accepts a commit (a
// certificate of the session covered t, no revocation voids it for a
// commit received now, and now is within the certificate's expiry plus the
// grace); err says why the commit must be refused, and anonymous is true
// when the session never had a certificate. It reads the index as it is,
// without looking for changes in the /sys repositories: its callers hold a
// repository's lock (a write rule runs inside repo.ReceiveChecked), where
// reading a repository could wait on that lock, so the policy refreshes
// the index before (authPolicy.View).
func (a *Accounts) author(session commit.SessionID, t time.Time) (p authz.Principal, anonymous bool, err error) {
	now := a.opts.Now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	cs := a.certs[session]
	if len(cs) == 0 {
		if session == sessionOf(a.id.NodeKey) {
			return a.id.Node.Principal(), false, nil
		}
		return authz.Principal{Session: session}, true, nil
	}
	var reason error
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		switch {
		case !c.Covers(t):
			if reason == nil {
				reason = fmt.Errorf("no valid session certificate at commit time %s", t.UTC().Format(time.RFC3339))
			}
		case a.revokedLocked(c, now):
			reason = errors.New("session revoked")
		case now.After(c.Expires().Add(a.opts.Grace)):
			reason = fmt.Errorf("session certificate expired at %s, more than %v ago; log in again and re-author the change",
				c.Expires().UTC().Format(time.RFC3339), a.opts.Grace)
		default:
			return c.Principal(), false, nil
		}
	}
	return authz.Principal{}, false, reason
}

func sessionOf(key []byte) commit.SessionID {
	var s commit.SessionID
	if len(key) == 64 {
		copy(s[:], key[32:])
	}
	return s
}

// AddUser creates user name with roles (or, if it exists, sets its roles
// and enables it again) and returns a new one-time login code for it and
// when the code expires.
func (a *Accounts) AddUser(name string, roles []string) (code string, expires time.Time, err error) {
	if err := validUser(name); err != nil {
		return "", time.Time{}, err
	}
	for _, r := range roles {
		if err := validUser(r); err != nil {
			return "", time.Time{}, fmt.Errorf("role %q: %w", r, err)
		}
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	rs := slices.Clone(roles)
	slices.Sort(rs)
	rs = slices.Compact(rs)
	if rs == nil {
		rs = []string{}
	}
	if _, err := a.db.Put(UsersRepo+"/"+name, goatdb.Fields{"roles": item.StringSet(rs...), "disabled": false}); err != nil {
		return "", time.Time{}, err
	}
	return a.newCodeLocked(name)
}

// NewCode returns a new one-time login code for an existing user.
func (a *Accounts) NewCode(name string) (code string, expires time.Time, err error) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if _, ok := a.user(name); !ok {
		return "", time.Time{}, fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	return a.newCodeLocked(name)
}

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (a *Accounts) newCodeLocked(name string) (string, time.Time, error) {
	var b [15]byte // 120 bits
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, err
	}
	code := codeEncoding.EncodeToString(b[:])
	code = code[:8] + "-" + code[8:16] + "-" + code[16:]
	expires := a.opts.Now().Add(a.opts.CodeLifetime).Truncate(time.Millisecond)
	if _, err := a.db.Put(CodesRepo+"/"+codeKey(code), goatdb.Fields{"user": name, "expires": item.Date(expires), "used": false}); err != nil {
		return "", time.Time{}, err
	}
	return code, expires, nil
}

// codeKey is the item key of a login code: a hash, so that reading the
// database does not reveal codes that still work.
func codeKey(code string) string {
	code = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	h := blake3.Sum256([]byte("goatdb-login-code\x00" + code))
	return hex.EncodeToString(h[:16])
}

func (a *Accounts) user(name string) (User, bool) {
	_ = a.refresh()
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.users[name]
	return u, ok
}

// Users lists the users, by name.
func (a *Accounts) Users() ([]User, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]User, 0, len(a.users))
	for _, u := range a.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Sessions lists the certified sessions, by user then session.
func (a *Accounts) Sessions() ([]SessionInfo, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	now := a.opts.Now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]SessionInfo, 0, len(a.certs))
	for s, cs := range a.certs {
		c := cs[len(cs)-1]
		out = append(out, SessionInfo{Session: s, User: c.User(), Roles: c.Roles(), NotBefore: c.NotBefore(),
			Expires: c.Expires(), Revoked: a.revokedLocked(c, now) || a.disabledLocked(c)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Session.String() < out[j].Session.String()
	})
	return out, nil
}

// LoginCode checks a one-time code for user and, if it is right, unused
// and not expired, uses it up and certifies session as the user.
func (a *Accounts) LoginCode(session commit.SessionID, user, code string) (*authz.SessionCertificate, error) {
	refused := fmt.Errorf("%w: the login code for %s is wrong, used or expired; ask for a new one (goatdb user add %s)", ErrLoginRefused, user, user)
	if validUser(user) != nil || code == "" {
		return nil, refused
	}
	a.opMu.Lock()
	defer a.opMu.Unlock()
	it, err := a.db.Get(CodesRepo + "/" + codeKey(code))
	if err != nil {
		return nil, refused
	}
	owner, _ := it.Get("user").(string)
	used, _ := it.Get("used").(bool)
	exp, ok := it.Value("expires")
	if subtle.ConstantTimeCompare([]byte(owner), []byte(user)) != 1 || used || !ok || exp.Type() != item.TypeDate || !a.opts.Now().Before(exp.Time()) {
		return nil, refused
	}
	u, ok := a.user(user)
	if !ok || u.Disabled {
		return nil, refused
	}
	if _, err := a.db.Put(it.Path(), goatdb.Fields{"used": true}); err != nil {
		return nil, err
	}
	return a.certify(session, u.Name, u.Roles, a.opts.CertLifetime)
}

// Certify certifies session as user with roles (an app's Authenticator
// decided who it is).
func (a *Accounts) Certify(session commit.SessionID, user string, roles []string) (*authz.SessionCertificate, error) {
	if u, ok := a.user(user); ok && u.Disabled {
		return nil, fmt.Errorf("%w: user %s is disabled", ErrLoginRefused, user)
	}
	return a.certify(session, user, roles, a.opts.CertLifetime)
}

// Register certifies session as anonymous.
func (a *Accounts) Register(session commit.SessionID) (*authz.SessionCertificate, error) {
	return a.certify(session, "", nil, a.opts.AnonymousLifetime)
}

// Renew certifies session again for a full lifetime, if it holds a valid
// certificate now; a user's roles are taken afresh from UsersRepo (so role
// changes take effect at renewal).
func (a *Accounts) Renew(session commit.SessionID) (*authz.SessionCertificate, error) {
	c, err := a.Current(session)
	if err != nil {
		return nil, err
	}
	life, roles := a.opts.AnonymousLifetime, []string(nil)
	if c.User() != "" {
		life, roles = a.opts.CertLifetime, c.Roles()
		if u, ok := a.user(c.User()); ok {
			roles = u.Roles
		}
	}
	// A certificate with more than half its lifetime left and the same
	// roles is answered as it is: renewing in a loop writes nothing.
	if c.Expires().Sub(a.opts.Now()) > life/2 && slices.Equal(sortedCopy(roles), c.Roles()) {
		return c, nil
	}
	return a.certify(session, c.User(), roles, life)
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

// certify issues a certificate and stores it.
func (a *Accounts) certify(session commit.SessionID, user string, roles []string, life time.Duration) (*authz.SessionCertificate, error) {
	now := a.opts.Now()
	exp := now.Add(life)
	if ne := a.id.Node.Expires(); exp.After(ne) {
		exp = ne
	}
	c, err := authz.Issue(a.id.NodeKey, a.id.Node, authz.SessionFields{Session: session, User: user, Roles: roles,
		NotBefore: a.notBefore(session, user, now), Expires: exp, Audience: a.id.Audience})
	if err != nil {
		return nil, err
	}
	a.mu.RLock()
	old := a.certs[session]
	a.mu.RUnlock()
	keep := []string{base64.StdEncoding.EncodeToString(c.Encode())}
	for _, o := range old {
		// Certificates that can no longer admit a commit are dropped.
		if now.Before(o.Expires().Add(a.opts.Grace)) {
			keep = append(keep, base64.StdEncoding.EncodeToString(o.Encode()))
		}
	}
	if _, err := a.db.Put(SessionsRepo+"/"+session.String(), goatdb.Fields{"user": user, "certs": item.StringSet(keep...)}); err != nil {
		return nil, err
	}
	return c, a.refresh()
}

// certSkew is how far before its issue a certificate starts, so that a
// device whose clock is a little behind the server's can write as soon as
// it logs in.
const certSkew = 5 * time.Minute

// notBefore returns the start of a certificate issued now: certSkew ago,
// but never before a revocation that voids the session's or user's
// earlier certificates (a certificate counts as issued at its start), so
// that a login right after a revocation is valid.
func (a *Accounts) notBefore(session commit.SessionID, user string, now time.Time) time.Time {
	nb := now.Add(-certSkew)
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, r := range a.revs {
		f := r.Fields()
		if (f.User == "" && f.Session == session || f.User != "" && f.User == user) &&
			f.NotBeforeIssued.Before(authz.MaxTime) && f.NotBeforeIssued.After(nb) {
			nb = f.NotBeforeIssued
		}
	}
	if nnb := a.id.Node.NotBefore(); nb.Before(nnb) {
		nb = nnb // a session certificate lies inside its node's
	}
	if nb.After(now) {
		nb = now
	}
	return nb
}

// RevokeSession voids every certificate of session from now on.
func (a *Accounts) RevokeSession(session commit.SessionID) error {
	if err := a.refresh(); err != nil {
		return err
	}
	a.mu.RLock()
	_, ok := a.certs[session]
	a.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSession, session)
	}
	now := a.opts.Now()
	return a.revoke(authz.RevocationFields{Session: session, RevokedAt: now, NotBeforeIssued: now})
}

// RevokeUser disables user and voids every certificate issued to it
// before now; it may log in again only after a new AddUser.
func (a *Accounts) RevokeUser(name string) error {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	if _, ok := a.user(name); !ok {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	if _, err := a.db.Put(UsersRepo+"/"+name, goatdb.Fields{"disabled": true}); err != nil {
		return err
	}
	now := a.opts.Now()
	return a.revoke(authz.RevocationFields{User: name, RevokedAt: now, NotBeforeIssued: now})
}

func (a *Accounts) revoke(f authz.RevocationFields) error {
	f.Audience = a.id.Audience
	r, err := authz.Revoke(a.id.NodeKey, a.id.Node, f)
	if err != nil {
		return err
	}
	b := r.Encode()
	h := blake3.Sum256(b)
	target := "user:" + f.User
	if f.User == "" {
		target = "session:" + f.Session.String()
	}
	if _, err := a.db.Put(RevocationsRepo+"/"+hex.EncodeToString(h[:16]),
		goatdb.Fields{"record": base64.StdEncoding.EncodeToString(b), "target": target}); err != nil {
		return err
	}
	return a.refresh()
}

// validUser checks a user or role name: 1–128 characters of A-Z a-z 0-9 .
// _ - (so /user/NAME is a path).
func validUser(name string) error {
	if err := commit.ValidKey(name); err != nil || name == "." || name == ".." {
		return fmt.Errorf("server: %q is not a user name: use 1–128 characters of A-Z a-z 0-9 . _ -", name)
	}
	return nil
}

func (a *Accounts) answer(c *authz.SessionCertificate) authz.LoginAnswer {
	roles := c.Roles()
	if roles == nil {
		roles = []string{}
	}
	return authz.LoginAnswer{User: c.User(), Roles: roles, Session: c.Session().String(),
		Certificate: base64.StdEncoding.EncodeToString(c.Encode()),
		Expires:     c.Expires().UTC().Format(time.RFC3339), Audience: a.id.Audience,
		Root: base64.StdEncoding.EncodeToString(a.id.Root),
		Node: base64.StdEncoding.EncodeToString(a.id.Node.Key())}
}

// Authenticator is an application's own login: it reads the credentials
// a client sent to /v1/auth/login (the request body, as JSON) and says
// which user the session is, with which roles, or why not. Password,
// OIDC or magic-link checks go here. It is called concurrently.
type Authenticator interface {
	Authenticate(ctx context.Context, session commit.SessionID, credentials json.RawMessage) (user string, roles []string, err error)
}

// userOf returns the user a session was certified for ("" if none).
func (a *Accounts) userOf(session commit.SessionID) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	cs := a.certs[session]
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1].User()
}

// EvictRevocations deletes the revocation records that can no longer
// refuse anything: every certificate they cover has expired more than the
// grace ago, so no commit made under one is accepted anyway. A record
// that voids certificates for good (NotBeforeIssued is authz.MaxTime) is
// kept. It returns how many records it deleted. Revocations grow with
// logouts; evicting keeps them bounded by the sessions of one lifetime.
func (a *Accounts) EvictRevocations() (int, error) {
	if err := a.refresh(); err != nil {
		return 0, err
	}
	now := a.opts.Now()
	life := max(a.opts.CertLifetime, a.opts.AnonymousLifetime)
	var dead []string
	a.mu.RLock()
	for _, r := range a.revs {
		f := r.Fields()
		if !f.NotBeforeIssued.Before(authz.MaxTime) {
			continue
		}
		// A covered certificate was issued before NotBeforeIssued, so it
		// expires before NotBeforeIssued + the longest lifetime.
		if now.Before(f.NotBeforeIssued.Add(life + a.opts.Grace)) {
			continue
		}
		if a.coversUsableLocked(r, now) {
			continue
		}
		h := blake3.Sum256(r.Encode())
		dead = append(dead, RevocationsRepo+"/"+hex.EncodeToString(h[:16]))
	}
	a.mu.RUnlock()
	for _, p := range dead {
		if err := a.db.Delete(p); err != nil && !errors.Is(err, goatdb.ErrNotFound) {
			return 0, err
		}
	}
	if len(dead) > 0 {
		return len(dead), a.refresh()
	}
	return 0, nil
}

// coversUsableLocked reports whether r voids a known certificate that
// could still admit a commit (it has not expired by more than the grace).
func (a *Accounts) coversUsableLocked(r *authz.Revocation, now time.Time) bool {
	for _, cs := range a.certs {
		for _, c := range cs {
			if r.Covers(c, authz.MaxTime) && now.Before(c.Expires().Add(a.opts.Grace)) {
				return true
			}
		}
	}
	return false
}
