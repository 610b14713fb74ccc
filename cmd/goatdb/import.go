package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/schema"
)

var importCommand = &command{
	name:    "import",
	args:    "REPO [FILE]",
	summary: "load items from JSON lines (as export writes them)",
	about: `Import reads JSON lines from FILE, or standard input when FILE is absent
or -, one item per line (blank lines are skipped):

  {"key": "t1", "fields": {"title": "Write docs"}, "schema": "task"}

and sets each item REPO/KEY to exactly those fields (fields it had before
and that the line does not name are removed; a deleted item is restored).
"schema" is optional; lines without it use --schema NS, else the schema the
item already has, else none. Each key may appear once.

Import is all or nothing for bad input: it reads and checks every line
first (JSON, keys, field types, schemas) and writes only if all are good,
so a bad line (reported with its line number, exit 2) writes nothing. It
then writes in batches of --batch items, each batch atomic, with a
progress line on standard error every --progress items and a summary at
the end. Only a failure while writing (a full disk, an interrupt) leaves
the earlier batches written; running the same import again is safe and
finishes it, as items already equal to their line are not written again.`,
	setup: func(fs *flag.FlagSet) runFunc {
		ns := fs.String("schema", "", "schema namespace `NS` for lines that name none")
		batch := fs.Int("batch", 1000, "write `N` items per batch (each batch atomically)")
		progress := fs.Int("progress", 10000, "print a progress line every `N` items (0: never)")
		return func(e *env, args []string) error { return importItems(e, args, *ns, *batch, *progress) }
	},
}

// importRecord is one checked line of input.
type importRecord struct {
	line   int
	key    string
	ns     string
	fields map[string]any
}

func importItems(e *env, args []string, ns string, batch, progress int) error {
	if len(args) < 1 || len(args) > 2 {
		return usagef("import", "import takes REPO and an optional FILE")
	}
	rp := args[0]
	switch {
	case goatdb.CheckRepoPath(rp) != nil:
		return invalidPath(rp, "/type/repo")
	case batch < 1:
		return usagef("import", "--batch must be at least 1")
	case progress < 0:
		return usagef("import", "--progress must not be negative")
	}
	recs, name, err := readInput(e, args[1:])
	if err != nil {
		return err
	}
	reg, err := e.reg()
	if err != nil {
		return err
	}
	if err := knownSchema(reg, ns); err != nil {
		return err
	}
	// Check every line as a new item before opening the directory (exact
	// for new items; an existing item is checked again below against the
	// schema it has).
	for _, rec := range recs {
		if err := validate(reg, cmp.Or(rec.ns, ns), commit.Schema{}, false, rec.fields); err != nil {
			return lineError(name, rp, rec, err)
		}
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		if err := checkRecords(db, reg, rp, ns, recs, name); err != nil {
			return err
		}
		return writeRecords(e, db, rp, ns, recs, batch, progress)
	})
}

// readInput reads and parses the input: FILE, or standard input when
// args is empty or "-". It returns the records and the input's name.
func readInput(e *env, args []string) ([]importRecord, string, error) {
	in, name, err := openInput(e, args)
	if err != nil {
		return nil, "", err
	}
	recs, err := readRecords(in, name)
	if cerr := in.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return recs, name, err
}

func openInput(e *env, args []string) (io.ReadCloser, string, error) {
	if len(args) == 0 || args[0] == "-" {
		return io.NopCloser(e.stdin), "standard input", nil
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, "", final(fmt.Errorf("%w; give an existing FILE, or - for standard input", err))
	}
	return f, args[0], nil
}

// readRecords parses every line, checking its shape and key.
func readRecords(in io.Reader, name string) ([]importRecord, error) {
	r := bufio.NewReader(in)
	seen := map[string]int{}
	var recs []importRecord
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			rec, perr := parseRecord(line, name, n)
			if perr != nil {
				return nil, final(perr)
			}
			if first, dup := seen[rec.key]; dup {
				return nil, final(fmt.Errorf("%s: line %d: key %q is already on line %d; give each item once", name, n, rec.key, first))
			}
			seen[rec.key] = n
			rec.line = n
			recs = append(recs, rec)
		}
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
}

const recordShape = `{"key": "KEY", "fields": {...}} with an optional "schema": "NS"`

func parseRecord(line []byte, name string, n int) (importRecord, error) {
	v, err := parseJSON(line, name, n)
	if err != nil {
		return importRecord{}, err
	}
	where := fmt.Sprintf("%s: line %d", name, n)
	obj, ok := v.(map[string]any)
	if !ok {
		return importRecord{}, fmt.Errorf("%s: the line is %s, not an object %s", where, jsonKind(v), recordShape)
	}
	var rec importRecord
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		x := obj[k]
		switch k {
		case "key":
			s, ok := x.(string)
			if !ok {
				return rec, fmt.Errorf("%s: \"key\" is %s, not a string", where, jsonKind(x))
			}
			if err := commit.ValidKey(s); err != nil {
				return rec, fmt.Errorf("%s: invalid key %q: use 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)", where, s)
			}
			rec.key = s
		case "fields":
			m, ok := x.(map[string]any)
			if !ok {
				return rec, fmt.Errorf("%s: \"fields\" is %s, not an object", where, jsonKind(x))
			}
			rec.fields = m
		case "schema":
			s, ok := x.(string)
			if !ok {
				return rec, fmt.Errorf("%s: \"schema\" is %s, not a string", where, jsonKind(x))
			}
			rec.ns = s
		default:
			return rec, fmt.Errorf("%s: unknown key %q; a line is %s", where, k, recordShape)
		}
	}
	switch {
	case rec.key == "":
		return rec, fmt.Errorf("%s: no \"key\"; a line is %s", where, recordShape)
	case rec.fields == nil:
		return rec, fmt.Errorf("%s: no \"fields\"; a line is %s", where, recordShape)
	}
	return rec, nil
}

// checkRecords checks every item against its schema and the item it
// replaces, so that writing cannot fail on bad input.
func checkRecords(db *goatdb.DB, reg *schema.Registry, rp, ns string, recs []importRecord, name string) error {
	exists, err := repoExists(db, rp)
	if err != nil || !exists {
		return err // all items are new, and were checked as such
	}
	// Only an existing repository is opened: opening creates the log.
	r, err := db.Repo(rp)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		_, cur, found := r.Get(rec.key)
		if err := validate(reg, cmp.Or(rec.ns, ns), cur, found, rec.fields); err != nil {
			return lineError(name, rp, rec, err)
		}
	}
	return nil
}

func lineError(name, rp string, rec importRecord, err error) error {
	return final(fmt.Errorf("%s: line %d: item %s/%s: %w", name, rec.line, rp, rec.key, err))
}

func writeRecords(e *env, db *goatdb.DB, rp, ns string, recs []importRecord, batch, progress int) error {
	done := 0
	for done < len(recs) {
		if err := e.ctx.Err(); err != nil {
			return partial(rp, done, len(recs), errors.New("interrupted"))
		}
		end := min(done+batch, len(recs))
		b := db.Batch()
		for _, rec := range recs[done:end] {
			opts := []goatdb.PutOption{goatdb.Replace()}
			if s := cmp.Or(rec.ns, ns); s != "" {
				opts = append(opts, goatdb.WithSchema(s))
			}
			b.Put(rp+"/"+rec.key, rec.fields, opts...)
		}
		if _, err := b.Commit(); err != nil {
			return partial(rp, done, len(recs), err)
		}
		if progress > 0 && end < len(recs) && end/progress > done/progress {
			fmt.Fprintf(e.stderr, "goatdb: import: %d of %d items written\n", end, len(recs))
		}
		done = end
	}
	fmt.Fprintf(e.stderr, "goatdb: imported %d %s into %s\n", len(recs), plural(len(recs), "item"), rp)
	return nil
}

func partial(rp string, done, total int, err error) error {
	return fmt.Errorf("import into %s: %w; %d of %d items were written, run the same import again to finish", rp, err, done, total)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
