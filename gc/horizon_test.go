package gc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/goatdb/goatdb/gc"
)

// TestHorizonArithmetic: H = floor_day(now − L − G − S) in UTC: 37 days
// back by default, the same all day long on every node, and nodes with
// different settings are told apart.
func TestHorizonArithmetic(t *testing.T) {
	p := gc.DefaultPolicy()
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	want := time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC) // 2 Dec 14:04 UTC − 37 d 5 min = 26 Oct 14:59
	if got := p.Horizon(now); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Horizon(%v) = %v, want %v", now, got, want)
	}
	// The same horizon all day (UTC), the next one a day later.
	day := time.Date(2026, 12, 2, 0, 5, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, time.Hour, 12 * time.Hour, 23*time.Hour + 54*time.Minute} {
		if got := p.Horizon(day.Add(at)); !got.Equal(time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("Horizon at +%v = %v, want 26 Oct all day", at, got)
		}
	}
	if got := p.Horizon(day.Add(24 * time.Hour)); !got.Equal(time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a day later: %v, want 27 Oct", got)
	}
	// Custom settings.
	q := gc.Policy{CertLifetime: 24 * time.Hour, OfflineGrace: time.Hour, Skew: time.Minute}
	if got, want := q.Horizon(day), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("1 d + 1 h + 1 min before %v: %v, want %v", day, got, want)
	}
	// Nodes compare policies before they peer.
	if err := p.Same(gc.Policy{}); err != nil {
		t.Errorf("the default and the zero policy: %v", err)
	}
	if err := p.Same(q); !errors.Is(err, gc.ErrPolicyMismatch) {
		t.Errorf("different policies: %v, want ErrPolicyMismatch", err)
	}
	if err := (gc.Policy{MinFraction: 2}).Validate(); err == nil {
		t.Error("MinFraction 2 validated")
	}
}
