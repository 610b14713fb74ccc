package schema

import "errors"

var (
	// ErrInvalidSchema is returned when a schema is not well formed: a bad
	// namespace, version 0, a bad or repeated field name, an unknown field
	// type, a default of the wrong type or one its field rejects, or renames
	// and removes that contradict each other.
	ErrInvalidSchema = errors.New("schema: invalid schema")

	// ErrDuplicate is returned when a namespace and version is registered
	// twice, or appears twice in one schema file.
	ErrDuplicate = errors.New("schema: duplicate schema version")

	// ErrUnknownSchema is returned when a namespace, or a version of it, is
	// not registered.
	ErrUnknownSchema = errors.New("schema: unknown schema")

	// ErrUnknownField is returned when an item has, or a caller names, a
	// field the schema does not define.
	ErrUnknownField = errors.New("schema: unknown field")

	// ErrWrongType is returned when a value is not of its field's type and
	// cannot be converted to it without loss (see item.Convert).
	ErrWrongType = errors.New("schema: wrong type")

	// ErrMissingField is returned when a required field that has no default
	// is absent from an item.
	ErrMissingField = errors.New("schema: missing required field")

	// ErrValidation is returned when a field's or a schema's Validate func
	// rejects a value or an item, or panics. The error also wraps the
	// func's own error, so errors.Is finds both.
	ErrValidation = errors.New("schema: validation failed")

	// ErrUpgrade is returned when an item cannot be upgraded from one
	// version of a schema to another: a downgrade, an Upgrade func that
	// fails or panics, or one that returns an invalid item.
	ErrUpgrade = errors.New("schema: upgrade failed")

	// ErrSyntax is returned when a schema file is not UTF-8 JSON of the
	// documented shape: a syntax error or bad UTF-8 (with its line, column
	// and byte offset), an unknown or repeated key, a value of the wrong
	// JSON type, or data after the top-level object.
	ErrSyntax = errors.New("schema: bad schema file")
)

// FieldError reports a problem with one field of one schema, or with a whole
// item or schema when Field is empty. Callers can prefix it with the item's
// path. Invalid values (NaN, bad UTF-8) are reported with an Err that wraps
// item.ErrInvalidValue.
type FieldError struct {
	Schema string // "ns/version", "dynamic", or the schema's place in a file
	Field  string // "" when the problem is not one field's
	Err    error
}

// Error returns `schema task/2: field "title": <reason>`, or
// `schema task/2: <reason>` when no field is named.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return "schema " + e.Schema + ": " + e.Err.Error()
	}
	return "schema " + e.Schema + ": field " + quote(e.Field) + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }
