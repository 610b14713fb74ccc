package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The sentinels keep the "goatdb:" prefix: package goatdb exports them
// under its own names (goatdb.ErrUnreachable is ErrUnreachable), and
// their users read them as goatdb's.
var (
	// ErrUnreachable is returned (wrapped, with the cause) when a server
	// cannot be reached: refused connections, timeouts, broken streams.
	ErrUnreachable = errors.New("goatdb: server unreachable")

	// ErrUnauthenticated is returned (wrapped, together with the
	// *ServerError) when a server answers 401: it does not take this
	// peer's session as logged in, or it refused a login's credentials.
	// The message says what to do.
	ErrUnauthenticated = errors.New("goatdb: not authenticated")
)

// ServerError is an HTTP error answer from a sync server.
type ServerError struct {
	URL        string
	Status     int           // HTTP status code
	Message    string        // the server's reason, one line
	RetryAfter time.Duration // from Retry-After, if the server sent one
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("goatdb: server %s answered %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// Temporary reports whether retrying later may succeed (rate limits,
// server errors).
func (e *ServerError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// ReadServerError returns the error an answer that is not 2xx stands for,
// reading the first line of its body (at most 1 KiB) as the reason. It
// does not close the body.
func ReadServerError(resp *http.Response) *ServerError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	e := &ServerError{URL: resp.Request.URL.String(), Status: resp.StatusCode, Message: msg}
	ra := resp.Header.Get("Retry-After")
	if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(ra); err == nil {
		e.RetryAfter = max(0, time.Until(t))
	}
	return e
}

// Unauthenticated turns a 401 answer from the server at serverURL into an
// error that wraps both ErrUnauthenticated and the *ServerError, and says
// what to do: hint, or, if hint is "", how to log in.
func Unauthenticated(resp *http.Response, serverURL, hint string) error {
	return &authError{se: ReadServerError(resp), hint: hint, url: serverURL}
}

type authError struct {
	se   *ServerError
	url  string
	hint string // what to do, or "" for the login hint
}

func (e *authError) Error() string {
	hint := e.hint
	if hint == "" {
		hint = fmt.Sprintf("not logged in there, or the login expired or was revoked: run 'goatdb login %s NAME --code CODE'", e.url)
	}
	return fmt.Sprintf("%v; %s", e.se, hint)
}

func (e *authError) Unwrap() []error { return []error{ErrUnauthenticated, e.se} }
