package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestLsRange: --prefix, --after and --limit list a page of keys in order,
// in ls's usual format; a page the limit cut says on stderr how to get the
// next, and following those lines lists every key once.
func TestLsRange(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	for _, k := range []string{"b2", "a1", "b1", "c1", "b3", "b4"} {
		mustPut(t, dir, "/data/p/"+k, `{"n": 1}`)
	}
	ok(t, dir, "rm", "/data/p/b3")
	tests := []struct {
		args         []string
		want, stderr string
	}{
		{[]string{"ls", "/data/p", "--prefix", "b"}, "b1 b2 b4", ""},
		{[]string{"ls", "/data/p", "--after", "b1"}, "b2 b4 c1", ""},
		{[]string{"ls", "/data/p", "--limit", "2"}, "a1 b1", "more: --after b1\n"},
		{[]string{"ls", "/data/p", "--limit", "5"}, "a1 b1 b2 b4 c1", ""},
		{[]string{"ls", "/data/p", "--limit", "2", "--after", "b1", "--prefix", "b"}, "b2 b4", ""},
		{[]string{"ls", "/data/p", "--limit", "1", "--prefix", "b", "--deleted"}, "b1", "more: --after b1\n"},
		{[]string{"ls", "/data/p", "--after", "b2", "--prefix", "b", "--deleted"}, "b3 b4", ""},
		{[]string{"ls", "/data/p", "--prefix", "z"}, "", ""},
	}
	for _, tc := range tests {
		r := cli(t, dir, "", tc.args...)
		var want string
		for _, k := range strings.Fields(tc.want) {
			want += "/data/p/" + k + "\n"
		}
		if r.code != 0 || r.stdout != want || r.stderr != tc.stderr {
			t.Errorf("goatdb %s: exit %d, stdout %q, stderr %q; want %q, %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, want, tc.stderr)
		}
	}
	if got := ok(t, dir, "ls", "--json", "/data/p", "--limit", "9", "--prefix", "a"); got != `{"path":"/data/p/a1","deleted":false}`+"\n" {
		t.Errorf("ls --json: %q", got)
	}

	var all []string
	args := []string{"ls", "/data/p", "--limit", "2"}
	for range 10 {
		r := cli(t, dir, "", args...)
		all = append(all, strings.Fields(r.stdout)...)
		after, more := strings.CutPrefix(r.stderr, "more: ")
		if !more {
			break
		}
		args = append([]string{"ls", "/data/p", "--limit", "2"}, strings.Fields(after)...)
	}
	if got := fmt.Sprint(all); got != "[/data/p/a1 /data/p/b1 /data/p/b2 /data/p/b4 /data/p/c1]" {
		t.Errorf("pages: %s", got)
	}

	failure(t, cli(t, dir, "", "ls", "/data/p", "--limit", "-1"), 2, "--limit -1 is negative")
	failure(t, cli(t, dir, "", "ls", "--prefix", "a"), 2, "list the items of a REPO")
}
