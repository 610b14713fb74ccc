// Package schema defines goatdb's schemas: the fields, types, defaults and
// validation of the items of a namespace, the versions of a namespace and
// the upgrades between them, the [Registry] that holds them, and the JSON
// schema files the CLI and server load them from.
//
// # Schemas and references
//
// A [Schema] is one version of a namespace ("task/2"). Commits store only a
// reference, a commit.Schema{NS, Version}; [Schema.Ref] returns it. A
// namespace is 1–128 characters of A-Z a-z 0-9 . _ - and a version is 1 or
// more. Field names are 1–1024 bytes of UTF-8 without NUL, as in package
// item.
//
// The zero reference is the dynamic schema: items written without a
// schema, whose field types come from their values. Typed from JSON (see
// item.FromAny, with numbers as json.Number), a string is a string, an
// integer literal that fits in an int64 an int, any other number a number
// (float64), true and false a bool, an array a set and an object a map;
// null is not a value. [CheckDynamic] checks such an item: every name and value must be
// storable.
//
// # Checking items
//
// [Schema.Coerce] prepares a value for a field at write time: it converts
// it without loss (item.Convert: int to number when a float64 holds it
// exactly, integral number up to 2^53 to int, RFC 3339 string or
// milliseconds to date) and runs the field's Validate
// func. [Schema.Check] checks a whole item: every field known and exactly
// of its type, every Validate func passing, every required field present
// unless it has a default. [Schema.WithDefaults] fills absent fields that
// have defaults. Errors are *[FieldError]s naming the schema and the
// field (`schema task/2: field "title": schema: missing required field`),
// so callers can prefix the item's path; errors.Is finds the sentinel.
//
// # Upgrades
//
// [Registry.Upgrade] takes an item of version f to version t of its
// namespace. For each registered version v with f < v <= t, in ascending
// order, it renames fields (v's Renames, all at once), drops fields (v's
// Removes), calls v's Upgrade func, converts fields to v's types where
// item.Convert loses nothing (an integral number to int; a value that does
// not convert stays as it is, for Check to report: an upgrade never drops
// data on its own), then fills v's defaults. Versions may
// be registered in any order and need not be contiguous: v's changes apply
// from whichever version is registered before it. An item of the dynamic
// schema, or one already at version t, is returned unchanged. Merges
// upgrade every leaf to the newest schema among them ([Newest]) before
// merging, so the result must not depend on where the upgrade runs.
//
// # Invariants
//
//   - Upgrade is deterministic: the same item, versions and registered
//     schemas give the same result on every peer, provided Upgrade funcs
//     are pure functions of their input (they must be).
//   - A schema in a Registry never changes: Register stores a copy, and the
//     *Schema values Lookup, Latest and All return are shared and must not
//     be modified. A version, once registered, cannot be replaced.
//   - A Registry is safe for concurrent use. Validate and Upgrade funcs run
//     without any lock held, possibly concurrently, and may use the
//     registry.
//   - User funcs that panic are recovered and reported as errors wrapping
//     [ErrValidation] or [ErrUpgrade]; no function of this package panics.
//   - Register and RegisterFile are all-or-nothing: a refused schema leaves
//     the registry unchanged.
//   - ParseFile accepts any bytes without panicking, and a file it accepts
//     registers into an empty Registry without error.
//
// # Schema files
//
// Where Go code cannot register schemas (the CLI, the server), they come
// from a JSON file, read by [ParseFile], [LoadFile] and
// [Registry.RegisterFile]. FORMAT.md in this directory documents it for
// users; in short:
//
//	{
//	  "schemas": [
//	    {"namespace": "task", "version": 1,
//	     "fields": {"title": {"type": "string", "required": true},
//	                "count": {"type": "number", "default": 0},
//	                "tags":  {"type": "set", "default": []},
//	                "done":  {"type": "bool"}}},
//	    {"namespace": "task", "version": 2,
//	     "fields": {"name":  {"type": "string", "required": true},
//	                "count": {"type": "int", "default": 0}},
//	     "renames": {"title": "name"},
//	     "removes": ["done"]}
//	  ]
//	}
//
//	file      {"schemas": [schema, ...]}                          "schemas" required
//	schema    "namespace" string, "version" integer >= 1          required
//	          "fields"    {name: field, ...}                      fields in file order
//	          "renames"   {old name: new name, ...}               from the previous version
//	          "removes"   [name, ...]                             from the previous version
//	field     "type"      string, number, int, bool, date, set, map   required
//	          "required"  true or false                           default false
//	          "default"   JSON value typed as the dynamic schema types it, then
//	                      converted to the field's type: an integral number for
//	                      int, an RFC 3339 string for date, an array for set,
//	                      an object for map
//	          "min", "max"  numbers, for number and int fields (inclusive)
//	          "maxLength"   integer >= 0, for string fields (in characters)
//	          "enum"        non-empty array of distinct strings, for string fields
//
// Unknown keys (matched exactly, with case), repeated keys, values of the
// wrong JSON type and data after the top-level object are errors wrapping
// [ErrSyntax]; a JSON syntax error gives its line, column and byte offset.
// The constraints compile to the field's Validate func, and a default must
// satisfy them. Every error about a schema names it ("task/2", or
// "schemas[1]" while its namespace or version is unusable) and the field.
package schema
