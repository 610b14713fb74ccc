package repo

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/goatdb/goatdb/item"
)

// withListIDs gives the new elements of the staged value's lists their ids
// (see item.AssignIDs), matched against the head's value. The tag is a
// hash of what makes the write distinct from a concurrent one: the
// repository's session, the item, the head the write builds on and the
// time t. It cannot be the commit id, which hashes the ids themselves.
func (r *Repo) withListIDs(s *staged, t int64) item.Item {
	if !hasList(s.Value) {
		return s.Value
	}
	h := sha256.New()
	h.Write(r.session[:])
	h.Write([]byte(s.Key))
	if s.head != nil {
		id := s.head.c.ID()
		h.Write(id[:])
	}
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(t)))
	tag := binary.LittleEndian.Uint64(h.Sum(nil))
	return item.AssignIDs(s.orig, s.Value, tag)
}

func hasList(it item.Item) bool {
	for _, f := range it.Fields() {
		if f.Value.Type() == item.TypeList {
			return true
		}
	}
	return false
}
