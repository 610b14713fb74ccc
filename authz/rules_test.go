package authz_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
)

var (
	alice = authz.Principal{Session: sessionOf(key(20)), User: "alice", Roles: []string{"team"}}
	bob   = authz.Principal{Session: sessionOf(key(21)), User: "bob"}
	anon  = authz.Principal{Session: sessionOf(key(22))}
	root  = authz.RootPrincipal(pub(rootKey))
	node  = authz.Principal{Session: sessionOf(nodeKey), Node: true}
)

func allowAll() authz.Rule {
	return authz.Rule{
		Read:  func(context.Context, authz.Principal, authz.Ref, item.Item) bool { return true },
		Write: func(context.Context, authz.Principal, authz.Ref, item.Item, item.Item) error { return nil },
	}
}

func compile(t *testing.T, rules map[string]authz.Rule) *authz.Rules {
	t.Helper()
	var b authz.Builder
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range rules {
			if !yield(p) {
				return
			}
		}
	}) {
		b.Handle(p, rules[p])
	}
	r, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func owned(owner string) item.Item {
	return item.New(map[string]item.Value{"owner": item.String(owner), "title": item.String("t")})
}

// decide returns the read and write decisions as a short string: "rw",
// "r-", "-w" or "--".
func decide(r *authz.Rules, p authz.Principal, path string) string {
	out := []byte("--")
	if authz.CheckRead(r, p, path, owned("alice")) == nil {
		out[0] = 'r'
	}
	if authz.Check(r, p, path, item.Item{}, owned("alice")) == nil {
		out[1] = 'w'
	}
	return string(out)
}

func TestDefaultDeny(t *testing.T) {
	tasksOnly := compile(t, map[string]authz.Rule{"/data/tasks/{item}": allowAll()})
	noWrite := compile(t, map[string]authz.Rule{"/data/{repo}/{item}": {Read: allowAll().Read}})
	tests := []struct {
		name  string
		rules *authz.Rules
		path  string
		want  string
		why   string
	}{
		{"nil rules", nil, "/data/tasks/x", "--", "no rule matches"},
		{"empty rules", compile(t, nil), "/data/tasks/x", "--", "no rule matches"},
		{"unmatched repository", tasksOnly, "/data/notes/x", "--", "no rule matches"},
		{"unmatched type", tasksOnly, "/other/tasks/x", "--", "no rule matches"},
		{"matched", tasksOnly, "/data/tasks/x", "rw", ""},
		{"nil Write", noWrite, "/data/tasks/x", "r-", "allows no writes"},
		{"not a path", authz.OpenRules(), "/data/tasks", "--", "not /type/repo/item"},
		{"bad key", authz.OpenRules(), "/data/tasks/a b", "--", "not /type/repo/item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.rules, alice, tt.path); got != tt.want {
				t.Fatalf("decision %s, want %s", got, tt.want)
			}
			err := authz.Check(tt.rules, alice, tt.path, item.Item{}, owned("alice"))
			if tt.why != "" && (!errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), tt.why)) {
				t.Fatalf("reason %v, want ErrDenied saying %q", err, tt.why)
			}
		})
	}
}

var errRuleFired = map[string]error{}

// tagged returns a rule whose Write always refuses with an error naming
// tag, and that records its Ref's Vars in *vars.
func tagged(tag string, vars *map[string]string) authz.Rule {
	if errRuleFired[tag] == nil {
		errRuleFired[tag] = errors.New("rule " + tag)
	}
	return authz.Rule{Write: func(_ context.Context, _ authz.Principal, ref authz.Ref, _, _ item.Item) error {
		*vars = ref.Vars
		return errRuleFired[tag]
	}}
}

