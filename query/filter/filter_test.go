package filter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query/filter"
)

func TestMatch(t *testing.T) {
	it := item.New(map[string]item.Value{
		"count": item.Int(60),
		"score": item.Number(2.5),
		"title": item.String("Write docs"),
		"tags":  item.StringSet("tag50", "docs"),
		"due":   item.Date(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)),
		"done":  item.Bool(false),
		"meta":  item.Map(map[string]item.Value{"owner": item.String("ann")}),
	})
	tests := []struct {
		expr string
		want bool
	}{
		{`count > 50`, true},
		{`count > 60`, false},
		{`30 < count && count < 70 && "tag50" in tags`, true},
		{`30 < count && count < 70 && "tag51" in tags`, false},
		{`30 < count < 70`, true},
		{`30 < count < 50`, false},
		{`70 < count < 90`, false},
		{`score >= 2.5 && score < 3`, true},
		{`count > 59.5`, true},
		{`title startsWith "Write"`, true},
		{`title > "A"`, true},
		{`due < date("2026-01-01")`, true},
		{`due > date("2026-01-01")`, false},
		{`not done`, true},
		{`meta.owner == "ann"`, true},
		{`len(tags) == 2`, true},
		{`count(tags, # startsWith "tag") == 1`, true}, // the builtin when called
		// Missing fields are nil: ordering is false, equality works.
		{`missing > 3`, false},
		{`missing < 3`, false},
		{`missing == nil`, true},
		{`"x" in missing`, false},
		// Mismatched types do not order.
		{`title > 3`, false},
		{`title < 3`, false},
	}
	for _, tt := range tests {
		f, err := filter.Compile(tt.expr)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		got, err := f.Match(it)
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

// TestMatchNumbers checks that ints and numbers compare by exact value,
// whichever way round and whichever type each side is.
func TestMatchNumbers(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		{`n == 1`, true},
		{`n == 1.0`, true},
		{`1 == n`, true},
		{`n != 1`, false},
		{`n != 2`, true},
		{`n > 0.5`, true},
		{`n < 1.5`, true},
		{`n >= 1 && n <= 1.0`, true},
		{`n > 1`, false},
		{`n in [1, 2]`, true},
		{`n == "1"`, false},
		{`n == nil`, false},
		{`nil == nil`, true},
		{`[1, 2] == [1, 2]`, true},
		{`"a" != "b"`, true},
	}
	for _, v := range []item.Value{item.Int(1), item.Number(1)} {
		it := item.New(map[string]item.Value{"n": v})
		for _, tt := range tests {
			f, err := filter.Compile(tt.expr)
			if err != nil {
				t.Errorf("%s: %v", tt.expr, err)
				continue
			}
			if got, err := f.Match(it); err != nil || got != tt.want {
				t.Errorf("%s with n = %#v: %v, %v; want %v", tt.expr, v, got, err, tt.want)
			}
		}
	}
	// Past 2^53 a float64 cannot hold every int: converting would make
	// 2^53+1 equal to 2^53.
	big := item.New(map[string]item.Value{"i": item.Int(1<<53 + 1), "f": item.Number(1 << 53)})
	for expr, want := range map[string]bool{
		`i == f`: false, `i != f`: true, `i > f`: true, `f < i`: true, `i <= f`: false,
		`i == 9007199254740992.0`: false, `i == 9007199254740993`: true,
	} {
		f, err := filter.Compile(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got, err := f.Match(big); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", expr, got, err, want)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	tests := []struct {
		expr      string
		line, col int
	}{
		{`count >`, 1, 7},
		{`count > 50 &&`, 1, 13},
		{`count >> 3`, 1, 8},
		{"count > 1 &&\n  (tags", 2, 7},
		{`"unterminated`, 1, 14},
	}
	for _, tt := range tests {
		_, err := filter.Compile(tt.expr)
		var se *filter.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: %v, want a SyntaxError", tt.expr, err)
			continue
		}
		if se.Line != tt.line || se.Column != tt.col || se.Msg == "" {
			t.Errorf("%q: line %d column %d (%s), want line %d column %d", tt.expr, se.Line, se.Column, se.Msg, tt.line, tt.col)
		}
	}
}

func TestRuntimeError(t *testing.T) {
	f, err := filter.Compile(`len(count) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.Match(item.New(map[string]item.Value{"count": item.Int(3)}))
	if ok || err == nil {
		t.Errorf("Match = %v, %v; want an error", ok, err)
	}
}
