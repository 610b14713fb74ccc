package cluster

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/zeebo/blake3"
)

// Owners returns the r members (by name) that own repository repo:
// rendezvous (highest random weight) hashing, each member scored by
// BLAKE3 of its name and the repository's path, the r highest scores
// first. Every node computes the same owners from the same member list,
// with no table to agree on; a member joining takes about r/n of the
// repositories (those where it scores among the r highest), and one
// leaving gives up only its own, each to the member that scored next.
// Fewer than r members own every repository each.
func Owners(repo string, members []string, r int) []string {
	if r <= 0 || len(members) == 0 {
		return nil
	}
	type scored struct {
		name  string
		score uint64
	}
	all := make([]scored, 0, len(members))
	for _, m := range members {
		all = append(all, scored{m, score(m, repo)})
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score != b.score:
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, 0, min(r, len(all)))
	for i := 0; i < len(all) && len(out) < r; i++ {
		if i > 0 && all[i].name == all[i-1].name {
			continue // a name listed twice owns once
		}
		out = append(out, all[i].name)
	}
	return out
}

// score is a member's weight for a repository: the first 8 bytes of
// BLAKE3("goatdb placement 1" 0 name 0 repo).
func score(member, repo string) uint64 {
	h := blake3.New()
	h.WriteString("goatdb placement 1\x00")
	h.WriteString(member)
	h.WriteString("\x00")
	h.WriteString(repo)
	var sum [32]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Owns reports whether member is among repo's owners.
func Owns(member, repo string, members []string, r int) bool {
	return slices.Contains(Owners(repo, members, r), member)
}