func TestMostSpecificRuleWins(t *testing.T) {
	var vars map[string]string
	patterns := map[string]string{
		"/**":                  "rest",
		"/data/**":             "data-rest",
		"/data/*/{item}":       "star",
		"/data/{repo}/{item}":  "var",
		"/data/tasks/{item}":   "tasks",
		"/data/tasks/special":  "special",
		"/{type}/tasks/{item}": "type-var",
		"/{type}/{repo}/x":     "item-literal",
		"/logs/*/**":           "logs",
	}
	rules := map[string]authz.Rule{}
	for p, tag := range patterns {
		rules[p] = tagged(tag, &vars)
	}
	r := compile(t, rules)
	tests := []struct {
		path, want string
		vars       map[string]string
	}{
		{"/data/tasks/special", "special", map[string]string{}},
		{"/data/tasks/other", "tasks", map[string]string{"item": "other"}},
		{"/data/notes/y", "var", map[string]string{"repo": "notes", "item": "y"}},
		{"/data/notes/x", "var", map[string]string{"repo": "notes", "item": "x"}},
		{"/other/tasks/x", "type-var", map[string]string{"type": "other", "item": "x"}},
		{"/other/notes/x", "item-literal", map[string]string{"type": "other", "repo": "notes"}},
		{"/other/notes/y", "rest", map[string]string{}},
		{"/logs/a/b", "logs", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			vars = nil
			err := authz.Check(r, alice, tt.path, item.Item{}, item.Item{})
			if !errors.Is(err, errRuleFired[tt.want]) {
				t.Fatalf("Check = %v, want rule %s", err, tt.want)
			}
			if fmt.Sprint(vars) != fmt.Sprint(tt.vars) {
				t.Fatalf("vars %v, want %v", vars, tt.vars)
			}
		})
	}
	// Registration order does not matter.
	var b authz.Builder
	for _, p := range slices.Backward(r.Patterns()) {
		b.Handle(p, rules[p])
	}
	r2, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Patterns(), r2.Patterns()) {
		t.Fatalf("patterns in another order: %q, %q", r.Patterns(), r2.Patterns())
	}
}

func TestAmbiguousPatternsFailAtCompile(t *testing.T) {
	tests := []struct {
		a, b string
	}{
		{"/data/{repo}/{item}", "/data/{r}/{i}"},
		{"/data/**", "/data/**"},
		{"/{t}/x/{i}", "/{type}/x/{key}"},
		{"/*/x/y", "/*/x/y"},
		{"/a/b/c", "/a/b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			var b authz.Builder
			b.Handle("/other/{repo}/{item}", allowAll())
			b.Handle(tt.a, allowAll())
			b.Handle(tt.b, allowAll())
			_, err := b.Compile()
			if !errors.Is(err, authz.ErrBadRule) || !strings.Contains(err.Error(), fmt.Sprintf("%q and %q", tt.a, tt.b)) {
				t.Fatalf("Compile = %v, want ErrBadRule naming both", err)
			}
		})
	}
	// Patterns that look alike but are not ambiguous.
	for _, pair := range [][2]string{
		{"/data/{repo}/x", "/data/x/{item}"},
		{"/data/{repo}/{item}", "/data/*/{item}"},
		{"/data/**", "/data/{repo}/**"},
		{"/data/a/{i}", "/data/b/{i}"},
	} {
		var b authz.Builder
		b.Handle(pair[0], allowAll())
		b.Handle(pair[1], allowAll())
		if _, err := b.Compile(); err != nil {
			t.Errorf("%q and %q: %v", pair[0], pair[1], err)
		}
	}
}

func TestBadPatterns(t *testing.T) {
	tests := []struct{ pattern, why string }{
		{"data/x/y", "start with /"},
		{"/", "segment 1"},
		{"/data/x", "2 segments"},
		{"/a/b/c/d", "4 segments"},
		{"/**/x/y", "last"},
		{"/a/{x}/{x}", "twice"},
		{"/a/{1x}/c", "not a name"},
		{"/a/{}/c", "not a name"},
		{"/a/b c/d", "use A-Z"},
		{"/a//c", "segment 2"},
		{"/a/../c", "are not names"},
		{"/a/b*/c", "use A-Z"},
	}
	var b authz.Builder
	for _, tt := range tests {
		b.Handle(tt.pattern, allowAll())
	}
	_, err := b.Compile()
	if !errors.Is(err, authz.ErrBadRule) {
		t.Fatalf("Compile = %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("%d errors for %d bad patterns:\n%v", len(lines), len(tests), err)
	}
	for i, tt := range tests {
		if !strings.Contains(lines[i], fmt.Sprintf("%q", tt.pattern)) || !strings.Contains(lines[i], tt.why) {
			t.Errorf("pattern %q: error %q, want it named and %q", tt.pattern, lines[i], tt.why)
		}
	}
}

func TestBuiltinSysRules(t *testing.T) {
	own := "/sys/sessions/" + alice.Session.String()
	tests := []struct {
		name string
		p    authz.Principal
		path string
		want string
	}{
		{"user on /sys/users", alice, "/sys/users/x", "--"},
		{"user on /sys/admins", alice, "/sys/admins/alice", "--"},
		{"anonymous on /sys/users", anon, "/sys/users/x", "--"},
		{"session on its own certificate", alice, own, "r-"},
		{"session on another's certificate", bob, own, "--"},
		{"root on /sys/users", root, "/sys/users/x", "rw"},
		{"node on /sys/users", node, "/sys/users/x", "rw"},
		{"node on a certificate", node, own, "rw"},
	}
	for _, rules := range []struct {
		name string
		r    *authz.Rules
	}{{"nil", nil}, {"default", authz.DefaultRules()}, {"open", authz.OpenRules()}} {
		for _, tt := range tests {
			t.Run(rules.name+"/"+tt.name, func(t *testing.T) {
				if got := decide(rules.r, tt.p, tt.path); got != tt.want {
					t.Fatalf("decision %s, want %s", got, tt.want)
				}
			})
		}
	}
	err := authz.Check(authz.OpenRules(), alice, "/sys/users/x", item.Item{}, item.Item{})
	if !errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), "only root and node") {
		t.Fatalf("reason %v", err)
	}
}

