package schema_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// TestParseFileGolden parses every testdata/files/NAME.json and compares
// what it gives with NAME.golden: the schemas, or the error and the
// sentinels it wraps. If NAME.probes exists, its commands run against the
// registered schemas and their results are part of the golden output (see
// runProbe). Regenerate with: go test ./schema -run Golden -update
func TestParseFileGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "files", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			got := goldenOutput(t, in)
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if dbtest.Update() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the output:\n--- want\n%s--- got\n%s", golden, want, got)
			}
		})
	}
}

func goldenOutput(t *testing.T, in string) string {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	schemas, err := schema.ParseFile(data)
	if err != nil {
		b.WriteString(describeErr(err))
		return b.String()
	}
	for _, s := range schemas {
		dumpSchema(&b, &s)
	}
	r := schema.NewRegistry()
	if err := r.RegisterFile(in); err != nil {
		t.Fatalf("a file that parses does not register: %v", err)
	}
	probes, err := os.ReadFile(strings.TrimSuffix(in, ".json") + ".probes")
	if errors.Is(err, fs.ErrNotExist) {
		return b.String()
	} else if err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	sc := bufio.NewScanner(bytes.NewReader(probes))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			fmt.Fprintf(&b, "%s\n  -> %s\n", line, runProbe(t, r, line))
		}
	}
	return b.String()
}

var sentinels = []struct {
	name string
	err  error
}{
	{"ErrSyntax", schema.ErrSyntax}, {"ErrInvalidSchema", schema.ErrInvalidSchema},
	{"ErrDuplicate", schema.ErrDuplicate}, {"ErrUnknownSchema", schema.ErrUnknownSchema},
	{"ErrUnknownField", schema.ErrUnknownField}, {"ErrWrongType", schema.ErrWrongType},
	{"ErrMissingField", schema.ErrMissingField}, {"ErrValidation", schema.ErrValidation},
	{"ErrUpgrade", schema.ErrUpgrade}, {"item.ErrInvalidValue", item.ErrInvalidValue},
}

// describeErr formats an error with the sentinels it wraps.
func describeErr(err error) string {
	var is []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			is = append(is, s.name)
		}
	}
	return fmt.Sprintf("error [%s]: %v\n", strings.Join(is, " "), err)
}

func dumpSchema(b *strings.Builder, s *schema.Schema) {
	fmt.Fprintf(b, "%s\n", s.Ref())
	for _, f := range s.Fields {
		fmt.Fprintf(b, "  field %q: %s", f.Name, f.Type)
		if f.Required {
			b.WriteString(", required")
		}
		if f.Default.Type() != item.TypeInvalid {
			fmt.Fprintf(b, ", default %#v", f.Default)
		}
		if f.Validate != nil {
			b.WriteString(", constrained")
		}
		b.WriteString("\n")
	}
	for _, old := range slices.Sorted(maps.Keys(s.Renames)) {
		fmt.Fprintf(b, "  rename %q -> %q\n", old, s.Renames[old])
	}
	for _, name := range s.Removes {
		fmt.Fprintf(b, "  remove %q\n", name)
	}
}

// runProbe runs one probe command:
//
//	coerce NS/V FIELD JSON     Schema.Coerce of the JSON value, typed as the dynamic schema types it
//	coerceany NS/V FIELD JSON  Schema.CoerceAny of the JSON value as encoding/json decodes it
//	check NS/V JSON-OBJECT     Coerce every field, as a writer would, then Schema.Check
//	defaults NS/V JSON-OBJECT  Schema.WithDefaults
//	upgrade NS/V TO JSON-OBJECT  Registry.Upgrade of the item, typed as the dynamic schema types it
func runProbe(t *testing.T, r *schema.Registry, line string) string {
	t.Helper()
	cmd, rest, _ := strings.Cut(line, " ")
	refText, rest, _ := strings.Cut(rest, " ")
	ref := parseRef(t, refText)
	s, ok := r.Lookup(ref)
	if !ok && cmd != "upgrade" {
		t.Fatalf("probe %q: schema %s not registered", line, ref)
	}
	switch cmd {
	case "coerce":
		field, js, _ := strings.Cut(rest, " ")
		v, err := s.Coerce(field, dynamicValue(t, js))
		return result(v.GoString(), err)
	case "coerceany":
		field, js, _ := strings.Cut(rest, " ")
		var x any
		if err := json.Unmarshal([]byte(js), &x); err != nil {
			t.Fatalf("probe JSON %s: %v", js, err)
		}
		v, err := s.CoerceAny(field, x)
		return result(v.GoString(), err)
	case "check":
		it, err := coerceAll(s, dynamicItem(t, rest))
		if err == nil {
			err = s.Check(it)
		}
		return result("ok", err)
	case "defaults":
		return s.WithDefaults(dynamicItem(t, rest)).String()
	case "upgrade":
		toText, js, _ := strings.Cut(rest, " ")
		to, err := strconv.ParseUint(toText, 10, 32)
		if err != nil {
			t.Fatalf("probe %q: %v", line, err)
		}
		it, err := r.Upgrade(dynamicItem(t, js), ref, uint32(to))
		return result(it.String(), err)
	}
	t.Fatalf("unknown probe %q", line)
	return ""
}

