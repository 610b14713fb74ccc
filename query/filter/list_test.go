package filter_test

import (
	"testing"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query/filter"
)

// TestMatchListCounter checks that a list field is an array in expressions
// (in, len, indexing, in order, duplicates kept) and a counter a number.
func TestMatchListCounter(t *testing.T) {
	it := item.New(map[string]item.Value{
		"items": item.StringList("milk", "eggs", "milk"),
		"empty": item.StringList(),
		"views": item.Counter(42),
	})
	tests := []struct {
		expr string
		want bool
	}{
		{`"eggs" in items`, true},
		{`"bread" in items`, false},
		{`len(items) == 3`, true},
		{`items[0] == "milk" && items[1] == "eggs"`, true},
		{`items[-1] == "milk"`, true},
		{`count(items, # == "milk") == 2`, true},
		{`len(empty) == 0`, true},
		{`views > 40`, true},
		{`views == 42`, true},
		{`views == 42.0`, true},
		{`views < 41.5`, false},
		{`views + 1 == 43`, true},
	}
	for _, tt := range tests {
		f, err := filter.Compile(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if got, err := f.Match(it); err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}
