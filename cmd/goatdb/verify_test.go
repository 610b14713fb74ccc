package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// populated returns a directory with two repositories of several items.
func populated(t *testing.T) string {
	t.Helper()
	dir := newDir(t)
	for i := range 8 {
		mustPut(t, dir, fmt.Sprintf("/data/tasks/t%d", i), fmt.Sprintf(`{"title": "task %d", "body": %q}`, i, strings.Repeat("x", 40)))
	}
	mustPut(t, dir, "/data/notes/n1", `{"text": "hello"}`, "--schema", "note")
	return dir
}

func TestVerifyClean(t *testing.T) {
	t.Parallel()
	dir := populated(t)
	if got := ok(t, dir, "verify"); got != "ok: 2 repositories, 9 items, 9 commits\n" {
		t.Errorf("verify: %q", got)
	}
	if got := ok(t, newDir(t), "verify"); got != "ok: 0 repositories, 0 items, 0 commits\n" {
		t.Errorf("verify on a new data directory: %q", got)
	}
}

// TestVerifyNotDataDir: verify on a directory that is not a data
// directory (empty, or a mistyped path) fails and creates nothing, rather
// than reporting zero repositories as fine.
func TestVerifyNotDataDir(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	failure(t, cli(t, empty, "", "verify"), exitFail, empty+" is not a goatdb data directory (it has no session.key); run 'goatdb init --dir "+empty+"' to create one, or check --dir")
	if files := sizes(t, empty); len(files) != 1 {
		t.Errorf("verify created files: %v", files)
	}
	missing := filepath.Join(empty, "typo")
	failure(t, cli(t, missing, "", "verify"), exitFail, missing+" is not a goatdb data directory (it does not exist)")
	if files := sizes(t, empty); len(files) != 1 {
		t.Errorf("verify created files: %v", files)
	}
}

func TestVerifyFlippedByte(t *testing.T) {
	t.Parallel()
	dir := populated(t)
	file := logFile(dir, "/data/tasks")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(data) / 2
	data[mid] ^= 0xff
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := sizes(t, dir)

	r := cli(t, dir, "", "verify")
	if r.code != 1 {
		t.Fatalf("verify: exit %d, want 1\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `: offset (\d+): `)
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("problem %q does not name the file and an offset", l)
			continue
		}
		if strings.Contains(l, "offset "+m[1]+": offset") {
			t.Errorf("problem %q repeats its offset", l)
		}
		var off int
		fmt.Sscan(m[1], &off)
		if off > mid || off < 16 {
			t.Errorf("problem at offset %d, but the flipped byte is at %d", off, mid)
		}
	}
	failure(t, result{r.code, "", r.stderr}, 1, "verify found 1 problem in 1 of 2 repositories")

	var rep verifyReport
	r = cli(t, dir, "", "verify", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
		t.Fatalf("verify --json: exit %d, %v: %s", r.code, err, r.stdout)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].File != file || rep.Problems[0].Offset <= 0 {
		t.Errorf("verify --json problems: %+v", rep.Problems)
	}

	// Reading still works around the damage, with a warning, and repairs
	// nothing.
	r = cli(t, dir, "", "ls", "/data/tasks")
	if r.code != 0 || !strings.HasPrefix(r.stderr, "goatdb: warning: ") || !strings.Contains(r.stderr, "damaged log range") {
		t.Errorf("ls on a damaged log: exit %d, stderr %q", r.code, r.stderr)
	}
	if after := sizes(t, dir); !equalSizes(before, after) {
		t.Errorf("verify or ls changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// TestVerifyEmptyLog: an empty log file is what a crash can leave of a
// repository created and never written: an empty repository, not a
// problem, and the first write makes it a log again.
func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	dir := populated(t)
	file := logFile(dir, "/data/new")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, dir, "", "verify"); r.code != 0 {
		t.Fatalf("verify: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(file); len(b) != 0 {
		t.Fatalf("verify changed the file: %d bytes", len(b))
	}
	ok(t, dir, "put", "/data/new/x", `{"a": 1}`)
	if r := cli(t, dir, "", "get", "/data/new/x"); r.code != 0 || !strings.Contains(r.stdout, `"a":1`) {
		t.Fatalf("get after put: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestVerifyUnopenableLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, content, want string
	}{
		{"truncated header", "goatdbLG\x01\x00", "offset 0: cannot open the log: repo: log corrupt: header truncated at 10 of 56 bytes"},
		{"not a log", "hello, world, this is not a log\n", "offset 0: cannot open the log: repo: not a goatdb log"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := populated(t)
			file := logFile(dir, "/data/bad")
			if err := os.WriteFile(file, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			r := cli(t, dir, "", "verify")
			if r.code != 1 || r.stdout != file+": "+tt.want+"\n" && !strings.HasPrefix(r.stdout, file+": "+tt.want) {
				t.Errorf("verify: exit %d\nstdout %q\nwant   %q", r.code, r.stdout, file+": "+tt.want)
			}
			failure(t, result{r.code, "", r.stderr}, 1, "verify found 1 problem in 1 of 3 repositories")

			// Other commands refuse the damaged log with a hint, and
			// change nothing.
			before := sizes(t, dir)
			for _, args := range [][]string{
				{"get", "/data/bad/x"},
				{"put", "/data/bad/x", `{"a": 1}`},
				{"export", "/data/bad"},
			} {
				failure(t, cli(t, dir, "", args...), 2, "'goatdb verify' lists the problems")
			}
			if after := sizes(t, dir); !equalSizes(before, after) {
				t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
			}
			// The other repositories still work.
			ok(t, dir, "get", "/data/notes/n1")
		})
	}
}
