package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestQuery runs GoatDB's two workload queries and the flags.
func TestQuery(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf(`{"key": "i%03d", "fields": {"title": "Item %d", "count": %d, "tags": ["tag%d", "category%d"]}}`, i, i, i, i, i%5))
	}
	lines = append(lines, `{"key": "nocount", "fields": {"title": "none"}}`)
	if r := cli(t, dir, strings.Join(lines, "\n"), "import", "/data/tasks", "--schema", "task"); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	ok(t, dir, "rm", "/data/tasks/i099")
	mustPut(t, dir, "/data/tasks/i097", `{"score": 1.5}`) // the only score: first, then the rest by path
	const nocount = `{"path":"/data/tasks/nocount","fields":{"count":0,"tags":[],"title":"none"}}` + "\n"
	const scored = `{"path":"/data/tasks/i097","fields":{"count":97,"score":1.5,"tags":["category2","tag97"],"title":"Item 97"}}` + "\n"
	item := func(i int) string {
		if i == 97 {
			return scored
		}
		return fmt.Sprintf(`{"path":"/data/tasks/i%03d","fields":{"count":%d,"tags":["category%d","tag%d"],"title":"Item %d"}}`+"\n", i, i, i%5, i, i)
	}
	items := func(is ...int) string {
		var b strings.Builder
		for _, i := range is {
			b.WriteString(item(i))
		}
		return b.String()
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--where", "count > 97"}, items(98)},
		{[]string{"--where", "count > 50", "--sort", "count", "--desc", "--limit", "3"}, items(98, 97, 96)},
		{[]string{"--where", `30 < count && count < 70 && "tag50" in tags`}, items(50)},
		{[]string{"--where", `30 < count < 33`}, items(31, 32)},
		{[]string{"--where", "count < 3", "--limit", "10"}, items(0, 1, 2) + nocount}, // fewer than the limit: all
		{[]string{"--where", `count < 1`, "--sort", "count"}, items(0) + nocount},     // schema default 0; ties by path
		{[]string{"--where", `count < 2 || count >= 97`, "--sort", "score", "--desc"}, items(97, 0, 1, 98) + nocount},
		{[]string{"--where", "missing > 1"}, ""},
		{[]string{"--where", "count > 97", "--schema", "note"}, ""},
		{[]string{"--where", "count > 97", "--schema", "task"}, items(98)},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := ok(t, dir, append([]string{"query", "/data/tasks"}, tt.args...)...); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	// No state is written by the read-only command.
	for p := range sizes(t, dir) {
		if strings.Contains(p, ".queries") {
			t.Errorf("query wrote %s", p)
		}
	}
}

func TestQueryFailures(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/q/a", `{"count": 1}`)
	failure(t, cli(t, dir, "", "query", "/data/q", "--where", "count >"), 2, `bad --where expression "count >": column 7: unexpected token EOF`)
	failure(t, cli(t, dir, "", "query", "/data/q", "--where", "count > 1 &&\n(x"), 2, "line 2, column")
	failure(t, cli(t, dir, "", "query", "/data/nope"), 1, "repository /data/nope not found")
	failure(t, cli(t, dir, "", "query", "/data/q", "--limit", "-1"), 2, "--limit -1 is negative")
	failure(t, cli(t, dir, "", "query", "data/q"), 2, "invalid path")
	failure(t, cli(t, dir, "", "query"), 2, "query takes one REPO")

	// An expression that fails on an item leaves it out, with a warning.
	r := cli(t, dir, "", "query", "/data/q", "--where", "len(count) > 0")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "warning: --where failed on 1 item, which was left out (first: /data/q/a: column 1: invalid argument for len") {
		t.Errorf("%+v", r)
	}
}
