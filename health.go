package goatdb

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goatdb/goatdb/repo"
)

// Health statuses, from best to worst.
const (
	// StatusOK: every repository opens, takes writes, and holds no
	// unresolved damage.
	StatusOK = "ok"
	// StatusDamaged: some repository holds quarantined damage not yet
	// resolved (commits in it may be lost until a peer that holds them
	// syncs), or cannot be opened at all. The others work.
	StatusDamaged = "damaged"
	// StatusDegraded: writes to some repository fail (a full or failing
	// disk). They are retried, and the status clears by itself once a
	// write succeeds.
	StatusDegraded = "degraded"
)

// RepoHealth is one repository's storage state.
type RepoHealth struct {
	Path   string
	Status string
	// Err is why the repository cannot be opened, or its writes fail.
	Err error
	// Quarantined lists its damaged ranges not yet resolved.
	Quarantined []repo.Quarantined
}

func (h RepoHealth) String() string {
	switch {
	case h.Err != nil:
		return fmt.Sprintf("%s: %s: %v", h.Path, h.Status, h.Err)
	case len(h.Quarantined) > 0:
		q := h.Quarantined[0]
		return fmt.Sprintf("%s: %s: %d quarantined range(s), the first %d bytes at offset %d in %s (%s)",
			h.Path, h.Status, len(h.Quarantined), q.Length, q.Offset, q.File, q.Reason)
	}
	return h.Path + ": " + h.Status
}

// Health is the storage state of a database.
type Health struct {
	// Status is the worst status of any repository.
	Status string
	// Repos lists the repositories whose status is not ok, by path.
	Repos []RepoHealth
}

func (h Health) String() string {
	lines := []string{h.Status}
	for _, r := range h.Repos {
		lines = append(lines, r.String())
	}
	return strings.Join(lines, "\n")
}

// Health reports the storage state of the database's repositories: the
// ones that cannot be opened, whose writes fail, or that hold quarantined
// damage not yet resolved.
//
// Without a bound on open repositories (Options.MaxOpenRepos,
// MaxOpenRepoBytes, RepoIdleTimeout) a repository not open yet is opened
// to find out, and stays open as every repository does then. With a
// bound Health opens nothing, so that checking health does not defeat
// the bound (nor read every log): it reports the repositories open now,
// those that failed to open, and those closed for idleness as they were
// when last open (a closed repository does not change). A repository not
// used since Open is then not reported; 'goatdb verify' reads every log.
func (db *DB) Health() (Health, error) {
	var rhs []RepoHealth
	if db.closesIdle() {
		rhs = db.seenHealth()
	} else {
		paths, err := db.Repos()
		if err != nil {
			return Health{}, err
		}
		for _, p := range paths {
			rhs = append(rhs, db.repoHealth(p))
		}
	}
	h := Health{Status: StatusOK}
	for _, rh := range rhs {
		if rh.Status == StatusOK {
			continue
		}
		h.Repos = append(h.Repos, rh)
		if rank(rh.Status) > rank(h.Status) {
			h.Status = rh.Status
		}
	}
	slices.SortFunc(h.Repos, func(a, b RepoHealth) int { return strings.Compare(a.Path, b.Path) })
	return h, nil
}

// seenHealth is the state of the repositories open now, of those that
// failed to open and of those closed for idleness, without opening any.
func (db *DB) seenHealth() []RepoHealth {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []RepoHealth
	for p, h := range db.repos {
		if h.r != nil {
			out = append(out, healthOf(p, h.r))
		}
	}
	for p, f := range db.failed {
		if db.repos[p] == nil {
			out = append(out, RepoHealth{Path: p, Status: StatusDamaged, Err: f.err})
		}
	}
	for p, rh := range db.gone {
		if db.repos[p] == nil {
			out = append(out, rh)
		}
	}
	return out
}

func (db *DB) repoHealth(path string) RepoHealth {
	r, release, err := db.AcquireExisting(path)
	if err != nil {
		return RepoHealth{Path: path, Status: StatusDamaged, Err: err}
	}
	defer release()
	return healthOf(path, r)
}

// healthOf is the state of the open repository r.
func healthOf(path string, r *repo.Repo) RepoHealth {
	rh := RepoHealth{Path: path, Status: StatusOK}
	st := r.Health()
	for _, q := range r.Quarantine() {
		if !q.Resolved {
			rh.Quarantined = append(rh.Quarantined, q)
		}
	}
	if st.Quarantined > 0 || st.Damaged > 0 {
		rh.Status = StatusDamaged
		if st.Damaged > 0 && len(rh.Quarantined) == 0 {
			rh.Err = fmt.Errorf("%w: %d damaged range(s) in the log; open it for writing to quarantine them", ErrCorrupt, st.Damaged)
		}
	}
	if st.Failure != nil {
		rh.Status, rh.Err = StatusDegraded, st.Failure
	}
	return rh
}

func rank(status string) int {
	return slices.Index([]string{StatusOK, StatusDamaged, StatusDegraded}, status)
}
