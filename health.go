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

// Health reports the storage state of every repository: the ones that
// cannot be opened, whose writes fail, or that hold quarantined damage not
// yet resolved. A repository not open yet is opened to find out.
func (db *DB) Health() (Health, error) {
	paths, err := db.Repos()
	if err != nil {
		return Health{}, err
	}
	h := Health{Status: StatusOK}
	for _, p := range paths {
		rh := db.repoHealth(p)
		if rh.Status == StatusOK {
			continue
		}
		h.Repos = append(h.Repos, rh)
		if rank(rh.Status) > rank(h.Status) {
			h.Status = rh.Status
		}
	}
	return h, nil
}

func (db *DB) repoHealth(path string) RepoHealth {
	rh := RepoHealth{Path: path, Status: StatusOK}
	r, err := db.LookupRepo(path)
	if err != nil {
		rh.Status, rh.Err = StatusDamaged, err
		return rh
	}
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