func TestUserRules(t *testing.T) {
	private := compile(t, map[string]authz.Rule{
		"/data/**": allowAll(),
		// An app narrows /user/: notes are write-once, and /user/*/private is
		// not readable at all (say, a server-side secret).
		"/user/{uid}/notes": {
			Read: allowAll().Read,
			Write: func(_ context.Context, _ authz.Principal, _ authz.Ref, before, _ item.Item) error {
				if before.Len() > 0 {
					return errors.New("notes are write-once")
				}
				return nil
			},
		},
		"/user/*/private": {},
	})
	tests := []struct {
		name  string
		rules *authz.Rules
		p     authz.Principal
		path  string
		want  string
	}{
		{"owner", authz.DefaultRules(), alice, "/user/alice/notes", "rw"},
		{"other user", authz.DefaultRules(), bob, "/user/alice/notes", "--"},
		{"anonymous", authz.DefaultRules(), anon, "/user/alice/notes", "--"},
		{"root", authz.DefaultRules(), root, "/user/alice/notes", "rw"},
		{"no app rule for /user: the built-in decides", private, alice, "/user/alice/todo", "rw"},
		{"app rule narrows", private, alice, "/user/alice/private", "--"},
		{"app rule allows, built-in refuses", private, bob, "/user/alice/notes", "--"},
		{"app rule applies to the owner", private, alice, "/user/alice/notes", "rw"},
		{"default: logged-in users on /data", authz.DefaultRules(), bob, "/data/tasks/x", "rw"},
		{"default: anonymous on /data", authz.DefaultRules(), anon, "/data/tasks/x", "--"},
		{"default: other types", authz.DefaultRules(), alice, "/other/tasks/x", "--"},
		{"open: anonymous on /data", authz.OpenRules(), anon, "/data/tasks/x", "rw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.rules, tt.p, tt.path); got != tt.want {
				t.Fatalf("decision %s, want %s", got, tt.want)
			}
		})
	}
	err := authz.Check(private, alice, "/user/alice/notes", owned("alice"), owned("alice"))
	if !errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), "write-once") {
		t.Fatalf("second write to a write-once note: %v", err)
	}
}

func TestBuiltinsCannotBeWeakened(t *testing.T) {
	everyone := allowAll()
	appRules := []map[string]authz.Rule{
		{"/sys/**": everyone},
		{"/sys/users/{item}": everyone},
		{"/sys/sessions/{item}": everyone},
		{"/user/{uid}/**": everyone},
		{"/user/alice/{item}": everyone},
		{"/user/alice/x": everyone},
		{"/**": everyone},
		{"/{type}/{repo}/{item}": everyone},
		{"/*/*/*": everyone},
	}
	paths := []string{"/sys/users/x", "/sys/sessions/" + alice.Session.String(), "/user/alice/x"}
	for _, rules := range appRules {
		r := compile(t, rules)
		for _, path := range paths {
			for _, p := range []authz.Principal{bob, anon} {
				if got := decide(r, p, path); got != "--" {
					t.Errorf("rules %q: %s decides %s on %s, want --", r.Patterns(), p.User, got, path)
				}
			}
		}
	}
}

