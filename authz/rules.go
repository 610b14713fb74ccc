package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/goatdb/goatdb/item"
)

// Scope says what a rule's Read depends on, so that a server knows which
// decisions it may cache.
type Scope uint8

const (
	// ByItem means Read may look at the item's key and value: it is asked
	// again for each item, and again when the item changes. The zero
	// Scope, so a rule that does not say is never cached wrongly.
	ByItem Scope = iota
	// ByRepo means Read looks at neither the item's key nor its value,
	// only at the principal, Ref.Repo and the Vars of the repository's
	// segments: one answer holds for every item of a repository.
	ByRepo
)

func (s Scope) String() string {
	if s == ByRepo {
		return "ByRepo"
	}
	return "ByItem"
}

// Ref names the item a rule decides about.
type Ref struct {
	Repo string // /type/repo
	Key  string // the item key
	Path string // /type/repo/key
	// Vars holds the values of the matching pattern's {name} segments.
	// Each decision gets its own map.
	Vars map[string]string
}

// Rule decides reads and writes for the paths of one pattern. A nil Read
// allows no reads and a nil Write no writes. Both are called concurrently,
// must not block for long, and see ctx of the decision. A panic in either
// is recovered and denies.
type Rule struct {
	// Read reports whether p may read the item (its whole history). it is
	// the item's current value.
	Read func(ctx context.Context, p Principal, ref Ref, it item.Item) bool
	// Write decides one commit by its author p: before is the item's value
	// at the commit's parents (merged; the zero Item for a new item) and
	// after its value at the commit. nil allows; an error is the reason
	// sent back to the writer.
	Write func(ctx context.Context, p Principal, ref Ref, before, after item.Item) error
	// Scope says what Read depends on.
	Scope Scope
}

// Builder collects rules for Compile. The zero Builder is empty and ready.
type Builder struct {
	entries []builderEntry
	version string
}

// Version names the version of the rules' code, which the fingerprint
// (Rules.Fingerprint) cannot see: give it a new name whenever a Read or
// Write function changes, so that nodes running different code refuse to
// replicate with each other.
func (b *Builder) Version(v string) { b.version = v }

type builderEntry struct {
	pattern string
	rule    Rule
}

// Handle adds rule for the paths pattern matches. Errors in the pattern
// are reported by Compile.
func (b *Builder) Handle(pattern string, rule Rule) {
	b.entries = append(b.entries, builderEntry{pattern, rule})
}

// Compile checks the patterns and returns the rules. The error joins every
// problem (each matching ErrBadRule and naming its pattern): a pattern that
// does not parse, or two patterns that are equally specific and match the
// same paths.
func (b *Builder) Compile() (*Rules, error) {
	r := &Rules{version: b.version}
	var errs []error
	shapes := map[string]string{} // shape → the first pattern with it
	for _, e := range b.entries {
		p, err := parsePattern(e.pattern)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, ok := shapes[p.shape()]; ok {
			errs = append(errs, fmt.Errorf("%w: patterns %q and %q are equally specific and match the same paths",
				ErrBadRule, first, p.src))
			continue
		}
		shapes[p.shape()] = p.src
		r.rules = append(r.rules, compiled{p, e.rule})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Most specific first, so the first match is the one that applies.
	slices.SortStableFunc(r.rules, func(a, b compiled) int { return a.pattern.compare(b.pattern) })
	return r, nil
}

// Rules decide who may read and write which paths. Build them with a
// Builder, DefaultRules, OpenRules or ParseRulesFile. Rules are immutable
// and safe for concurrent use; a nil *Rules has only the built-in rules.
//
// A decision for a principal p and an item path:
//
//  1. Root and node principals may read and write every path; no rule is
//     consulted.
//  2. The built-in rules, which no app rule can weaken: under /sys/ only
//     the above may read or write, except that a session may read its own
//     certificate item /sys/sessions/<session>; under /user/<uid>/ only the
//     principal whose User is uid may read or write. A refusal here is
//     final.
//  3. The app rule of the most specific pattern matching the path decides.
//     Under /sys/ and /user/ it can only refuse what step 2 allowed: both
//     must allow. If no pattern matches, a path under /sys/ or /user/ is
//     decided by step 2 alone, and any other path is denied.
type Rules struct {
	rules   []compiled // most specific first
	version string     // Builder.Version
	source  []byte     // the rules file's text, for rules parsed from one
}

// Fingerprint names the rules, so that the nodes of a deployment can
// check that they enforce the same ones (a node refuses to replicate with
// a peer whose rules differ): a hash of the patterns, their scopes,
// which of Read and Write each has, the Builder's Version, and the rules
// file's text for rules parsed from one. Rules built in Go whose
// functions changed look the same unless Version changed too.
func (r *Rules) Fingerprint() string {
	h := sha256.New()
	io.WriteString(h, "goatdb rules 1\n")
	if r != nil {
		for _, c := range r.rules {
			fmt.Fprintf(h, "%q %d %t %t\n", c.pattern.src, c.rule.Scope, c.rule.Read != nil, c.rule.Write != nil)
		}
		fmt.Fprintf(h, "version %q\n", r.version)
		h.Write(r.source)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

type compiled struct {
	pattern *pattern
	rule    Rule
}

// Patterns returns the app rules' patterns, most specific first.
func (r *Rules) Patterns() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.rules))
	for i, c := range r.rules {
		out[i] = c.pattern.src
	}
	return out
}

