package riblt

// An idset is a set of short ids: open addressing with linear probing,
// sized once for at most n ids, at most half full. Short ids are keyed
// hashes, but a multiplicative hash spreads any others as well.
type idset struct {
	slots   []uint64 // 0 is an empty slot; id 0 is hasZero
	hasZero bool
	shift   uint
}

func newIDSet(n int) idset {
	size, shift := 2, uint(63)
	for size < 2*n {
		size *= 2
		shift--
	}
	return idset{slots: make([]uint64, size), shift: shift}
}

// add adds x and reports whether it was absent.
func (s *idset) add(x uint64) bool {
	if x == 0 {
		had := s.hasZero
		s.hasZero = true
		return !had
	}
	mask := uint64(len(s.slots) - 1)
	for i := (x * 0x9e3779b97f4a7c15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = x
			return true
		case x:
			return false
		}
	}
}

func (s *idset) has(x uint64) bool {
	if x == 0 {
		return s.hasZero
	}
	mask := uint64(len(s.slots) - 1)
	for i := (x * 0x9e3779b97f4a7c15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			return false
		case x:
			return true
		}
	}
}
