package server

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/goatdb/goatdb/internal/dbtest"
)

// notJSONAPI are the /v1 routes that openapi.json does not describe: the
// sync protocol and the signed account routes of goatdb clients.
var notJSONAPI = map[string]bool{
	"POST /v1/sync":          true,
	"GET /v1/events":         true,
	"POST /v1/auth/login":    true,
	"POST /v1/auth/register": true,
	"POST /v1/auth/renew":    true,
	"POST /v1/auth/logout":   true,
	"POST /v1/auth/revoke":   true,
	"GET /v1/auth/whoami":    true,
}

// oaMethods are the operations a path item of OpenAPI 3.1 may hold.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIRoutes: openapi.json describes every route of the JSON API
// (everything under /v1 but notJSONAPI), with or without authentication,
// and names no route that does not exist; and it is well-formed OpenAPI
// 3.1 as far as a small checker can tell.
func TestOpenAPIRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	checkOpenAPI(t, doc)
	documented := map[string]bool{}
	paths, _ := doc["paths"].(map[string]any)
	for p, pi := range paths {
		ops, _ := pi.(map[string]any)
		for _, m := range oaMethods {
			if _, ok := ops[m]; ok {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}

	id, _, err := NewIdentity("openapi-test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts *Options
	}{
		{"without auth", &Options{RateLimit: -1}},
		{"with auth", &Options{RateLimit: -1, Auth: &AuthOptions{Identity: id}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(dbtest.OpenDB(t, nil), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			routes := jsonAPIRoutes(t, s)
			for rt := range routes {
				if !documented[rt] {
					t.Errorf("route %s is not in openapi.json", rt)
				}
			}
			for op := range documented {
				if !routes[op] {
					t.Errorf("openapi.json describes %s, which is not a route", op)
				}
			}
		})
	}
}

// jsonAPIRoutes returns the server's JSON API routes as "METHOD /path".
func jsonAPIRoutes(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	mux, ok := s.routes().(chi.Routes)
	if !ok {
		t.Fatalf("routes() is a %T, not a chi router", s.routes())
	}
	out := map[string]bool{}
	err := chi.Walk(mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/") // a mounted router's root
		rt := method + " " + route
		if strings.HasPrefix(route, "/v1/") && !notJSONAPI[rt] {
			out[rt] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("walking the router found no JSON API routes")
	}
	return out
}

var (
	pathParam  = regexp.MustCompile(`\{([^{}/]+)\}`)
	statusCode = regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]XX|default)$`)
)

// checkOpenAPI checks doc's structure: the version, the info, that every
// operation has responses and declares each parameter of its path, and
// that every $ref resolves within the document.
func checkOpenAPI(t *testing.T, doc map[string]any) {
	t.Helper()
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if title, _ := info["title"].(string); title == "" {
		t.Error("info.title is missing")
	}
	if version, _ := info["version"].(string); version == "" {
		t.Error("info.version is missing")
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("paths is missing or empty")
	}
	for p, v := range paths {
		pi, ok := v.(map[string]any)
		if !ok || !strings.HasPrefix(p, "/") {
			t.Errorf("path %q: not a path item", p)
			continue
		}
		shared := params(t, doc, pi["parameters"])
		nops := 0
		for _, m := range oaMethods {
			op, ok := pi[m].(map[string]any)
			if !ok {
				if pi[m] != nil {
					t.Errorf("%s %s: not an operation object", m, p)
				}
				continue
			}
			nops++
			if resp, _ := op["responses"].(map[string]any); len(resp) == 0 {
				t.Errorf("%s %s: no responses", m, p)
			} else {
				for code := range resp {
					if !statusCode.MatchString(code) {
						t.Errorf("%s %s: response %q is not a status code", m, p, code)
					}
				}
			}
			declared := union(shared, params(t, doc, op["parameters"]))
			for _, name := range pathParam.FindAllStringSubmatch(p, -1) {
				if !declared[name[1]] {
					t.Errorf("%s %s: path parameter %s is not declared in: path, required: true", m, p, name[1])
				}
			}
			for name := range declared {
				if !slices.ContainsFunc(pathParam.FindAllStringSubmatch(p, -1), func(x []string) bool { return x[1] == name }) {
					t.Errorf("%s %s: path parameter %s is not in the path", m, p, name)
				}
			}
		}
		if nops == 0 {
			t.Errorf("path %s: no operations", p)
		}
	}
	walkRefs(doc, func(ref string) {
		if resolve(doc, ref) == nil {
			t.Errorf("$ref %q does not resolve within the document", ref)
		}
	})
}

// params returns the names of the path parameters (in: path, required:
// true) of a parameters list, resolving $refs.
func params(t *testing.T, doc map[string]any, list any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	l, _ := list.([]any)
	for _, x := range l {
		p, _ := x.(map[string]any)
		if ref, ok := p["$ref"].(string); ok {
			p, _ = resolve(doc, ref).(map[string]any)
		}
		name, _ := p["name"].(string)
		in, _ := p["in"].(string)
		if name == "" || in == "" {
			t.Errorf("parameter %v: no name or in", x)
			continue
		}
		if in == "path" {
			if req, _ := p["required"].(bool); !req {
				t.Errorf("path parameter %s is not required: true", name)
				continue
			}
			out[name] = true
		}
	}
	return out
}

// union returns the keys of a and b.
func union(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// walkRefs calls f with every $ref in v.
func walkRefs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			f(ref)
		}
		for _, y := range x {
			walkRefs(y, f)
		}
	case []any:
		for _, y := range x {
			walkRefs(y, f)
		}
	}
}

// resolve returns what a local $ref (#/a/b) points to in doc, or nil.
func resolve(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
}
