// Package filter compiles the small filter expressions that the goatdb
// command (and later the HTTP API) accept for queries, using
// github.com/expr-lang/expr.
//
// An expression sees an item's fields as variables: strings, numbers
// (float64), ints (int64), bools, dates (time.Time), sets as arrays and
// maps as maps. A field the item lacks is nil. Ints and numbers compare by
// value (== and the ordering operators alike), so n == 1 and n > 0.5 match
// both the int 1 and the number 1.0. So
//
//	count > 50
//	30 < count && count < 70 && "tag50" in tags
//	30 < count < 70
//	title startsWith "Write" or done == true
//	due < date("2025-01-01")
//
// all work. Ordering comparisons (< <= > >=) with nil — a missing field —
// are false rather than an error, as are comparisons of a number with a
// string; equality with nil is true only for nil. A field whose name is
// also one of expr's builtins (count, len, all, ...) is the field when used
// as a variable and the builtin when called. Other evaluation errors (say
// len of a number) make Match return the error; the command treats the
// item as not matching and says so on standard error.
//
// A Filter is safe for concurrent use.
package filter

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/goatdb/goatdb/item"
)

// SyntaxError is returned by Compile for an expression that does not
// parse or does not type-check.
type SyntaxError struct {
	Expr   string
	Line   int // 1-based
	Column int // 1-based, in characters
	Msg    string
}

func (e *SyntaxError) Error() string {
	if strings.Contains(e.Expr, "\n") {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
}

// Filter is a compiled expression.
type Filter struct {
	src  string
	prog *vm.Program
	vms  sync.Pool
}

// ordering comparison operators and the functions that replace them.
var orderOps = map[string]string{"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}

// equality operators and the functions that replace them: expr compares an
// int64 with a float64 by converting the int, which rounds past 2^53.
var equalOps = map[string]string{"==": "_eq", "!=": "_ne"}

// Compile compiles src once; Match evaluates it per item.
func Compile(src string) (*Filter, error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, syntaxError(src, err)
	}
	names := &identifiers{vars: map[string]bool{}, calls: map[string]bool{}}
	ast.Walk(&tree.Node, names)
	opts := []expr.Option{
		expr.Env(map[string]any{}), expr.AllowUndefinedVariables(), expr.AsBool(),
		expr.Patch(orderPatch{}),
	}
	for name := range names.vars {
		if !names.calls[name] {
			opts = append(opts, expr.DisableBuiltin(name)) // a field, not the builtin
		}
	}
	for op, fn := range orderOps {
		opts = append(opts, expr.Function(fn, ordering(op), new(func(any, any) bool)))
	}
	for op, fn := range equalOps {
		opts = append(opts, expr.Function(fn, equality(op == "=="), new(func(any, any) bool)))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, syntaxError(src, err)
	}
	f := &Filter{src: src, prog: prog}
	f.vms.New = func() any { return new(vm.VM) }
	return f, nil
}

func syntaxError(src string, err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &SyntaxError{Expr: src, Line: 1, Column: 1, Msg: err.Error()}
	}
	return &SyntaxError{Expr: src, Line: max(fe.Line, 1), Column: fe.Column + 1, Msg: fe.Message}
}

// String returns the expression.
func (f *Filter) String() string { return f.src }

// Match evaluates the filter on an item's fields.
func (f *Filter) Match(it item.Item) (bool, error) {
	env := make(map[string]any, it.Len())
	for name, v := range it.All() {
		env[name] = v.Any()
	}
	m := f.vms.Get().(*vm.VM)
	defer f.vms.Put(m)
	out, err := m.Run(f.prog, env)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return false, fmt.Errorf("column %d: %s", fe.Column+1, fe.Message)
		}
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// identifiers collects the names an expression uses as variables and as
// called functions.
type identifiers struct{ vars, calls map[string]bool }

func (v *identifiers) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.IdentifierNode:
		v.vars[n.Value] = true
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			v.calls[id.Value] = true
		}
	}
}

// orderPatch replaces ordering comparisons with calls that treat nil and
// mismatched types as "not ordered": false, and equality with calls that
// compare ints and numbers exactly.
type orderPatch struct{}

func (orderPatch) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok {
		return
	}
	fn, ok := orderOps[b.Operator]
	if !ok {
		fn, ok = equalOps[b.Operator]
	}
	if !ok {
		return
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{b.Left, b.Right}}
	call.SetLocation(b.Location())
	ast.Patch(n, call)
}

// ordering returns the function that implements op.
func ordering(op string) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		c, ok := compare(params[0], params[1])
		if !ok {
			return false, nil
		}
		switch op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	}
}

// equality returns the function that implements == (eq) or !=: numbers
// by exact value, anything else as expr compares it.
func equality(eq bool) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		x, xok := numberValue(params[0])
		y, yok := numberValue(params[1])
		if xok && yok {
			return (item.CompareNumbers(x, y) == 0) == eq, nil
		}
		return runtime.Equal(params[0], params[1]) == eq, nil
	}
}

// compare orders two values of the same kind: numbers (any Go integer or
// float), strings, times, durations. ok is false for anything else.
func compare(a, b any) (int, bool) {
	if x, ok := a.(string); ok {
		y, ok := b.(string)
		return strings.Compare(x, y), ok
	}
	if x, ok := a.(time.Time); ok {
		y, ok := b.(time.Time)
		return x.Compare(y), ok
	}
	if x, ok := a.(time.Duration); ok {
		y, ok := b.(time.Duration)
		return cmpInt(int64(x), int64(y)), ok
	}
	x, xok := numberValue(a)
	y, yok := numberValue(b)
	if !xok || !yok {
		return 0, false
	}
	return item.CompareNumbers(x, y), true
}

// numberValue returns a Go number as an int or number value, exactly;
// NaN and values of other types are not numbers.
func numberValue(v any) (item.Value, bool) {
	if i, ok := toInt(v); ok {
		return item.Int(i), true
	}
	switch v := v.(type) {
	case uint:
		return numberValue(uint64(v))
	case uint64:
		if v <= math.MaxInt64 {
			return item.Int(int64(v)), true
		}
		return item.Number(float64(v)), true // rounds, but only past 2^63
	}
	f, ok := toFloat(v)
	return item.Number(f), ok && !math.IsNaN(f)
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	}
	return 0, false
}
