package server

import (
	"testing"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/itemjson"
)

// FuzzAPIQueryValues: the values a JSON API request names in its query
// and headers (cursors, ETags, versions) parse or fail without a panic,
// and a parsed cursor prints back to one that parses the same.
func FuzzAPIQueryValues(f *testing.F) {
	for _, s := range []string{"0.0", "zz.1", "1.", ".1", `"aaaa"`, `W/"x"`, "2026-12-01T10:00:00Z", "", "\x00.\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, q, ok := parseCursor(s); ok {
			e2, q2, ok2 := parseCursor(cursorOf(e, q))
			if !ok2 || e2 != e || q2 != q {
				t.Fatalf("cursor %q → %d.%d → %q does not parse back", s, e, q, cursorOf(e, q))
			}
		}
		_, _ = parseETag(s)
		_, _ = parseVersion(s)
	})
}

// FuzzMergePatch: any JSON object patches any item's fields without a
// panic, and a field the patch sets to null is removed.
func FuzzMergePatch(f *testing.F) {
	for _, s := range []string{`{"a": null}`, `{"m": {"x": null, "y": {"z": 1}}}`, `{"s": [1, 2]}`, `{"m": 3}`} {
		f.Add([]byte(s))
	}
	cur := item.Item{}.With("a", item.String("x")).With("m", item.Map(map[string]item.Value{"x": item.Int(1)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		patch, err := itemjson.DecodeObject(data, "patch")
		if err != nil {
			return
		}
		out := mergePatch(cur, patch)
		for k, v := range patch {
			if got, ok := out[k]; v == nil && (!ok || got != nil) {
				t.Fatalf("field %q patched with null: %v (present %v), want nil (removed)", k, got, ok)
			}
		}
	})
}