// lookup returns the most specific app rule for parts, or nil.
func (r *Rules) lookup(parts []string) *compiled {
	if r == nil {
		return nil
	}
	for i := range r.rules {
		if r.rules[i].pattern.match(parts) {
			return &r.rules[i]
		}
	}
	return nil
}

// MayRead returns nil if p may read the item at path, whose current value
// is it, or why not (matching ErrDenied).
func (r *Rules) MayRead(ctx context.Context, p Principal, path string, it item.Item) error {
	return r.decide(ctx, p, path, "read", func(c *compiled, ref Ref) error {
		if c.rule.Read == nil {
			return fmt.Errorf("%w: read %s: rule %s allows no reads", ErrDenied, path, c.pattern.src)
		}
		ok, err := callRead(ctx, c.rule.Read, p, ref, it)
		if err != nil || !ok {
			return fmt.Errorf("%w: read %s: refused by rule %s%s", ErrDenied, path, c.pattern.src, suffix(err))
		}
		return nil
	})
}

// MayWrite returns nil if p may write a commit that changes the item at
// path from before (the zero Item for a new item) to after, or why not
// (matching ErrDenied, and wrapping the rule's reason).
func (r *Rules) MayWrite(ctx context.Context, p Principal, path string, before, after item.Item) error {
	return r.decide(ctx, p, path, "write", func(c *compiled, ref Ref) error {
		if c.rule.Write == nil {
			return fmt.Errorf("%w: write %s: rule %s allows no writes", ErrDenied, path, c.pattern.src)
		}
		if err := callWrite(ctx, c.rule.Write, p, ref, before, after); err != nil {
			return fmt.Errorf("%w: write %s: rule %s: %w", ErrDenied, path, c.pattern.src, err)
		}
		return nil
	})
}

// decide runs the steps of a decision; run applies the app rule.
func (r *Rules) decide(ctx context.Context, p Principal, path, op string, run func(*compiled, Ref) error) error {
	if p.trusted() {
		return nil
	}
	parts, err := splitPath(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDenied, op, err)
	}
	governed, err := builtin(p, parts, op)
	if err != nil {
		return err
	}
	c := r.lookup(parts)
	if c == nil {
		if governed {
			return nil
		}
		return fmt.Errorf("%w: %s %s: no rule matches the path", ErrDenied, op, path)
	}
	ref := Ref{Repo: "/" + parts[0] + "/" + parts[1], Key: parts[2], Path: path, Vars: c.pattern.bind(parts)}
	return run(c, ref)
}

// builtin applies the built-in rules to an untrusted principal: governed
// is true for paths they cover, and err refuses.
func builtin(p Principal, parts []string, op string) (governed bool, err error) {
	path := "/" + strings.Join(parts, "/")
	switch parts[0] {
	case "sys":
		if op == "read" && parts[1] == "sessions" && !p.Session.IsZero() && parts[2] == p.Session.String() {
			return true, nil
		}
		return true, fmt.Errorf("%w: %s %s: only root and node principals %s under /sys (a session reads its own /sys/sessions/<session>)",
			ErrDenied, op, path, op)
	case "user":
		if p.User != "" && parts[1] == p.User {
			return true, nil
		}
		return true, fmt.Errorf("%w: %s %s: only user %s may %s under /user/%s", ErrDenied, op, path, parts[1], op, parts[1])
	}
	return false, nil
}

