package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

var putCommand = &command{
	name:    "put",
	args:    "PATH [JSON]",
	summary: "set fields of an item, creating it if needed",
	about: `Put sets the fields named in JSON, an object given as the argument or,
when it is absent or -, on standard input. A field given as null is removed;
the other fields keep their values (--replace removes them). A deleted
item is restored. Put prints the item's new head commit id.

Without a schema, fields are typed from their JSON values: a string is a
string, an integer literal that fits in 64 bits (42, -7) an int, any other
number (42.0, 1e3) a number, true and false a bool, an array a set, an
object a map; a Go program writing the same values gets the same types.
With --schema NS, or when the item already has a schema, the fields are
checked against the newest registered version of the schema and converted
where nothing is lost: an RFC 3339 string becomes a date, an int a number,
an integral number an int.`,
	setup: func(fs *flag.FlagSet) runFunc {
		ns := fs.String("schema", "", "check the item against the newest version of registered schema `NS`")
		replace := fs.Bool("replace", false, "remove the fields JSON does not name")
		return func(e *env, args []string) error { return put(e, args, *ns, *replace) }
	},
}

func put(e *env, args []string, ns string, replace bool) error {
	path, fields, err := putInput(e, args)
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
	if err := checkValues(reg, ns, fields); err != nil {
		return final(fmt.Errorf("put %s: %w", path, err))
	}
	var opts []goatdb.PutOption
	if ns != "" {
		opts = append(opts, goatdb.WithSchema(ns))
	}
	if replace {
		opts = append(opts, goatdb.Replace())
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		if err := checkNewRepo(db, reg, path, ns, fields); err != nil {
			return err
		}
		id, err := db.Put(path, fields, opts...)
		if err != nil {
			return final(err)
		}
		_, err = fmt.Fprintln(e.stdout, id)
		return err
	})
}

// checkNewRepo checks the item of a put into a repository that has no log
// yet: opening the repository creates the log, and a bad item must leave
// nothing behind.
func checkNewRepo(db *goatdb.DB, reg *schema.Registry, path, ns string, fields map[string]any) error {
	rp, _, _ := goatdb.SplitPath(path)
	exists, err := repoExists(db, rp)
	if err != nil || exists {
		return err
	}
	if err := validate(reg, ns, commit.Schema{}, false, fields); err != nil {
		return final(fmt.Errorf("put %s: %w", path, err))
	}
	return nil
}

// putInput checks put's arguments and returns the path and the fields.
func putInput(e *env, args []string) (string, map[string]any, error) {
	if len(args) < 1 || len(args) > 2 {
		return "", nil, usagef("put", "put takes PATH and an optional JSON object")
	}
	path := args[0]
	if _, _, err := goatdb.SplitPath(path); err != nil {
		return "", nil, invalidPath(path, "/type/repo/item")
	}
	data, where, err := jsonInput(e, args[1:])
	if err != nil {
		return "", nil, err
	}
	fields, err := parseObject(data, where)
	if err != nil {
		return "", nil, final(err)
	}
	return path, fields, nil
}

// jsonInput returns the JSON argument, or standard input when there is
// none, and how to name it in errors.
func jsonInput(e *env, args []string) ([]byte, string, error) {
	if len(args) == 1 && args[0] != "-" {
		return []byte(args[0]), "JSON argument", nil
	}
	data, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, "", fmt.Errorf("read standard input: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, "", final(errors.New(`no JSON on standard input; give the fields as an argument, like '{"title": "x"}', or on standard input`))
	}
	return data, "JSON on standard input", nil
}

func invalidPath(path, want string) error {
	return final(fmt.Errorf("invalid path %q: want %s, each part 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)", path, want))
}

// knownSchema checks that schema namespace ns ("" for none) is registered.
func knownSchema(reg *schema.Registry, ns string) error {
	if _, ok := reg.Latest(ns); ns != "" && !ok {
		return final(fmt.Errorf("schema %q is not registered; load a schema file with --schemas FILE or put it in DIR/schemas.json ('goatdb schema' lists the registered ones)", ns))
	}
	return nil
}

// repoExists reports whether the repository has a log.
func repoExists(db *goatdb.DB, rp string) (bool, error) {
	repos, err := db.Repos()
	if err != nil {
		return false, err
	}
	return slices.Contains(repos, rp), nil
}

// checkValues checks what does not depend on the item's current value:
// that every field is a storable value and, with a schema, converts to its
// field's type. Failing here, a write would fail too.
func checkValues(reg *schema.Registry, ns string, fields map[string]any) error {
	var sch *schema.Schema
	if ns != "" {
		sch, _ = reg.Latest(ns)
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if _, err := fieldValue(sch, name, fields[name]); err != nil {
			return err
		}
	}
	return nil
}

// fieldValue converts one field as Put does; nil means "remove".
func fieldValue(sch *schema.Schema, name string, x any) (item.Value, error) {
	if x == nil {
		return item.Value{}, nil
	}
	if strings.TrimSpace(name) == "" {
		return item.Value{}, errors.New("empty field name")
	}
	if sch != nil {
		return sch.CoerceAny(name, x)
	}
	v, err := item.FromAny(x)
	if err != nil {
		return item.Value{}, fmt.Errorf("field %q: %w", name, err)
	}
	return v, nil
}

// validate checks fields as the whole new value of an item, as Put with
// Replace would: ns is the schema asked for ("" for the item's own), cur
// the item's current schema when it exists. It mirrors the checks of
// goatdb's Put so that a command can refuse bad input before it writes
// anything.
func validate(reg *schema.Registry, ns string, cur commit.Schema, exists bool, fields map[string]any) error {
	if ns == "" {
		ns = cur.NS
	}
	var sch *schema.Schema
	if ns != "" {
		s, ok := reg.Latest(ns)
		if !ok {
			return fmt.Errorf("schema %q is not registered; load a schema file with --schemas FILE", ns)
		}
		if exists && cur.NS != ns {
			return fmt.Errorf("item has schema %s, not %s", cur, ns)
		}
		sch = s
	}
	var next item.Item
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v, err := fieldValue(sch, name, fields[name])
		if err != nil {
			return err
		}
		if fields[name] != nil {
			next = next.With(name, v)
		}
	}
	if sch == nil {
		return schema.CheckDynamic(next)
	}
	return sch.Check(sch.WithDefaults(next))
}
