package authz_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
)

// appRulesFile is the rules of the app in Example, as a rules file.
const appRulesFile = `{"rules": [
  {"path": "/data/{repo}/{item}",
   "read": "hasRole('admin') || item.owner == user",
   "write": "hasRole('admin') || (after.owner == user && (before.owner == nil || before.owner == user))"},
  {"path": "/data/team/{item}",
   "read": "hasRole('team') || hasRole('admin')",
   "write": "hasRole('team') || hasRole('admin')"},
  {"path": "/data/announcements/{item}",
   "read": "user != ''"}
]}`

func TestRulesFile(t *testing.T) {
	r, err := authz.ParseRulesFile([]byte(appRulesFile))
	if err != nil {
		t.Fatal(err)
	}
	admin := authz.Principal{Session: sessionOf(key(30)), User: "carol", Roles: []string{"admin"}}
	mine, bobs := owned("alice"), owned("bob")
	tests := []struct {
		name          string
		p             authz.Principal
		path          string
		before, after item.Item
		read, write   bool
	}{
		{"owner", alice, "/data/tasks/1", mine, mine.With("title", item.String("new")), true, true},
		{"not the owner", alice, "/data/tasks/1", bobs, bobs.With("title", item.String("new")), false, false},
		{"create own", alice, "/data/tasks/1", item.Item{}, mine, true, true},
		{"create for another", alice, "/data/tasks/1", item.Item{}, bobs, false, false},
		{"give away", alice, "/data/tasks/1", mine, bobs, true, false},
		{"admin", admin, "/data/tasks/1", bobs, mine, true, true},
		{"team member", alice, "/data/team/1", bobs, bobs, true, true},
		{"not in the team", bob, "/data/team/1", bobs, bobs, false, false},
		{"announcements read-only", bob, "/data/announcements/1", bobs, bobs, true, false},
		{"announcements, anonymous", anon, "/data/announcements/1", bobs, bobs, false, false},
		{"unmatched", alice, "/other/tasks/1", mine, mine, false, false},
		{"built-in /user still holds", bob, "/user/alice/1", mine, mine, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current := tt.before
			if current.Len() == 0 {
				current = tt.after // a new item: read what was written
			}
			rerr := authz.CheckRead(r, tt.p, tt.path, current)
			werr := authz.Check(r, tt.p, tt.path, tt.before, tt.after)
			if (rerr == nil) != tt.read || (werr == nil) != tt.write {
				t.Fatalf("read %v, write %v; want read %v, write %v", rerr, werr, tt.read, tt.write)
			}
		})
	}
	if got := r.RepoScope("/data/team"); got != authz.ByRepo {
		t.Errorf("team repository: %v, want ByRepo (its read looks at no item)", got)
	}
	if got := r.RepoScope("/data/tasks"); got != authz.ByItem {
		t.Errorf("tasks repository: %v, want ByItem", got)
	}
	// What a read expression looks at decides its scope.
	for read, want := range map[string]authz.Scope{
		`hasRole(vars.repo)`:            authz.ByRepo,
		`vars.repo in ["a", vars.repo]`: authz.ByRepo,
		`vars["item"] == ""`:            authz.ByItem,
		`"item" in vars`:                authz.ByItem,
		`vars.item != "secret"`:         authz.ByItem,
		`key != "secret"`:               authz.ByItem,
		`!deleted`:                      authz.ByItem,
		`item.public == true`:           authz.ByItem,
		`user != "" && repo != path`:    authz.ByItem,
	} {
		r, err := authz.ParseRulesFile([]byte(fmt.Sprintf(`{"rules": [{"path": "/data/{repo}/{item}", "read": %q}]}`, read)))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.RepoScope("/data/x"); got != want {
			t.Errorf("read %s: %v, want %v", read, got, want)
		}
	}
}

// TestRulesFileVariables checks each variable an expression sees.
func TestRulesFileVariables(t *testing.T) {
	tests := []struct {
		read, write string
	}{
		{`user == "alice" && "team" in roles && hasRole("team") && !hasRole("x")`, ""},
		{`session == "` + alice.Session.String() + `" && !node && !root`, ""},
		{`vars.type == "user" && vars.uid == "alice" && vars.item == "k"`, ""},
		{`repo == "/user/alice" && key == "k" && path == "/user/alice/k"`, ""},
		{`item.owner == "alice" && item.n == 2 && item.missing == nil && !deleted`, ""},
		{``, `before.owner == "alice" && after.owner == "bob" && !beforeDeleted && afterDeleted`},
		{``, `len(after.owner) == 3 && upper(after.owner) == "BOB" && hasPrefix(key, "k") && abs(-1) == 1`},
		{``, `after.owner matches "^b"`},
	}
	before := owned("alice").With("n", item.Int(2))
	after := owned("bob").WithDeleted(true)
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := fmt.Sprintf(`{"path": "/{type}/{uid}/{item}", "read": %q, "write": %q}`, tt.read, tt.write)
			if tt.read == "" {
				e = fmt.Sprintf(`{"path": "/{type}/{uid}/{item}", "write": %q}`, tt.write)
			}
			if tt.write == "" {
				e = fmt.Sprintf(`{"path": "/{type}/{uid}/{item}", "read": %q}`, tt.read)
			}
			r, err := authz.ParseRulesFile([]byte(`{"rules": [` + e + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.read != "" {
				if err := authz.CheckRead(r, alice, "/user/alice/k", before); err != nil {
					t.Fatalf("read %s: %v", tt.read, err)
				}
			}
			if tt.write != "" {
				if err := authz.Check(r, alice, "/user/alice/k", before, after); err != nil {
					t.Fatalf("write %s: %v", tt.write, err)
				}
			}
		})
	}
}