// RepoScope says whether every item of the repository repo (/type/repo)
// gets the same read decision for a given principal: ByRepo if so (a
// server may decide once, for any one of its items, and cache the answer
// until the rules change), ByItem if the decision may differ per item. It
// is ByRepo when no rule that can match an item of repo names the item
// segment literally, the rule every item then gets is ByRepo, and the
// repository is not /sys/sessions.
func (r *Rules) RepoScope(repo string) Scope {
	parts, err := splitPath(repo + "/x")
	if err != nil || repo == "/sys/sessions" {
		return ByItem
	}
	var winner *compiled
	if r != nil {
		for i := range r.rules {
			c := &r.rules[i]
			if !c.pattern.matchesRepo(parts[:2]) {
				continue
			}
			if len(c.pattern.segs) == 3 && c.pattern.segs[2].kind == segLiteral {
				return ByItem
			}
			if winner == nil {
				winner = c
			}
		}
	}
	if winner == nil || winner.rule.Scope == ByRepo {
		return ByRepo
	}
	return ByItem
}

// matchesRepo reports whether p can match an item of the repository whose
// parts are repo: its first two segments match repo.
func (p *pattern) matchesRepo(repo []string) bool {
	for i, s := range p.segs {
		switch {
		case s.kind == segRest || i >= len(repo):
			return true
		case s.kind == segLiteral && s.text != repo[i]:
			return false
		}
	}
	return true
}

// Check runs the write decision for a commit by p that changes the item at
// path from before to after, as a server does, without one: the seam for
// testing an app's rules.
func Check(r *Rules, p Principal, path string, before, after item.Item) error {
	return r.MayWrite(context.Background(), p, path, before, after)
}

// CheckRead runs the read decision for the item at path with value it, as
// a server does, without one.
func CheckRead(r *Rules, p Principal, path string, it item.Item) error {
	return r.MayRead(context.Background(), p, path, it)
}

// callRead calls a Read rule, turning a panic into an error.
func callRead(ctx context.Context, f func(context.Context, Principal, Ref, item.Item) bool, p Principal, ref Ref, it item.Item) (ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			ok, err = false, fmt.Errorf("rule panicked: %v", v)
		}
	}()
	return f(ctx, p, ref, it), nil
}

// callWrite calls a Write rule, turning a panic into an error.
func callWrite(ctx context.Context, f func(context.Context, Principal, Ref, item.Item, item.Item) error, p Principal, ref Ref, before, after item.Item) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("rule panicked: %v", v)
		}
	}()
	return f(ctx, p, ref, before, after)
}

func suffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// DefaultRules are the rules of a deployment that says nothing else: users
// who are logged in (User is not "") read and write everything under
// /data/; anonymous sessions nothing there. With the built-in rules, each
// user reads and writes /user/<user>/, and only root and nodes /sys/.
func DefaultRules() *Rules {
	loggedIn := Rule{
		Read: func(_ context.Context, p Principal, _ Ref, _ item.Item) bool { return p.User != "" },
		Write: func(_ context.Context, p Principal, _ Ref, _, _ item.Item) error {
			if p.User == "" {
				return errors.New("log in to write")
			}
			return nil
		},
		Scope: ByRepo,
	}
	return mustCompile("goatdb default rules", "/data/**", loggedIn)
}

// OpenRules let every session, anonymous or not, read and write every
// path outside /sys/ and /user/ — for development only. The built-in rules
// still hold.
func OpenRules() *Rules {
	return mustCompile("goatdb open rules", "/**", Rule{
		Read:  func(context.Context, Principal, Ref, item.Item) bool { return true },
		Write: func(context.Context, Principal, Ref, item.Item, item.Item) error { return nil },
		Scope: ByRepo,
	})
}

func mustCompile(version, pattern string, rule Rule) *Rules {
	var b Builder
	b.Version(version)
	b.Handle(pattern, rule)
	r, err := b.Compile()
	if err != nil {
		panic(err) // the patterns above are fixed
	}
	return r
}