func TestWriteRuleSeesBeforeAfter(t *testing.T) {
	errOwner := errors.New("the owner cannot change")
	r := compile(t, map[string]authz.Rule{"/data/{repo}/{item}": {
		Read: allowAll().Read,
		Write: func(_ context.Context, _ authz.Principal, _ authz.Ref, before, after item.Item) error {
			was, had := before.Get("owner")
			is, has := after.Get("owner")
			if had && (!has || !item.Equal(was, is)) {
				return errOwner
			}
			return nil
		},
	}})
	a := owned("alice")
	tests := []struct {
		name          string
		before, after item.Item
		want          error
	}{
		{"create", item.Item{}, a, nil},
		{"create without owner", item.Item{}, item.New(nil), nil},
		{"edit another field", a, a.With("title", item.String("new")), nil},
		{"delete", a, a.WithDeleted(true), nil},
		{"change owner", a, a.With("owner", item.String("bob")), errOwner},
		{"change owner and title", a, owned("bob").With("title", item.String("new")), errOwner},
		{"remove owner", a, a.Without("owner"), errOwner},
		{"owner of another type", a, a.With("owner", item.Int(1)), errOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.Check(r, alice, "/data/tasks/x", tt.before, tt.after)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if err != nil && !errors.Is(err, authz.ErrDenied) {
				t.Fatalf("%v does not match ErrDenied", err)
			}
		})
	}
}

func TestRulePanicDenies(t *testing.T) {
	r := compile(t, map[string]authz.Rule{"/data/**": {
		Read:  func(context.Context, authz.Principal, authz.Ref, item.Item) bool { panic("read") },
		Write: func(context.Context, authz.Principal, authz.Ref, item.Item, item.Item) error { panic("write") },
	}})
	if err := authz.CheckRead(r, alice, "/data/a/b", item.Item{}); !errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("read: %v", err)
	}
	if err := authz.Check(r, alice, "/data/a/b", item.Item{}, item.Item{}); !errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("write: %v", err)
	}
}

func TestRepoScope(t *testing.T) {
	byRepo, byItem := allowAll(), allowAll()
	byRepo.Scope = authz.ByRepo
	r := compile(t, map[string]authz.Rule{
		"/data/**":            byRepo,
		"/data/mixed/special": byRepo,
		"/docs/{repo}/{item}": byItem,
		"/team/**":            byRepo,
		"/team/x/{item}":      byItem,
	})
	tests := []struct {
		repo string
		want authz.Scope
	}{
		{"/data/tasks", authz.ByRepo},
		{"/data/mixed", authz.ByItem}, // one item has its own rule
		{"/docs/a", authz.ByItem},
		{"/team/y", authz.ByRepo},
		{"/team/x", authz.ByItem},
		{"/user/alice", authz.ByRepo},
		{"/sys/users", authz.ByRepo},
		{"/sys/sessions", authz.ByItem}, // a session reads its own item only
		{"/nothing/here", authz.ByRepo}, // denied for all
		{"bad", authz.ByItem},
	}
	for _, tt := range tests {
		if got := r.RepoScope(tt.repo); got != tt.want {
			t.Errorf("RepoScope(%s) = %v, want %v", tt.repo, got, tt.want)
		}
	}
}

// TestFingerprint: rules with the same patterns, scopes and version have
// one fingerprint; another pattern, scope, version or rules file text
// gives another.
func TestFingerprint(t *testing.T) {
	build := func(version, pattern string, scope authz.Scope) string {
		var b authz.Builder
		b.Version(version)
		b.Handle(pattern, authz.Rule{Scope: scope, Read: func(context.Context, authz.Principal, authz.Ref, item.Item) bool { return true }})
		r, err := b.Compile()
		if err != nil {
			t.Fatal(err)
		}
		return r.Fingerprint()
	}
	base := build("1", "/data/**", authz.ByRepo)
	if build("1", "/data/**", authz.ByRepo) != base {
		t.Fatal("the same rules have two fingerprints")
	}
	seen := map[string]string{"base": base, "nil": (*authz.Rules)(nil).Fingerprint(),
		"default": authz.DefaultRules().Fingerprint(), "open": authz.OpenRules().Fingerprint()}
	for name, fp := range map[string]string{
		"version": build("2", "/data/**", authz.ByRepo), "pattern": build("1", "/data/x/{id}", authz.ByRepo),
		"scope": build("1", "/data/**", authz.ByItem),
	} {
		for other, ofp := range seen {
			if fp == ofp {
				t.Errorf("rules differing by %s have the fingerprint of %s", name, other)
			}
		}
		seen[name] = fp
	}
	f1, err := authz.ParseRulesFile([]byte(`{"rules": [{"path": "/data/{r}/{id}", "read": "true"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f2, err := authz.ParseRulesFile([]byte(`{"rules": [{"path": "/data/{r}/{id}", "read": "user != \"\""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if f1.Fingerprint() == f2.Fingerprint() {
		t.Fatal("two rules files with other expressions share a fingerprint")
	}
}
