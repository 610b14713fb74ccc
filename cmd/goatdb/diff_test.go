package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDiffCommand: goatdb diff between commits and to the current value,
// sets and maps element by element, a deletion, log -p, and bad input.
func TestDiffCommand(t *testing.T) {
	dir := newDir(t)
	const p = "/data/x/a"
	v1 := mustPut(t, dir, p, `{"title": "first", "tags": ["a", "b"], "meta": {"k1": "x"}, "done": false}`)
	v2 := mustPut(t, dir, p, `{"title": "second", "tags": ["b", "c"], "meta": {"k1": "y", "k2": "z"}, "done": null, "due": "2026-05-01T12:00:00Z"}`)
	want := `{"field":"done","old":false}
{"field":"due","new":"2026-05-01T12:00:00Z"}
{"field":"meta","put":{"k1":"y","k2":"z"}}
{"field":"tags","added":["c"],"removed":["a"]}
{"field":"title","old":"first","new":"second"}
`
	if got := ok(t, dir, "diff", p, v1, v2); got != want {
		t.Fatalf("diff v1 v2:\n%s\nwant:\n%s", got, want)
	}
	if got := ok(t, dir, "diff", p, v1); got != want {
		t.Fatalf("diff v1 (to current):\n%s\nwant:\n%s", got, want)
	}
	if got := ok(t, dir, "diff", p, v2); got != "" {
		t.Fatalf("diff of the current version with itself: %q", got)
	}
	ok(t, dir, "rm", p)
	if got := ok(t, dir, "diff", p, v2); got != `{"deleted":true}`+"\n" {
		t.Fatalf("diff to the deleted item: %q", got)
	}

	// log -p: each commit with its changes against its first parent.
	lines := strings.Split(strings.TrimSpace(ok(t, dir, "log", "-p", p)), "\n")
	if len(lines) != 3 {
		t.Fatalf("log -p: %d lines, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var entries []struct {
		ID      string            `json:"id"`
		Changes *[]map[string]any `json:"changes"`
		Deleted bool              `json:"deleted"`
	}
	for _, l := range lines {
		var e struct {
			ID      string            `json:"id"`
			Changes *[]map[string]any `json:"changes"`
			Deleted bool              `json:"deleted"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	if e := entries[0]; !e.Deleted || e.Changes == nil || len(*e.Changes) != 0 {
		t.Errorf("log -p, the deletion: %+v", e)
	}
	if e := entries[1]; e.ID != v2 || e.Changes == nil || len(*e.Changes) != 5 {
		t.Errorf("log -p, v2: %s", lines[1])
	}
	if e := entries[2]; e.ID != v1 || e.Changes == nil || len(*e.Changes) != 4 || (*e.Changes)[0]["new"] != false {
		t.Errorf("log -p, v1 (from nothing): %s", lines[2])
	}
	if plain := ok(t, dir, "log", p); strings.Contains(plain, "changes") {
		t.Errorf("log without -p shows changes: %s", plain)
	}

	failure(t, cli(t, dir, "", "diff", p), 2, "diff takes PATH FROM [TO]")
	failure(t, cli(t, dir, "", "diff", p, "yesterday"), 2, "neither a commit id")
	failure(t, cli(t, dir, "", "diff", "/data/x/none", v1), 1, "not found")
	failure(t, cli(t, dir, "", "diff", p, strings.Repeat("0", 64)), 1, "not found")
}
