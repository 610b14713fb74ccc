package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/goatdb/goatdb/item"
)

// Bounds of a rules file (see ParseRulesFile).
const (
	// MaxRulesFileSize bounds a rules file, in bytes.
	MaxRulesFileSize = 1 << 20
	// MaxFileRules bounds the entries of a rules file.
	MaxFileRules = 1000
	// MaxExprLen bounds one expression, in bytes.
	MaxExprLen = 2048
	// MaxExprNodes bounds the syntax nodes of one expression.
	MaxExprNodes = 256
)

// exprFuncs are the only functions an expression may call: each costs at
// most linear time in its argument.
var exprFuncs = []string{"len", "lower", "upper", "trim", "hasPrefix", "hasSuffix", "abs"}

// ParseRulesFile compiles a rules file, the rules of `goatdb serve --rules
// FILE`, into the same Rules a Builder makes:
//
//	{"rules": [
//	  {"path": "/data/{repo}/{item}", "read": "user != \"\"", "write": "user != \"\""},
//	  {"path": "/data/team/{item}", "read": "hasRole(\"team\")", "write": "hasRole(\"team\")"}
//	]}
//
// Each entry is a path pattern (see Rules) with a read and a write
// expression in the expr language (expr-lang.org). A missing expression
// denies. An expression must be true to allow and sees:
//
//	user     string    the principal's user ("" anonymous)
//	roles    []string  its roles
//	session  string    its session id (base32)
//	node     bool      always false: rules are not consulted for nodes
//	root     bool      always false: nor for the root key
//	vars     map       the pattern's variables: vars.uid
//	repo, key, path    the item's repository (/type/repo), key and path
//	hasRole(r)         whether the principal holds role r
//
// a read expression also item (the item's fields: item.owner; a missing
// field is nil) and deleted (bool); a write expression before and after
// (the fields before and after the commit; before is empty for a new
// item) and beforeDeleted and afterDeleted.
//
// Cost is bounded: an expression has at most MaxExprLen bytes and
// MaxExprNodes syntax nodes, and may call only len, lower, upper, trim,
// hasPrefix, hasSuffix and abs, so it has no loops (all, map, filter and
// the other predicates are refused, as are let, ranges (..) and matches
// with a pattern that is not a constant string). Nothing depends on the
// clock (now is not available): a decision depends on its inputs only.
// An expression that fails at run time (say item.count > 1 with count
// missing) denies.
//
// The file is strict JSON: unknown or repeated keys, and anything after
// the object, are errors. The error joins every problem, each matching
// ErrBadRule and naming the entry's index (from 0) and path.
func ParseRulesFile(data []byte) (*Rules, error) {
	if len(data) > MaxRulesFileSize {
		return nil, fmt.Errorf("%w: rules file has %d bytes > %d", ErrBadRule, len(data), MaxRulesFileSize)
	}
	entries, err := decodeRulesFile(data)
	if err != nil {
		return nil, err
	}
	var b Builder
	var errs []error
	shapes := map[string]int{} // shape → the first entry with it
	for i, e := range entries {
		rule, shape, err := compileEntry(i, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if j, ok := shapes[shape]; ok {
			errs = append(errs, fmt.Errorf("%w: rules file entries %d (%q) and %d (%q) are equally specific and match the same paths",
				ErrBadRule, j, entries[j].Path, i, e.Path))
			continue
		}
		shapes[shape] = i
		b.Handle(e.Path, rule)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r, err := b.Compile()
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	r.source = slices.Clone(data)
	return r, nil
}

// LoadRulesFile reads and compiles a rules file (see ParseRulesFile).
func LoadRulesFile(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRulesFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load rules %s: %w", path, err)
	}
	r, err := ParseRulesFile(data)
	if err != nil {
		return nil, fmt.Errorf("load rules %s: %w", path, err)
	}
	return r, nil
}

type fileEntry struct {
	Path  string  `json:"path"`
	Read  *string `json:"read"`
	Write *string `json:"write"`
}

func decodeRulesFile(data []byte) ([]fileEntry, error) {
	if err := checkJSONKeys(data); err != nil {
		return nil, fmt.Errorf("%w: rules file: %v", ErrBadRule, err)
	}
	var f struct {
		Rules *[]fileEntry `json:"rules"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: rules file: %v", ErrBadRule, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: rules file: data after the object", ErrBadRule)
	}
	switch {
	case f.Rules == nil:
		return nil, fmt.Errorf("%w: rules file has no \"rules\" list", ErrBadRule)
	case len(*f.Rules) > MaxFileRules:
		return nil, fmt.Errorf("%w: rules file has %d rules > %d", ErrBadRule, len(*f.Rules), MaxFileRules)
	}
	return *f.Rules, nil
}

// checkJSONKeys refuses an object with a repeated key anywhere in data,
// which encoding/json would silently resolve to the last one.
func checkJSONKeys(data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string is a key
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.key {
			if top.keys[s] {
				return fmt.Errorf("key %q repeated", s)
			}
			top.keys[s] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // a value was read (or begins): a key follows it
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// compileEntry compiles one entry's expressions into a Rule, and returns
// its pattern's shape.
func compileEntry(i int, e fileEntry) (Rule, string, error) {
	where := fmt.Sprintf("rules file entry %d (%q)", i, e.Path)
	p, err := parsePattern(e.Path)
	if err != nil {
		return Rule{}, "", fmt.Errorf("%s: %w", where, err)
	}
	var rule Rule
	var errs []error
	if e.Read != nil {
		prog, c, err := compileExpr(*e.Read, readEnv{}, p.vars())
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: read: %v", ErrBadRule, where, err))
		} else {
			rule.Read = readFunc(prog)
			if !c.usesItem(p) {
				rule.Scope = ByRepo
			}
		}
	}
	if e.Write != nil {
		prog, _, err := compileExpr(*e.Write, writeEnv{}, p.vars())
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: write: %v", ErrBadRule, where, err))
		} else {
			rule.Write = writeFunc(i, prog)
		}
	}
	return rule, p.shape(), errors.Join(errs...)
}

// principalEnv holds the variables every expression sees.
type principalEnv struct {
	User    string            `expr:"user"`
	Roles   []string          `expr:"roles"`
	Session string            `expr:"session"`
	Node    bool              `expr:"node"`
	Root    bool              `expr:"root"`
	Vars    map[string]string `expr:"vars"`
	Repo    string            `expr:"repo"`
	Key     string            `expr:"key"`
	Path    string            `expr:"path"`
	HasRole func(string) bool `expr:"hasRole"`
}

type readEnv struct {
	principalEnv
	Item    map[string]any `expr:"item"`
	Deleted bool           `expr:"deleted"`
}

type writeEnv struct {
	principalEnv
	Before        map[string]any `expr:"before"`
	After         map[string]any `expr:"after"`
	BeforeDeleted bool           `expr:"beforeDeleted"`
	AfterDeleted  bool           `expr:"afterDeleted"`
}

func newPrincipalEnv(p Principal, ref Ref) principalEnv {
	return principalEnv{
		User: p.User, Roles: p.Roles, Session: p.Session.String(), Node: p.Node, Root: p.Root,
		Vars: ref.Vars, Repo: ref.Repo, Key: ref.Key, Path: ref.Path, HasRole: p.HasRole,
	}
}

func fieldsOf(it item.Item) map[string]any {
	m := make(map[string]any, it.Len())
	for name, v := range it.All() {
		m[name] = v.Any()
	}
	return m
}

// program is a compiled expression with a pool of machines to run it.
type program struct {
	prog *vm.Program
	vms  sync.Pool
}

func (p *program) run(env any) (bool, error) {
	m, _ := p.vms.Get().(*vm.VM)
	if m == nil {
		m = new(vm.VM)
	}
	defer p.vms.Put(m)
	out, err := m.Run(p.prog, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func readFunc(p *program) func(context.Context, Principal, Ref, item.Item) bool {
	return func(_ context.Context, pr Principal, ref Ref, it item.Item) bool {
		ok, _ := p.run(readEnv{newPrincipalEnv(pr, ref), fieldsOf(it), it.Deleted()})
		return ok
	}
}

func writeFunc(entry int, p *program) func(context.Context, Principal, Ref, item.Item, item.Item) error {
	return func(_ context.Context, pr Principal, ref Ref, before, after item.Item) error {
		ok, err := p.run(writeEnv{newPrincipalEnv(pr, ref), fieldsOf(before), fieldsOf(after), before.Deleted(), after.Deleted()})
		switch {
		case err != nil:
			return fmt.Errorf("the write expression of rules file entry %d failed: %v", entry, err)
		case !ok:
			return fmt.Errorf("refused by the write expression of rules file entry %d", entry)
		}
		return nil
	}
}

// compileExpr checks and compiles one expression for env, whose pattern
// has the variables vars; the check records what it reads.
func compileExpr(src string, env any, vars map[string]bool) (p *program, c *exprCheck, err error) {
	if src == "" {
		return nil, nil, errors.New("empty expression (leave it out to deny)")
	}
	if len(src) > MaxExprLen {
		return nil, nil, fmt.Errorf("%d bytes > %d", len(src), MaxExprLen)
	}
	defer func() { // the library recovers its own panics; this is a second net
		if v := recover(); v != nil {
			p, c, err = nil, nil, fmt.Errorf("does not compile: %v", v)
		}
	}()
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, nil, exprError(err)
	}
	c = &exprCheck{vars: vars, uses: map[string]bool{}, varsRead: map[string]bool{}}
	ast.Walk(&tree.Node, c)
	if c.err != nil {
		return nil, nil, c.err
	}
	opts := []expr.Option{expr.Env(env), expr.AsBool(), expr.MaxNodes(MaxExprNodes), expr.DisableAllBuiltins()}
	for _, f := range exprFuncs {
		opts = append(opts, expr.EnableBuiltin(f))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, nil, exprError(err)
	}
	return &program{prog: prog}, c, nil
}

func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("line %d, column %d: %s", max(fe.Line, 1), fe.Column+1, fe.Message)
	}
	return err
}

// exprCheck refuses the constructs whose cost is not bounded by the
// expression's size times its inputs' (loops, variables, ranges, dynamic
// regular expressions), and variables the pattern does not have.
type exprCheck struct {
	vars map[string]bool
	err  error

	uses       map[string]bool // top-level names read
	varsRead   map[string]bool // vars.<name> read
	varsUses   int             // uses of vars
	varsByName int             // of which vars.<name>
}

// usesItem reports whether the expression may look at the item's key or
// value, for an entry with pattern p.
func (c *exprCheck) usesItem(p *pattern) bool {
	if c.uses["item"] || c.uses["deleted"] || c.uses["key"] || c.uses["path"] {
		return true
	}
	itemVar := len(p.segs) == 3 && p.segs[2].kind == segVar
	if c.varsUses > c.varsByName { // vars read otherwise: vars[x], vars itself
		return itemVar
	}
	return itemVar && c.varsRead[p.segs[2].text]
}

func (c *exprCheck) Visit(n *ast.Node) {
	if c.err != nil {
		return
	}
	col := (*n).Location().From + 1
	switch n := (*n).(type) {
	case *ast.IdentifierNode:
		c.uses[n.Value] = true
		if n.Value == "vars" {
			c.varsUses++
		}
	case *ast.BuiltinNode:
		if !slices.Contains(exprFuncs, n.Name) {
			c.err = fmt.Errorf("character %d: %s is not allowed (no loops); functions: %s", col, n.Name, strings.Join(exprFuncs, ", "))
		}
	case *ast.PredicateNode, *ast.PointerNode:
		c.err = fmt.Errorf("character %d: predicates are not allowed (no loops)", col)
	case *ast.VariableDeclaratorNode, *ast.SequenceNode:
		c.err = fmt.Errorf("character %d: let and ; are not allowed", col)
	case *ast.BinaryNode:
		if n.Operator == ".." {
			c.err = fmt.Errorf("character %d: ranges are not allowed", col)
		}
		if _, ok := n.Right.(*ast.StringNode); n.Operator == "matches" && !ok {
			c.err = fmt.Errorf("character %d: matches takes a constant string", col)
		}
	case *ast.MemberNode:
		id, ok1 := n.Node.(*ast.IdentifierNode)
		prop, ok2 := n.Property.(*ast.StringNode)
		if ok1 && ok2 && id.Value == "vars" {
			if !c.vars[prop.Value] {
				c.err = fmt.Errorf("character %d: the pattern has no variable {%s} (it has %s)", col, prop.Value, names(c.vars))
			}
			c.varsRead[prop.Value] = true
			c.varsByName++
		}
	}
}

func names(vars map[string]bool) string {
	if len(vars) == 0 {
		return "none"
	}
	var out []string
	for v := range vars {
		out = append(out, "{"+v+"}")
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
