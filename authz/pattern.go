package authz

import (
	"fmt"
	"strings"

	"github.com/goatdb/goatdb/commit"
)

// A pattern matches item paths /type/repo/item segment by segment:
//
//	literal   that exact part: /data/tasks/{item}
//	{name}    any one part, passed to the rule as Ref.Vars[name]
//	*         any one part
//	**        the rest of the path, one part or more; last only
//
// A pattern without ** has exactly three segments; /** matches every path.
// Of the patterns that match a path the most specific applies: compare them
// segment by segment from the left, and at the first segment where their
// kinds differ, literal beats {name} beats * beats **. Two patterns whose
// kinds agree everywhere either differ in a literal, and then never match
// the same path, or match exactly the same paths with equal specificity:
// that is ambiguous and Compile refuses it.

type segKind uint8

// The kinds in order of specificity, most specific first.
const (
	segLiteral segKind = iota
	segVar
	segStar
	segRest
)

type segment struct {
	kind segKind
	text string // the literal, or the variable's name
}

type pattern struct {
	src  string
	segs []segment
}

// parsePattern parses and checks a pattern.
func parsePattern(src string) (*pattern, error) {
	if !strings.HasPrefix(src, "/") {
		return nil, fmt.Errorf("%w: pattern %q does not start with /", ErrBadRule, src)
	}
	parts := strings.Split(src[1:], "/")
	p := &pattern{src: src}
	seen := map[string]bool{}
	for i, part := range parts {
		s, err := parseSegment(part)
		if err != nil {
			return nil, fmt.Errorf("%w: pattern %q: segment %d: %v", ErrBadRule, src, i+1, err)
		}
		if s.kind == segVar {
			if seen[s.text] {
				return nil, fmt.Errorf("%w: pattern %q: variable {%s} twice", ErrBadRule, src, s.text)
			}
			seen[s.text] = true
		}
		if s.kind == segRest && i != len(parts)-1 {
			return nil, fmt.Errorf("%w: pattern %q: ** must be the last segment", ErrBadRule, src)
		}
		p.segs = append(p.segs, s)
	}
	last := p.segs[len(p.segs)-1].kind
	if len(p.segs) > 3 || len(p.segs) < 3 && last != segRest {
		return nil, fmt.Errorf("%w: pattern %q has %d segments; paths are /type/repo/item (end with ** to match the rest)",
			ErrBadRule, src, len(p.segs))
	}
	return p, nil
}

func parseSegment(part string) (segment, error) {
	switch {
	case part == "**":
		return segment{kind: segRest}, nil
	case part == "*":
		return segment{kind: segStar}, nil
	case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
		name := part[1 : len(part)-1]
		if !isIdent(name) {
			return segment{}, fmt.Errorf("variable %q is not a name (a letter or _, then letters, digits or _; at most 64)", name)
		}
		return segment{kind: segVar, text: name}, nil
	}
	if err := checkName("literal", part, 1, 128); err != nil {
		return segment{}, err
	}
	return segment{kind: segLiteral, text: part}, nil
}

func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// match reports whether p matches the path parts.
func (p *pattern) match(parts []string) bool {
	for i, s := range p.segs {
		switch {
		case s.kind == segRest:
			return i < len(parts)
		case i >= len(parts), s.kind == segLiteral && s.text != parts[i]:
			return false
		}
	}
	return len(parts) == len(p.segs)
}

// bind returns the variables of a path p matches.
func (p *pattern) bind(parts []string) map[string]string {
	vars := map[string]string{}
	for i, s := range p.segs {
		if s.kind == segVar {
			vars[s.text] = parts[i]
		}
	}
	return vars
}

// compare orders patterns by specificity: negative if p is more specific
// than q, 0 if equally specific.
func (p *pattern) compare(q *pattern) int {
	for i := 0; i < len(p.segs) && i < len(q.segs); i++ {
		if c := int(p.segs[i].kind) - int(q.segs[i].kind); c != 0 {
			return c
		}
	}
	return 0 // see the comment at the top: kinds never differ only in length
}

// shape is the pattern with variable names erased: two patterns with the
// same shape match the same paths and are equally specific.
func (p *pattern) shape() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		switch s.kind {
		case segLiteral:
			b.WriteString(s.text)
		case segVar:
			b.WriteString("{}")
		case segStar:
			b.WriteString("*")
		case segRest:
			b.WriteString("**")
		}
	}
	return b.String()
}

// vars returns the pattern's variable names.
func (p *pattern) vars() map[string]bool {
	vs := map[string]bool{}
	for _, s := range p.segs {
		if s.kind == segVar {
			vs[s.text] = true
		}
	}
	return vs
}

// splitPath checks an item path /type/repo/item and returns its parts.
func splitPath(path string) ([]string, error) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return nil, fmt.Errorf("%q is not /type/repo/item", path)
	}
	if err := commit.ValidRepo(path[:i]); err != nil {
		return nil, fmt.Errorf("%q is not /type/repo/item: %w", path, err)
	}
	if err := commit.ValidKey(path[i+1:]); err != nil {
		return nil, fmt.Errorf("%q is not /type/repo/item: %w", path, err)
	}
	return strings.Split(path[1:], "/"), nil
}
