package vfs

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
)

// PageSize is the unit in which a crash keeps or loses a file's unsynced
// bytes: pages start at file offsets that are multiples of it.
const PageSize = 4096

// A CrashPlan decides what a simulated power loss keeps of the changes that
// were not made durable (see the package documentation for the model). A
// nil func loses everything it would decide: the zero CrashPlan keeps only
// what was synced.
//
// [MemFS.CrashWith] calls the funcs in a fixed order (directories depth
// first, names in byte order, pages by offset), so a plan driven by a
// seeded generator reproduces its crash. It calls them with the MemFS
// locked: they must not use it.
type CrashPlan struct {
	// KeepEntry reports whether an unsynced change to the entry name in the
	// directory dir reached the disk: the entry then holds what it holds
	// now (a file, a directory, or nothing), else what it held at dir's last
	// SyncDir. It is asked only about the entries of directories the crash
	// keeps. The two entries of a rename (and of renames sharing an entry
	// with it) are kept or lost together, and asked about once, by the first
	// of them in the order above.
	KeepEntry func(dir, name string) bool

	// Size returns the size of the file name after the crash, given its
	// size at its last Sync and its size now; it is asked only when the two
	// differ, and its answer is clamped to between them.
	Size func(name string, synced, current int64) int64

	// KeepPage reports whether the unsynced bytes of the page at offset off
	// of the file name reached the disk. It is asked for each page below the
	// size after the crash whose bytes differ from the synced ones.
	KeepPage func(name string, off int64) bool

	// tear, if set, decides the bytes of every file that changed since its
	// last Sync, in place of Size and KeepPage (see Crash).
	tear func(name string, synced, current []byte) []byte
}

// CrashRandom returns a plan that makes each decision at random with rng:
// entries and pages are kept or lost with even odds; a size is the synced
// one a quarter of the time, the current one a quarter, and any between
// otherwise. rng must not be used elsewhere while a crash runs.
func CrashRandom(rng *rand.Rand) CrashPlan {
	coin := func() bool { return rng.IntN(2) == 0 }
	return CrashPlan{
		KeepEntry: func(string, string) bool { return coin() },
		Size: func(_ string, synced, current int64) int64 {
			lo, hi := min(synced, current), max(synced, current)
			switch rng.IntN(4) {
			case 0:
				return synced
			case 1:
				return current
			default:
				return lo + rng.Int64N(hi-lo+1)
			}
		},
		KeepPage: func(string, int64) bool { return coin() },
	}
}

// Crash returns the filesystem as it would be after a power loss now: the
// durable namespace, each file holding its synced bytes. torn, if not nil,
// is asked, for each file whose only change since its last Sync is bytes
// written at the end of its synced bytes (appended, or written over the
// zeros that end them: space reserved with Allocate), how many of those
// bytes also reached the disk (a prefix: 0 to len(unsynced); other answers
// are clamped). Zeros written over zeros, the reserved space, are not
// counted among them. It is CrashWith with a plan that loses every
// unsynced entry and keeps that prefix.
func (m *MemFS) Crash(torn func(name string, unsynced []byte) int) *MemFS {
	return m.CrashWith(CrashPlan{tear: func(name string, synced, current []byte) []byte {
		out := slices.Clone(synced)
		at, written := writtenAtEnd(synced, current)
		if torn == nil || written == nil {
			return out
		}
		k := min(max(torn(name, slices.Clone(written)), 0), len(written))
		end := at + k
		if k == len(written) {
			end = len(current) // with the zeros after them
		}
		if end > len(out) {
			out = append(out, make([]byte, end-len(out))...)
		}
		copy(out[at:], current[at:end])
		return out
	}})
}

// writtenAtEnd returns where the bytes written at the end of synced start
// in current, and those bytes up to the last that is not zero, if that is
// the only change: current is synced with zeros at its end replaced, or
// bytes appended, or both. Otherwise it returns nil.
func writtenAtEnd(synced, current []byte) (int, []byte) {
	if len(current) < len(synced) {
		return 0, nil
	}
	at := 0
	for at < len(synced) && synced[at] == current[at] {
		at++
	}
	if !bytesZero(synced[at:]) {
		return 0, nil
	}
	end := len(current)
	for end > at && current[end-1] == 0 {
		end--
	}
	if end == at {
		return 0, nil
	}
	return at, current[at:end]
}

func bytesZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CrashWith returns the filesystem as it would be after a power loss now,
// with plan deciding each change that was not durable. The result is a new
// MemFS, entirely durable, with no locks, faults or hook; m is unchanged.
func (m *MemFS) CrashWith(plan CrashPlan) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := &crashBuilder{plan: plan, groups: renameGroups(m.renames),
		decided: map[memKey]bool{}, files: map[*memNode]*memNode{}}
	c := NewMem()
	for _, root := range []string{"/", "."} {
		c.roots[root] = b.dir(m.roots[root], root)
	}
	return c
}

// crashBuilder copies what a crash keeps of a MemFS.
type crashBuilder struct {
	plan    CrashPlan
	groups  map[memKey]memKey     // entry -> the entry standing for its rename group
	decided map[memKey]bool       // rename group -> kept
	files   map[*memNode]*memNode // file -> its copy, for a file under two names
}

// renameGroups joins the two entries of each rename, and through them the
// renames that share an entry, and returns for each joined entry one entry
// standing for its group.
func renameGroups(renames []memRename) map[memKey]memKey {
	up := map[memKey]memKey{}
	var find func(k memKey) memKey
	find = func(k memKey) memKey {
		p, ok := up[k]
		if !ok || p == k {
			return k
		}
		r := find(p)
		up[k] = r
		return r
	}
	for _, r := range renames {
		if a, b := find(r.from), find(r.to); a != b {
			up[a] = b
		}
	}
	groups := make(map[memKey]memKey, len(up))
	for k := range up {
		groups[k] = find(k)
	}
	return groups
}

// keepEntry decides, once per rename group, whether the dirty entry k of
// the directory at dir reached the disk.
func (b *crashBuilder) keepEntry(k memKey, dir string) bool {
	g, ok := b.groups[k]
	if !ok {
		g = k
	}
	keep, ok := b.decided[g]
	if !ok {
		keep = b.plan.KeepEntry != nil && b.plan.KeepEntry(dir, k.name)
		b.decided[g] = keep
	}
	return keep
}

// dir returns the copy of the directory n, at p, holding what the crash
// keeps of each entry.
func (b *crashBuilder) dir(n *memNode, p string) *memNode {
	c := newMemDir()
	names := slices.Sorted(maps.Keys(n.durable))
	for name := range n.live {
		if _, ok := n.durable[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		k := memKey{n, name}
		child := n.durable[name]
		if k.dirty() && b.keepEntry(k, p) {
			child = n.live[name]
		}
		switch {
		case child == nil:
		case child.isDir():
			c.live[name] = b.dir(child, path.Join(p, name))
		default:
			c.live[name] = b.file(child, path.Join(p, name))
		}
	}
	c.durable = maps.Clone(c.live)
	return c
}

// file returns the copy of the file n, first reached at name, holding what
// the crash keeps of its bytes.
func (b *crashBuilder) file(n *memNode, name string) *memNode {
	if c, ok := b.files[n]; ok {
		return c
	}
	data := b.bytes(n, name)
	c := &memNode{data: data, synced: slices.Clone(data)}
	b.files[n] = c
	return c
}

// bytes returns the file's bytes after the crash: its size from the plan,
// then each page's unsynced bytes if the plan keeps the page, else its
// synced bytes and zeros beyond them.
func (b *crashBuilder) bytes(n *memNode, name string) []byte {
	synced, current := int64(len(n.synced)), int64(len(n.data))
	if bytes.Equal(n.data, n.synced) {
		return slices.Clone(n.synced)
	}
	if b.plan.tear != nil {
		return b.plan.tear(name, n.synced, n.data)
	}
	size := synced
	if synced != current && b.plan.Size != nil {
		lo, hi := min(synced, current), max(synced, current)
		size = min(max(b.plan.Size(name, synced, current), lo), hi)
	}
	out := make([]byte, size)
	for off := int64(0); off < size; off += PageSize {
		page := out[off:min(off+PageSize, size)]
		end := off + int64(len(page))
		if n.pageDirty(off) && b.plan.KeepPage != nil && b.plan.KeepPage(name, off) {
			// The page as it is now; past the current end, which did not
			// reach the disk either, the synced bytes are still there.
			copy(page, n.synced[min(off, synced):min(end, synced)])
			copy(page, n.data[min(off, current):min(end, current)])
		} else {
			copy(page, n.synced[min(off, synced):min(end, synced)])
		}
	}
	return out
}

// pageDirty reports whether the file's page at off differs from its synced
// bytes, in length or in content.
func (n *memNode) pageDirty(off int64) bool {
	page := func(b []byte) []byte {
		return b[min(off, int64(len(b))):min(off+PageSize, int64(len(b)))]
	}
	return !bytes.Equal(page(n.data), page(n.synced))
}
