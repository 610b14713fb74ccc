package authz_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

func TestNonceCacheBounds(t *testing.T) {
	c := authz.NewNonceCache(4, 2)
	a, b, d, e := sessionOf(key(10)), sessionOf(key(11)), sessionOf(key(12)), sessionOf(key(13))
	exp := t0.Add(time.Minute)
	steps := []struct {
		name string
		s    commit.SessionID
		n    byte
		exp  time.Time
		now  time.Time
		want error
	}{
		{"a1", a, 1, exp, t0, nil},
		{"a1 again", a, 1, exp, t0, authz.ErrReplay},
		{"b1: nonces are per session", b, 1, exp, t0, nil},
		{"a2", a, 2, exp, t0, nil},
		{"a3: past the session's bound", a, 3, exp, t0, authz.ErrTooManyRequests},
		{"d1", d, 1, t0.Add(2 * time.Minute), t0, nil},
		{"e1: past the global bound", e, 1, exp, t0, authz.ErrTooManyRequests},
		{"e1 once a1, a2 and b1 expired", e, 1, exp.Add(time.Minute), exp, nil},
		{"a1 after its expiry", a, 1, exp.Add(time.Minute), exp, nil},
		{"already expired: not remembered", b, 9, t0, exp, nil},
		{"and so not a replay", b, 9, t0, exp, nil},
	}
	for _, st := range steps {
		err := c.Add(st.s, nonce(st.n), st.exp, st.now)
		if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Fatalf("%s: Add = %v, want %v", st.name, err, st.want)
		}
	}
	if n := c.Len(); n != 3 { // d1, e1, a1
		t.Fatalf("Len = %d, want 3", n)
	}
}

// TestNonceCacheConcurrent adds each nonce from several goroutines at once:
// exactly one Add of each succeeds.
func TestNonceCacheConcurrent(t *testing.T) {
	c := authz.NewNonceCache(0, 0)
	const goroutines, nonces = 8, 500
	var ok [nonces]atomic.Int32
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range nonces {
				n := [16]byte{byte(i), byte(i >> 8)}
				if err := c.Add(sessionOf(sessionKey), n, t0.Add(time.Minute), t0); err == nil {
					ok[i].Add(1)
				} else if !errors.Is(err, authz.ErrReplay) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := range ok {
		if n := ok[i].Load(); n != 1 {
			t.Fatalf("nonce %d accepted %d times", i, n)
		}
	}
}

// TestVerifierConcurrentReplay sends the same signed request from several
// goroutines: it is accepted exactly once.
func TestVerifierConcurrentReplay(t *testing.T) {
	c := newClock(t0)
	v := verifier(t, c)
	h := sign(t, syncReq, audience, t0, nonce(1), "")
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(h, syncReq); err == nil {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := accepted.Load(); n != 1 {
		t.Fatalf("accepted %d times", n)
	}
}
