package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/itemjson"
)

// The JSON API's plumbing: its errors, its authentication (signed
// requests as for sync, or a web session's token), and CORS.

// apiError writes a JSON error: {"error": CODE, "reason": SENTENCE}, CODE
// named after the status.
func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	writeAPIError(w, status, fmt.Sprintf(format, args...))
}

func writeAPIError(w http.ResponseWriter, status int, reason string) {
	writeAPIErrorField(w, status, reason, "")
}

// writeAPIErrorField is writeAPIError naming the field a value error is
// about ("field"; omitted when empty).
func writeAPIErrorField(w http.ResponseWriter, status int, reason, field string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
		Field  string `json:"field,omitempty"`
	}{errorCode(status), reason, field})
	w.Write(append(b, '\n'))
}

// errorCode names a status for the "error" field.
func errorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestTimeout:
		return "timeout"
	case http.StatusConflict:
		return "conflict"
	case http.StatusPreconditionFailed:
		return "precondition_failed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

// jsonErrors turns the plain-text errors that the shared middleware
// writes (rate limits, authentication, body limits, unknown routes and
// methods, storage errors) into JSON errors on the JSON API's paths:
// everything under /v1 but the sync protocol's routes and the signed
// auth routes, which keep their one-line texts.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jsonAPIPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		jw := &jsonErrorWriter{ResponseWriter: w}
		next.ServeHTTP(jw, r)
		jw.finish()
	})
}

// textRoutes are the /v1 routes that answer plain-text errors.
var textRoutes = map[string]bool{"/v1/sync": true, "/v1/events": true, "/v1/auth/login": true, "/v1/auth/register": true,
	"/v1/auth/renew": true, "/v1/auth/logout": true, "/v1/auth/revoke": true, "/v1/auth/whoami": true}

func jsonAPIPath(p string) bool { return strings.HasPrefix(p, "/v1/") && !textRoutes[p] }

type jsonErrorWriter struct {
	http.ResponseWriter
	status  int
	text    bytes.Buffer
	convert bool
	wrote   bool
}

func (w *jsonErrorWriter) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if status >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.convert, w.status = true, status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.convert {
		if w.text.Len() < 4096 {
			w.text.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *jsonErrorWriter) finish() {
	if w.convert {
		writeAPIError(w.ResponseWriter, w.status, strings.TrimSpace(w.text.String()))
	}
}

func (w *jsonErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.convert {
		f.Flush()
	}
}

func (w *jsonErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authenticateAPI authenticates a JSON API request: a signed one as
// authenticate does (Goat-Auth), else a web session's token (bearer or
// cookie) whose session holds a valid certificate now. A request
// authenticated by the cookie that changes something must come from this
// server's own pages (sameOrigin). Without authentication on the server,
// every request passes as nobody.
func (s *Server) authenticateAPI(next http.Handler) http.Handler {
	signed := s.authenticate(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.accounts == nil || r.Header.Get(authz.AuthHeaderName) != "" {
			signed.ServeHTTP(w, r)
			return
		}
		tok, cookie, ok := bearer(r)
		if !ok {
			s.chargeFailure(r)
			apiError(w, http.StatusUnauthorized, "not logged in: get a token with POST /v1/auth/token {\"user\": NAME, \"code\": CODE} and send it as Authorization: Bearer TOKEN")
			return
		}
		ws, ok := s.web.lookup(tok, s.accounts.opts.Now())
		if !ok {
			s.chargeFailure(r)
			if cookie {
				http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
			}
			apiError(w, http.StatusUnauthorized, "the token is unknown or expired (tokens last at most %v and end when the server restarts); log in again with POST /v1/auth/token", WebSessionLifetime)
			return
		}
		if cookie && !safeMethod(r.Method) && !sameOrigin(r) {
			apiError(w, http.StatusForbidden, "a write authenticated by the %s cookie must come from this server's pages (Origin %q is not %s); other origins send Authorization: Bearer TOKEN", TokenCookie, r.Header.Get("Origin"), r.Host)
			return
		}
		p, err := s.principal(ws.session, r.URL.Path)
		switch {
		case errors.Is(err, errAccounts):
			s.storageError(w, r, "", err)
			return
		case err != nil:
			s.chargeFailure(r)
			apiError(w, http.StatusUnauthorized, "%v", err)
			return
		}
		ctx := context.WithValue(withPrincipal(r.Context(), p), webSessionKey{}, ws)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// cors answers preflights and marks the answers to listed origins
// (Options.CORSOrigins); other origins get no CORS headers, and their
// preflights 403.
func (s *Server) cors(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range s.opts.CORSOrigins {
		allowed[strings.TrimRight(o, "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		ok := origin != "" && (allowed[origin] || allowed["*"])
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if ok {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "ETag, Location, Retry-After")
		}
		if preflight {
			if !ok {
				apiError(w, http.StatusForbidden, "origin %q may not call this server's API (allowed origins: goatdb serve --cors-origin)", origin)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, PUT, PATCH, DELETE, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID, "+authz.AuthHeaderName)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// formatTime formats a time as the JSON API writes times (RFC 3339, UTC,
// milliseconds).
func formatTime(t time.Time) string { return itemjson.FormatTime(t) }
