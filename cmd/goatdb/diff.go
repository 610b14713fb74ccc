package main

import (
	"errors"
	"flag"
	"io"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
)

var diffCommand = &command{
	name:    "diff",
	args:    "PATH FROM [TO]",
	summary: "print what changed in an item between two versions",
	about: `Diff prints the fields of the item that differ from version FROM to version
TO (its current value if TO is left out), one JSON object per line, sorted
by field:

  {"field": "title", "old": "first", "new": "second"}   a value replaced
  {"field": "note", "new": "..."}                        a field added
  {"field": "done", "old": true}                         a field removed
  {"field": "tags", "added": [...], "removed": [...]}    a set's elements
  {"field": "meta", "put": {...}, "unset": [...]}        a map's keys

and {"deleted": true} or {"restored": true} last if the item was deleted or
restored in between. A version is a commit (its 64-hex id, from 'goatdb
log') or a time (RFC 3339, like 2024-05-01T12:00:00Z: the version the item
had then; a time before it existed diffs from nothing). Values print as
'goatdb get' prints them.`,
	setup: func(*flag.FlagSet) runFunc { return diff },
}

// changeLine is one line of diff and log -p.
type changeLine struct {
	Field    string         `json:"field,omitempty"`
	Old      any            `json:"old,omitempty"`
	New      any            `json:"new,omitempty"`
	Added    []any          `json:"added,omitempty"`
	Removed  []any          `json:"removed,omitempty"`
	Put      map[string]any `json:"put,omitempty"`
	Unset    []string       `json:"unset,omitempty"`
	Deleted  bool           `json:"deleted,omitempty"`
	Restored bool           `json:"restored,omitempty"`
}

func diff(e *env, args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return usagef("diff", "diff takes PATH FROM [TO]")
	}
	path := args[0]
	if _, _, err := goatdb.SplitPath(path); err != nil {
		return invalidPath(path, "/type/repo/item")
	}
	from, err := parseVersion(args[1])
	if err != nil {
		return err
	}
	var to goatdb.Version
	if len(args) == 3 {
		if to, err = parseVersion(args[2]); err != nil {
			return err
		}
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		d, err := db.Diff(path, from, to)
		switch {
		case errors.Is(err, goatdb.ErrCollected):
			return failf("%v; 'goatdb log %s' shows the history kept", err, path)
		case errors.Is(err, goatdb.ErrNotFound):
			return failf("%v", err)
		case err != nil:
			return err
		}
		return writeChanges(e.stdout, d)
	})
}

// parseVersion reads a commit id or an RFC 3339 time.
func parseVersion(s string) (goatdb.Version, error) {
	if id, err := commit.ParseID(s); err == nil {
		return goatdb.VersionAt(id), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return goatdb.Version{}, usagef("diff", "%q is neither a commit id (64 hex digits, from 'goatdb log') nor an RFC 3339 time like 2024-05-01T12:00:00Z", s)
	}
	return goatdb.VersionAsOf(t), nil
}

// writeChanges writes a diff's lines.
func writeChanges(w io.Writer, d goatdb.ItemDiff) error {
	for _, l := range changeLines(d) {
		if err := writeJSON(w, l); err != nil {
			return err
		}
	}
	if d.Deleted || d.Restored {
		return writeJSON(w, changeLine{Deleted: d.Deleted, Restored: d.Restored})
	}
	return nil
}

// changeLines returns the lines of a diff's field changes.
func changeLines(d goatdb.ItemDiff) []changeLine {
	out := make([]changeLine, 0, len(d.Changes))
	for _, c := range d.Changes {
		l := changeLine{Field: c.Field, Old: plainJSON(c.Old), New: plainJSON(c.New), Unset: c.Unset}
		for _, v := range c.Added {
			l.Added = append(l.Added, plainJSON(v))
		}
		for _, v := range c.Removed {
			l.Removed = append(l.Removed, plainJSON(v))
		}
		if c.Put != nil {
			l.Put = plainJSON(c.Put).(map[string]any)
		}
		out = append(out, l)
	}
	return out
}

// plainJSON prints dates as 'goatdb get' does, inside sets and maps too.
func plainJSON(v any) any {
	switch x := v.(type) {
	case time.Time:
		return formatTime(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	}
	return v
}
