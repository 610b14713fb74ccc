package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID gives every request an id: the client's X-Request-Id if it is
// short and printable, else a random one. It is echoed in the response
// header and in every log line about the request.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusWriter records the status and size of a response. It keeps
// http.ResponseController working (Unwrap) and event streams flushing.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// accessLog logs one line per request at Info level.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", requestIDOf(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.code()),
			slog.Int64("bytes_in", max(r.ContentLength, 0)),
			slog.Int64("bytes_out", sw.bytes),
			slog.Duration("duration", time.Since(began)),
			slog.String("remote", r.RemoteAddr))
	})
}

// recoverPanic turns a panic in a handler into a 500 and an Error log
// with the stack, so no panic takes the server down.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.metrics.panics.Add(1)
			s.log.Error("handler panic", "request_id", requestIDOf(r.Context()), "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			httpError(w, http.StatusInternalServerError, "internal error (request %s)", requestIDOf(r.Context()))
		}()
		next.ServeHTTP(w, r)
	})
}

// countRequests counts requests by route pattern and status.
func (s *Server) countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := "other"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		s.metrics.request(route, sw.code())
	})
}

// limitBody refuses bodies over n bytes: at once if Content-Length says
// so, else when the handler reads past n (http.MaxBytesError).
func (s *Server) limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				s.metrics.tooLarge.Add(1)
				httpError(w, http.StatusRequestEntityTooLarge, "request body of %d bytes is over the limit of %d", r.ContentLength, n)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			if n > 0 && s.opts.MinBodyRate > 0 {
				now := time.Now()
				r.Body = &rateReader{ReadCloser: r.Body, rc: http.NewResponseController(w), rate: s.opts.MinBodyRate,
					grace: s.opts.BodyGrace, start: now, until: now.Add(s.opts.RequestTimeout)}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rateReader cuts a request body that arrives slower than rate bytes per
// second on average, after a grace: before each read it moves the
// connection's read deadline to when the body read so far, and the read
// to come, are due. A client that trickles its body to hold a connection
// and its reservation is cut after seconds, not after the request
// timeout.
type rateReader struct {
	io.ReadCloser
	rc    *http.ResponseController
	rate  float64 // bytes per second
	grace time.Duration
	start time.Time
	until time.Time // the request's own deadline, which no read passes
	read  int64
}

func (r *rateReader) Read(p []byte) (int, error) {
	due := r.start.Add(r.grace + time.Duration(float64(r.read+int64(len(p)))/r.rate*float64(time.Second)))
	if due.After(r.until) {
		due = r.until
	}
	r.rc.SetReadDeadline(due)
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	if err != nil {
		// Done with the body: the connection is read again only for the
		// next request (or to notice the client left), under the
		// request's own deadline.
		r.rc.SetReadDeadline(r.until)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %d bytes in %v", errSlowBody, r.read, time.Since(r.start).Round(time.Millisecond))
		}
	}
	return n, err
}

// errSlowBody is why a body that arrived too slowly was cut.
var errSlowBody = errors.New("the request body arrived too slowly")

// rateLimit is the first, cheap limit on /v1/ requests. Without
// authentication it is the request rate of each client (by ClientKey).
// With authentication, requests are counted per session and user once
// verified (chargeRequest); here an address whose budget for
// unauthenticated requests (refused with 401, or of anonymous sessions) is
// spent is refused before its request is read or verified.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	l, limit := s.quotas.session.requests, limitRate
	if s.accounts != nil {
		l, limit = s.quotas.address.requests, limitAddressRate
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := s.opts.ClientKey(r)
		r = r.WithContext(context.WithValue(r.Context(), clientKeyKey{}, key))
		if l == nil {
			next.ServeHTTP(w, r)
			return
		}
		var ok bool
		var wait time.Duration
		if s.accounts == nil {
			ok, wait = l.take(key, 1, time.Now())
		} else {
			ok, wait = l.peek(key, time.Now())
		}
		if !ok {
			s.refuse(w, &refusal{limit: limit, status: http.StatusTooManyRequests, wait: wait,
				msg: fmt.Sprintf("over the rate limit of %s; retry in %v", l.desc, wait.Round(time.Millisecond))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientKeyKey holds a request's Options.ClientKey in its context.
type clientKeyKey struct{}

// clientKey returns Options.ClientKey of r, computed once per request.
func (s *Server) clientKey(r *http.Request) string {
	if k, ok := r.Context().Value(clientKeyKey{}).(string); ok {
		return k
	}
	return s.opts.ClientKey(r)
}

// limiter is a token bucket per key. Buckets that have refilled are
// forgotten, so memory follows the keys active in the last while.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	desc  string // "100 requests per second", for messages

	mu      sync.Mutex // guards buckets and swept
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, desc string) *limiter {
	return &limiter{rate: rate, burst: float64(burst), desc: desc, buckets: map[string]*bucket{}}
}

// take takes n tokens from key's bucket, or says how long until they are
// there: never (a negative wait) if n is over the burst.
func (l *limiter) take(key string, n int, now time.Time) (bool, time.Duration) {
	if float64(n) > l.burst {
		return false, -1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.fill(key, now)
	if b.tokens >= float64(n) {
		b.tokens -= float64(n)
		return true, 0
	}
	return false, time.Duration((float64(n) - b.tokens) / l.rate * float64(time.Second))
}

// peek says whether key's bucket holds a token, without taking it.
func (l *limiter) peek(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	tokens := min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / l.rate * float64(time.Second))
}

// give puts back n tokens taken from key's bucket.
func (l *limiter) give(key string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = min(l.burst, b.tokens+float64(n))
	}
}

// fill returns key's bucket, refilled up to now. l.mu must be held.
func (l *limiter) fill(key string, now time.Time) *bucket {
	if now.Sub(l.swept) > time.Minute {
		l.swept = now
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	return b
}