func TestRulesFileErrors(t *testing.T) {
	good := `{"path": "/data/{repo}/{item}", "read": "true"}`
	long := strings.Repeat("true && ", authz.MaxExprLen/8) + "true"
	tests := []struct {
		name, file string
		want       []string
	}{
		{"not JSON", `{"rules": [`, []string{"rules file"}},
		{"no rules key", `{}`, []string{"no \"rules\""}},
		{"unknown key", `{"rules": [{"path": "/a/**", "reed": "true"}]}`, []string{"reed"}},
		{"unknown top-level key", `{"rules": [], "extra": 1}`, []string{"extra"}},
		{"repeated key", `{"rules": [{"path": "/a/**", "read": "true", "read": "false"}]}`, []string{`"read" repeated`}},
		{"trailing data", `{"rules": []} {}`, []string{"after the object"}},
		{"bad pattern", `{"rules": [` + good + `, {"path": "/a/b"}]}`, []string{"entry 1", `"/a/b"`}},
		{"syntax error", `{"rules": [` + good + `, {"path": "/b/**", "read": "user =="}]}`, []string{"entry 1", `"/b/**"`, "read"}},
		{"not bool", `{"rules": [{"path": "/b/**", "write": "user"}]}`, []string{"entry 0", "write", "bool"}},
		{"unknown variable", `{"rules": [{"path": "/b/**", "read": "usr == 'a'"}]}`, []string{"entry 0", "usr"}},
		{"write sees no item", `{"rules": [{"path": "/b/**", "write": "item.owner == user"}]}`, []string{"entry 0", "item"}},
		{"read sees no after", `{"rules": [{"path": "/b/**", "read": "after.owner == user"}]}`, []string{"entry 0", "after"}},
		{"variable not in pattern", `{"rules": [{"path": "/b/{repo}/{item}", "read": "vars.uid == user"}]}`, []string{"entry 0", "{uid}", "{item}, {repo}"}},
		{"empty expression", `{"rules": [{"path": "/b/**", "read": ""}]}`, []string{"entry 0", "empty"}},
		{"loop", `{"rules": [{"path": "/b/**", "read": "all(roles, # == user)"}]}`, []string{"entry 0", "no loops"}},
		{"let", `{"rules": [{"path": "/b/**", "read": "let x = user; x == ''"}]}`, []string{"entry 0", "let"}},
		{"range", `{"rules": [{"path": "/b/**", "read": "len(1..1000000) > 0"}]}`, []string{"entry 0", "ranges"}},
		{"dynamic regexp", `{"rules": [{"path": "/b/**", "read": "user matches item.re"}]}`, []string{"entry 0", "matches"}},
		{"disabled function", `{"rules": [{"path": "/b/**", "read": "repeat(user, 1000000000) == ''"}]}`, []string{"entry 0", "repeat"}},
		{"clock", `{"rules": [{"path": "/b/**", "read": "now() != nil"}]}`, []string{"entry 0", "now"}},
		{"too long", `{"rules": [{"path": "/b/**", "read": "` + long + `"}]}`, []string{"entry 0", "bytes >"}},
		{"too many nodes", `{"rules": [{"path": "/b/**", "read": "` + strings.Repeat("!", authz.MaxExprNodes) + `true"}]}`, []string{"entry 0"}},
		{"ambiguous", `{"rules": [{"path": "/b/{x}/{y}"}, {"path": "/b/{p}/{q}"}]}`, []string{`entries 0 ("/b/{x}/{y}") and 1 ("/b/{p}/{q}")`}},
		{"repeated pattern", `{"rules": [` + good + `, ` + good + `]}`, []string{`entries 0 ("/data/{repo}/{item}") and 1`}},
		{"two bad entries", `{"rules": [{"path": "/a/b"}, ` + good + `, {"path": "/c/**", "read": "1"}]}`, []string{"entry 0", "entry 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authz.ParseRulesFile([]byte(tt.file))
			if !errors.Is(err, authz.ErrBadRule) {
				t.Fatalf("ParseRulesFile = %v, want ErrBadRule", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := authz.ParseRulesFile(make([]byte, authz.MaxRulesFileSize+1)); !errors.Is(err, authz.ErrBadRule) {
		t.Errorf("oversized file: %v", err)
	}
}

// TestRulesFileDeniesOnError: a missing expression denies, and so does one
// that fails at run time.
func TestRulesFileDeniesOnError(t *testing.T) {
	r, err := authz.ParseRulesFile([]byte(`{"rules": [
		{"path": "/data/read-only/{item}", "read": "true"},
		{"path": "/data/counted/{item}", "read": "item.count > 1", "write": "after.count > 1"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := decide(r, alice, "/data/read-only/x"); got != "r-" {
		t.Errorf("read-only: %s, want r-", got)
	}
	noCount := owned("alice")
	if err := authz.CheckRead(r, alice, "/data/counted/x", noCount); !errors.Is(err, authz.ErrDenied) {
		t.Errorf("read with a missing field: %v, want denied", err)
	}
	if err := authz.Check(r, alice, "/data/counted/x", noCount, noCount); !errors.Is(err, authz.ErrDenied) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("write with a missing field: %v, want denied as failed", err)
	}
	withCount := noCount.With("count", item.Int(2))
	if err := authz.Check(r, alice, "/data/counted/x", noCount, withCount); err != nil {
		t.Errorf("write with count 2: %v", err)
	}
}

func TestLoadRulesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte(appRulesFile), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := authz.LoadRulesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Patterns()) != 3 {
		t.Fatalf("patterns %q", r.Patterns())
	}
	if _, err := authz.LoadRulesFile(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"rules": [{"path": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := authz.LoadRulesFile(path); !errors.Is(err, authz.ErrBadRule) || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad file: %v, want ErrBadRule naming the file", err)
	}
}
