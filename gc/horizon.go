package gc

import (
	"errors"
	"fmt"
	"time"
)

// Policy is how far back history is kept, and when a repository is worth
// compacting. The zero value of a field takes its default.
type Policy struct {
	// CertLifetime is the longest session certificate lifetime of the
	// deployment (L); 0 means 30 days.
	CertLifetime time.Duration
	// OfflineGrace is how long after a certificate expired its commits
	// are still accepted (G); 0 means 7 days.
	OfflineGrace time.Duration
	// Skew is how far ahead of the clock a commit may be stamped (S); 0
	// means 5 minutes.
	Skew time.Duration
	// MinFraction and MinBytes: a repository is compacted only when at
	// least MinFraction of its log (0 means a quarter) and at least
	// MinBytes (0 means 1 MiB) would be reclaimed.
	MinFraction float64
	MinBytes    int64
}

// DefaultPolicy returns the policy a zero Policy means.
func DefaultPolicy() Policy { return Policy{}.withDefaults() }

func (p Policy) withDefaults() Policy {
	if p.CertLifetime <= 0 {
		p.CertLifetime = 30 * 24 * time.Hour
	}
	if p.OfflineGrace <= 0 {
		p.OfflineGrace = 7 * 24 * time.Hour
	}
	if p.Skew <= 0 {
		p.Skew = 5 * time.Minute
	}
	if p.MinFraction <= 0 {
		p.MinFraction = 0.25
	}
	if p.MinBytes <= 0 {
		p.MinBytes = 1 << 20
	}
	return p
}

// Validate checks the policy.
func (p Policy) Validate() error {
	switch {
	case p.CertLifetime < 0 || p.OfflineGrace < 0 || p.Skew < 0 || p.MinBytes < 0:
		return errors.New("gc: negative duration or size in Policy")
	case p.MinFraction < 0 || p.MinFraction > 1:
		return fmt.Errorf("gc: Policy.MinFraction %g: want a fraction from 0 to 1", p.MinFraction)
	}
	return nil
}

// Horizon returns H(now) = floor_day(now − L − G − S), in UTC: no commit
// older than it can be accepted any more, so history before it may be
// collected.
func (p Policy) Horizon(now time.Time) time.Time {
	p = p.withDefaults()
	t := now.UTC().Add(-p.CertLifetime - p.OfflineGrace - p.Skew)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Kept returns how far back from now history is kept, before flooring
// to the day: L + G + S.
func (p Policy) Kept() time.Duration {
	p = p.withDefaults()
	return p.CertLifetime + p.OfflineGrace + p.Skew
}

// ErrPolicyMismatch is returned by Same for policies whose horizons
// differ.
var ErrPolicyMismatch = errors.New("gc: the horizon policies differ")

// Same reports (nil) whether p and q give the same horizon at every
// time, as the nodes of one deployment must: a node that collected to a
// later horizon than its peer would refuse, as "below horizon", commits
// the peer still accepts.
func (p Policy) Same(q Policy) error {
	p, q = p.withDefaults(), q.withDefaults()
	if p.CertLifetime+p.OfflineGrace+p.Skew != q.CertLifetime+q.OfflineGrace+q.Skew {
		return fmt.Errorf("%w: history kept for %v here, %v there (certificate lifetime + offline grace + skew); configure the nodes alike",
			ErrPolicyMismatch, p.CertLifetime+p.OfflineGrace+p.Skew, q.CertLifetime+q.OfflineGrace+q.Skew)
	}
	return nil
}
