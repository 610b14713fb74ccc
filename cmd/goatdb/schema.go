package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

var schemaCommand = &command{
	name:    "schema",
	args:    "",
	summary: "list the registered schemas and their fields",
	about: `Schema lists the schemas loaded from --schemas FILE or DIR/schemas.json,
sorted by namespace and version, each with its fields in file order: name,
type, whether it is required and its default. The file format is described
in schema/FORMAT.md. --json prints one JSON object per schema:
{"namespace", "version", "fields": [{"name", "type", "required", "default"}]}.
With --schemas it does not open the data directory; without, DIR must be a
goatdb data directory.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON lines")
		return func(e *env, args []string) error { return listSchemas(e, args, *asJSON) }
	},
}

type schemaJSON struct {
	NS      string      `json:"namespace"`
	Version uint32      `json:"version"`
	Fields  []fieldJSON `json:"fields"`
}

type fieldJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Default  any    `json:"default,omitempty"`
}

func listSchemas(e *env, args []string, asJSON bool) error {
	if len(args) != 0 {
		return usagef("schema", "schema takes no arguments")
	}
	if e.schemas == "" {
		// DIR/schemas.json: a mistyped --dir must not list no schemas.
		if err := e.withDB(true, func(*goatdb.DB) error { return nil }); err != nil {
			return err
		}
	}
	reg, err := e.reg()
	if err != nil {
		return err
	}
	all := reg.All()
	if asJSON {
		for _, s := range all {
			if err := writeJSON(e.stdout, toSchemaJSON(s)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(all) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no schemas registered; give a schema file with --schemas FILE or write DIR/schemas.json (format: schema/FORMAT.md)")
		return err
	}
	nameW, typeW := 0, 0
	for _, s := range all {
		for _, f := range s.Fields {
			nameW = max(nameW, len(fieldName(f.Name)))
			typeW = max(typeW, len(f.Type.String()))
		}
	}
	var b strings.Builder
	for _, s := range all {
		fmt.Fprintf(&b, "%s/%d\n", s.NS, s.Version)
		for _, f := range s.Fields {
			line := fmt.Sprintf("  %-*s  %-*s  %s", nameW, fieldName(f.Name), typeW, f.Type, fieldNotes(f))
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	_, err = io.WriteString(e.stdout, b.String())
	return err
}

func toSchemaJSON(s *schema.Schema) schemaJSON {
	out := schemaJSON{NS: s.NS, Version: s.Version, Fields: []fieldJSON{}}
	for _, f := range s.Fields {
		fj := fieldJSON{Name: f.Name, Type: f.Type.String(), Required: f.Required}
		if f.Default.Type() != item.TypeInvalid {
			fj.Default = valueJSON(f.Default)
		}
		out.Fields = append(out.Fields, fj)
	}
	return out
}

func fieldNotes(f schema.Field) string {
	var notes []string
	if f.Required {
		notes = append(notes, "required")
	}
	if f.Default.Type() != item.TypeInvalid {
		var b strings.Builder
		writeJSON(&b, valueJSON(f.Default))
		notes = append(notes, "default "+strings.TrimSpace(b.String()))
	}
	if len(notes) == 0 {
		return ""
	}
	return strings.Join(notes, ", ")
}

// fieldName quotes a name that would not read as one word.
func fieldName(name string) string {
	if name == "" || strings.ContainsAny(name, " \t\n\r\"\\") {
		return strconv.Quote(name)
	}
	return name
}
