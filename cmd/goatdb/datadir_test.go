package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notDataDirArgs are arguments for every command but init, serve, node
// and dev (which make data directories), version, help and root (which
// open none),
// valid up to the data directory, so that each reaches it.
var notDataDirArgs = map[string][][]string{
	"put":      {{"put", "/data/x/a", `{"a": 1}`}},
	"get":      {{"get", "/data/x/a"}},
	"rm":       {{"rm", "/data/x/a"}},
	"ls":       {{"ls"}, {"ls", "/data/x"}},
	"query":    {{"query", "/data/x", "--where", "a > 0"}},
	"log":      {{"log", "/data/x/a"}},
	"diff":     {{"diff", "/data/x/a", "2025-01-01T00:00:00Z"}},
	"import":   {{"import", "/data/x"}},
	"export":   {{"export", "/data/x"}},
	"verify":   {{"verify"}},
	"gc":       {{"gc"}, {"gc", "/data/x"}},
	"purge":    {{"purge", "/data/x/a", "--reason", "r"}},
	"backup":   {{"backup", "BACKUP"}},
	"schema":   {{"schema"}, {"schema", "--json"}},
	"user":     {{"user", "list"}, {"user", "add", "bob"}, {"user", "revoke", "bob"}},
	"session":  {{"session", "list"}, {"session", "revoke", strings.Repeat("A", 52)}},
	"sync":     {{"sync", "URL"}, {"sync", "URL", "/data/x"}},
	"rejected": {{"rejected"}, {"rejected", "/data/x"}},
	"reauthor": {{"reauthor", "/data/x/a", "--all"}},
	"discard":  {{"discard", "/data/x/a", "--all"}},
	"login":    {{"login", "URL", "bob", "--code", "AAAAAAAA-AAAAAAAA-AAAAAAAA"}},
	"whoami":   {{"whoami"}},
	"logout":   {{"logout"}, {"logout", "URL"}},
	"cluster":  {{"cluster", "status"}, {"cluster", "leave", "n2"}},
}

// TestNotDataDir runs every command that needs a data directory on
// directories that are not one: a mistyped path, an empty directory and
// one holding other files. Each exits 1 saying what is wrong and what to
// do, and creates nothing (not the directory, nor a backup's destination).
func TestNotDataDir(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		switch c.name {
		case "init", "serve", "node", "dev", "version", "help", "root":
			continue
		}
		if notDataDirArgs[c.name] == nil {
			t.Errorf("no case for goatdb %s: add one to notDataDirArgs", c.name)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() // a server the commands must not reach
	defer ln.Close()

	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	other := filepath.Join(root, "other")
	for _, d := range []string{empty, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("not goatdb's"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := []struct{ name, dir, why string }{
		{"mistyped", filepath.Join(root, "typo"), "it does not exist"},
		{"empty", empty, "it has no session.key"},
		{"other files", other, "it has no session.key"},
	}
	before := sizes(t, root)
	for name, cases := range notDataDirArgs {
		for _, args := range cases {
			args = append([]string(nil), args...)
			for i, a := range args {
				switch a {
				case "URL":
					args[i] = url
				case "BACKUP":
					args[i] = filepath.Join(root, "backup")
				}
			}
			for _, d := range dirs {
				t.Run(name+"/"+strings.Join(args[1:], " ")+"/"+d.name, func(t *testing.T) {
					r := cli(t, d.dir, `{"key": "k", "fields": {}}`, args...)
					failure(t, r, exitFail, d.dir+" is not a goatdb data directory ("+d.why+"); run 'goatdb init --dir "+d.dir+"' to create one, or check --dir")
					if after := sizes(t, root); !equalSizes(before, after) {
						t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
					}
				})
			}
		}
	}
	// init makes the mistyped directory one; then the commands work.
	ok(t, dirs[0].dir, "init")
	if got := ok(t, dirs[0].dir, "verify"); got != "ok: 0 repositories, 0 items, 0 commits\n" {
		t.Errorf("verify after init: %q", got)
	}
}

// TestServeMakesDataDir: serve makes its directory a data directory when
// it is not one, and says so in its first line; on a data directory it
// says nothing of the kind.
func TestServeMakesDataDir(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		first   string // DIR stands for the directory
	}{
		{"missing", func(*testing.T, string) {}, "goatdb: created the data directory DIR, a new, empty database"},
		{"empty", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "goatdb: DIR was not a goatdb data directory: made it one, a new, empty database"},
		{"data directory", func(t *testing.T, dir string) { ok(t, dir, "init") }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "srv")
			tt.prepare(t, dir)
			srv := startServe(t, dir)
			if code := srv.stop(); code != 0 {
				t.Fatalf("serve: exit %d, stderr %q", code, srv.stderr)
			}
			want := "goatdb: serving " + dir + " on " + srv.url + "\ngoatdb: console on " + srv.url + "/\ngoatdb: stopped\n"
			if tt.first != "" {
				want = strings.ReplaceAll(tt.first, "DIR", dir) + "\n" + want
			}
			if got := srv.stdout.String(); got != want {
				t.Errorf("serve printed %q, want %q", got, want)
			}
			if got := ok(t, dir, "verify"); got != "ok: 0 repositories, 0 items, 0 commits\n" {
				t.Errorf("verify of the served directory: %q", got)
			}
		})
	}
}
