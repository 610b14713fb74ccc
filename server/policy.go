package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// authPolicy is the syncproto.Policy of a server with authentication: it
// checks every incoming commit as DESIGN §8 says (a certificate covered
// its author at its time, no revocation voids it, it arrived within the
// certificate's expiry plus the grace, the write rule allows it) and
// restricts what a session reads to the items the rules let it read.
// Commits relayed by a node or the root are trusted to have been checked
// where they were first accepted.
type authPolicy struct {
	rules     *authz.Rules
	accounts  *Accounts
	anonymous bool
	version   string // changes with every start: views cached by clients are rebuilt once
}

func newAuthPolicy(rules *authz.Rules, accounts *Accounts, anonymous bool) *authPolicy {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &authPolicy{rules: rules, accounts: accounts, anonymous: anonymous, version: hex.EncodeToString(b[:])}
}

// trusted reports whether the request's principal is a node or the root.
func trusted(ctx context.Context) (authz.Principal, bool) {
	p, ok := PrincipalFrom(ctx)
	return p, ok && (p.Node || p.Root)
}

// author returns the principal c's author acted as when it made c, or why
// c must be refused.
//
// View brings the accounts' index up to date before a request's commits
// are accepted; AdmitCommit runs inside the repository's lock and must not
// read repositories, so both checks use the index as View left it.
func (a *authPolicy) author(c *commit.Commit) (authz.Principal, error) {
	p, anon, err := a.accounts.author(c.Session(), time.UnixMilli(c.Time()))
	switch {
	case err != nil:
		return authz.Principal{}, err
	case anon && !a.anonymous:
		return authz.Principal{}, fmt.Errorf("no valid session certificate at commit time %s: its author never logged in here",
			time.UnixMilli(c.Time()).UTC().Format(time.RFC3339))
	}
	return p, nil
}

// AcceptCommit checks the author's certificate, revocations and the grace.
func (a *authPolicy) AcceptCommit(ctx context.Context, _ string, c *commit.Commit) error {
	if _, ok := trusted(ctx); ok || c.IsMerge() {
		return nil
	}
	_, err := a.author(c)
	return err
}

// AdmitCommit asks the write rule, as the commit's author.
func (a *authPolicy) AdmitCommit(ctx context.Context, path string, c *commit.Commit, before, after item.Item) error {
	if _, ok := trusted(ctx); ok {
		return nil
	}
	p, err := a.author(c)
	if err != nil {
		return err
	}
	return a.rules.MayWrite(ctx, p, path+"/"+c.Key(), before, after)
}

// unknownRepo is the error for a repository a session may not read: the
// same as for one that does not exist.
func unknownRepo(path string) error {
	return fmt.Errorf("%w: %s does not exist on this server", syncproto.ErrUnknownRepo, path)
}

// readable reports whether the request's principal may read repository
// path as a whole: true for nodes and the root, for a repository whose
// rule decides per item (the view then decides item by item), and for one
// whose repository-wide rule allows it.
func (a *authPolicy) readable(ctx context.Context, path string) bool {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.Node || p.Root || a.rules.RepoScope(path) == authz.ByItem {
		return true
	}
	return a.rules.MayRead(ctx, p, path+"/x", item.Item{}) == nil
}

// View restricts a session to what it may read. A repository it may not
// read at all gives a view of only its own commits (a drop box it may
// write to); the server's Repos answers such a repository as missing to a
// request that brings nothing, as it answers a repository that does not
// exist.
func (a *authPolicy) View(ctx context.Context, path string, r syncproto.Repo) (syncproto.View, error) {
	p, ok := trusted(ctx)
	if ok {
		return nil, nil
	}
	// The Responder asks for the view before it accepts any commit: bring
	// the accounts' index up to date here, so that a failure to read it
	// fails the repository's section (retryable) instead of refusing
	// commits for good.
	if err := a.accounts.refresh(); err != nil {
		return nil, fmt.Errorf("server: reading the accounts: %w", err)
	}
	if a.rules.RepoScope(path) == authz.ByRepo {
		if a.rules.MayRead(ctx, p, path+"/x", item.Item{}) != nil {
			return &ownView{p: p, policy: a, key: a.viewKey(p) + "\x00own"}, nil
		}
		return nil, nil
	}
	rr, ok := r.(*repo.Repo)
	if !ok {
		return nil, errors.New("server: per-item read rules need a *repo.Repo")
	}
	return &itemView{ownView: ownView{p: p, policy: a, key: a.viewKey(p)}, ctx: ctx, path: path, repo: rr}, nil
}

// viewKey names what a principal's view depends on: the user and roles
// (sessions of one user share a view), or the session itself for an
// anonymous one, and the rules.
func (a *authPolicy) viewKey(p authz.Principal) string {
	if p.User == "" {
		return a.version + "\x00s\x00" + p.Session.String()
	}
	roles := slices.Clone(p.Roles)
	slices.Sort(roles)
	return a.version + "\x00u\x00" + p.User + "\x00" + strings.Join(roles, ",")
}

// ownView is the view of a repository a session may not read: only the
// commits of its own user's sessions.
type ownView struct {
	p      authz.Principal
	policy *authPolicy
	key    string
}

func (v *ownView) Key() string { return v.key }

func (v *ownView) MayRead(string) bool { return false }

// Own reports whether c was written by one of the view's sessions: the
// session itself, or any session of its user.
func (v *ownView) Own(c *commit.Commit) bool {
	if c.Session() == v.p.Session {
		return true
	}
	return v.p.User != "" && v.policy.accounts.userOf(c.Session()) == v.p.User
}

// itemView is a view decided item by item.
type itemView struct {
	ownView
	ctx  context.Context
	path string
	repo *repo.Repo
}

func (v *itemView) MayRead(key string) bool {
	it, _, _ := v.repo.Get(key)
	return v.policy.rules.MayRead(v.ctx, v.p, v.path+"/"+key, it) == nil
}