func result(ok string, err error) string {
	if err != nil {
		return strings.TrimSuffix(describeErr(err), "\n")
	}
	return ok
}

func coerceAll(s *schema.Schema, it item.Item) (item.Item, error) {
	for name, v := range it.All() {
		c, err := s.Coerce(name, v)
		if err != nil {
			return it, err
		}
		it = it.With(name, c)
	}
	return it, nil
}

func parseRef(t *testing.T, s string) commit.Schema {
	ns, v, _ := strings.Cut(s, "/")
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		t.Fatalf("bad schema reference %q", s)
	}
	return commit.Schema{NS: ns, Version: uint32(n)}
}

func dynamicValue(t *testing.T, js string) item.Value {
	var x any
	if err := json.Unmarshal([]byte(js), &x); err != nil {
		t.Fatalf("probe JSON %s: %v", js, err)
	}
	v, err := item.FromAny(x)
	if err != nil {
		t.Fatalf("probe JSON %s: %v", js, err)
	}
	return v
}

func dynamicItem(t *testing.T, js string) item.Item {
	v := dynamicValue(t, js)
	if v.Type() != item.TypeMap {
		t.Fatalf("probe item %s is not an object", js)
	}
	fields := map[string]item.Value{}
	for i, k := range v.Keys() {
		fields[k] = v.Elems()[i]
	}
	return item.New(fields)
}

func TestLoadFile(t *testing.T) {
	if _, err := schema.LoadFile(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schemas": [}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := schema.LoadFile(bad)
	checkErr(t, err, schema.ErrSyntax, "load schema file "+bad+": schema: bad schema file: line 1, column 14 (byte offset 13)")
	schemas, err := schema.LoadFile(filepath.Join("testdata", "files", "valid_example.json"))
	if err != nil || len(schemas) != 2 {
		t.Fatalf("LoadFile(valid_example.json) = %d schemas, %v", len(schemas), err)
	}
}

func TestRegisterFileAllOrNothing(t *testing.T) {
	path := filepath.Join("testdata", "files", "valid_example.json")
	r := schema.NewRegistry()
	if err := r.Register(schema.Schema{NS: "task", Version: 2}); err != nil {
		t.Fatal(err)
	}
	err := r.RegisterFile(path)
	checkErr(t, err, schema.ErrDuplicate, "register schema file "+path+": schema task/2: schema: duplicate schema version")
	if _, ok := r.Lookup(commit.Schema{NS: "task", Version: 1}); ok {
		t.Fatal("task/1 registered although the file was refused")
	}
	if err := r.RegisterFile(filepath.Join("testdata", "files", "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RegisterFile(missing) = %v", err)
	}
	r = schema.NewRegistry()
	if err := r.RegisterFile(path); err != nil {
		t.Fatal(err)
	}
	if len(r.All()) != 2 {
		t.Fatalf("registered %d schemas, want 2", len(r.All()))
	}
}

// FuzzParseFile checks that ParseFile never panics, that its errors wrap a
// sentinel, and that a file it accepts registers, and its schemas work,
// without error or panic.
func FuzzParseFile(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "files", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		schemas, err := schema.ParseFile(data)
		if err != nil {
			if !errors.Is(err, schema.ErrSyntax) && !errors.Is(err, schema.ErrInvalidSchema) && !errors.Is(err, schema.ErrDuplicate) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		r := schema.NewRegistry()
		for _, s := range schemas {
			if err := r.Register(s); err != nil {
				t.Fatalf("parsed schema %s does not register: %v", s.Ref(), err)
			}
		}
		exercise(t, r)
	})
}

// exercise uses every registered schema: defaults must pass their fields'
// checks, and upgrades from the first version must not fail.
func exercise(t *testing.T, r *schema.Registry) {
	for _, s := range r.All() {
		for _, f := range s.Fields {
			if f.Default.Type() == item.TypeInvalid {
				continue
			}
			if _, err := s.Coerce(f.Name, f.Default); err != nil {
				t.Fatalf("default of %s field %q: %v", s.Ref(), f.Name, err)
			}
		}
		_ = s.Check(s.WithDefaults(item.New(nil)))
		if _, err := r.Upgrade(item.New(nil), commit.Schema{NS: s.NS, Version: 0}, s.Version); err != nil {
			t.Fatalf("upgrade an empty item to %s: %v", s.Ref(), err)
		}
	}
}
