package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command in-process with --dir dir and stdin.
func cli(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"--dir", dir}, args...), strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed with nothing on stderr and returns
// its stdout.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := cli(t, dir, "", args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("goatdb %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

var commitID = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// mustPut runs put and returns the commit id it printed.
func mustPut(t *testing.T, dir, path, json string, flags ...string) string {
	t.Helper()
	out := ok(t, dir, append([]string{"put", path, json}, flags...)...)
	if !commitID.MatchString(out) {
		t.Fatalf("put %s printed %q, want a commit id", path, out)
	}
	return strings.TrimSpace(out)
}

// failure checks the contract of a failed command: the exit status, one
// line on stderr starting with "goatdb:" and containing want, and nothing
// on stdout.
func failure(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "goatdb: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q, want one line starting with \"goatdb: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// sizes maps every file under dir to its size (-1 for directories).
func sizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			m[p] = -1
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const schemaFile = `{"schemas": [
  {"namespace": "task", "version": 1,
   "fields": {"title": {"type": "string", "required": true},
              "count": {"type": "int", "default": 0},
              "due":   {"type": "date"},
              "tags":  {"type": "set", "default": []},
              "done":  {"type": "bool"},
              "score": {"type": "number"},
              "meta":  {"type": "map"}}},
  {"namespace": "note", "version": 1,
   "fields": {"text": {"type": "string"}}}
]}
`

// newDir returns a data directory, made by 'goatdb init', holding
// schemas.json.
func newDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ok(t, dir, "init")
	if err := os.WriteFile(filepath.Join(dir, "schemas.json"), []byte(schemaFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func logFile(dir, rp string) string {
	return filepath.Join(dir, filepath.FromSlash(rp[1:])+".log")
}
