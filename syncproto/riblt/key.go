package riblt

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/goatdb/goatdb/commit"
)

// KeySize is the size of a Key in bytes.
const KeySize = 32

// A Key keys the short ids and the checksums of one reconciliation. Both
// sides must use the same key; a new one is chosen for every request
// (NewKey), so a collision of short ids cannot be prepared in advance.
//
// The first 16 bytes key the short id of a commit id (SipHash-2-4 of the
// 32-byte id), the last 16 the checksum of a short id (SipHash-2-4 of its
// 8 little-endian bytes), which also seeds the element's mapping.
type Key struct {
	k0, k1 uint64 // short-id key
	k2, k3 uint64 // checksum key
}

// NewKey returns a key read from crypto/rand.
func NewKey() Key {
	var b [KeySize]byte
	rand.Read(b[:]) // never fails (crypto/rand.Read documents so)
	return KeyFromBytes(b)
}

// KeyFromBytes returns the key with the given bytes.
func KeyFromBytes(b [KeySize]byte) Key {
	le := binary.LittleEndian
	return Key{le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:])}
}

// Bytes returns the key's bytes, as KeyFromBytes takes them.
func (k Key) Bytes() [KeySize]byte {
	var b [KeySize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], k.k0)
	le.PutUint64(b[8:], k.k1)
	le.PutUint64(b[16:], k.k2)
	le.PutUint64(b[24:], k.k3)
	return b
}

// shortIDMask narrows short ids; tests set it to force collisions.
var shortIDMask atomic.Uint64

func init() { shortIDMask.Store(^uint64(0)) }

// NarrowShortIDs keeps only the low n bits of every short id until
// restore is called, so that tests of the protocols built on this package
// can force short-id collisions (at 64 bits, keyed afresh per
// reconciliation, nobody can). It must not be called outside tests.
func NarrowShortIDs(n int) (restore func()) {
	old := shortIDMask.Swap(1<<min(max(n, 1), 64) - 1)
	return func() { shortIDMask.Store(old) }
}

// ShortID returns the 64-bit short id of a commit id under k.
func (k Key) ShortID(id commit.ID) uint64 {
	le := binary.LittleEndian
	v0, v1, v2, v3 := sipInit(k.k0, k.k1)
	for i := 0; i < len(id); i += 8 {
		v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, le.Uint64(id[i:]))
	}
	v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, uint64(len(id))<<56)
	return sipFinal(v0, v1, v2, v3) & shortIDMask.Load()
}

// checksum returns the keyed checksum of a short id: SipHash-2-4 of its
// 8 little-endian bytes under the key's second half.
func (k Key) checksum(x uint64) uint64 {
	v0, v1, v2, v3 := sipInit(k.k2, k.k3)
	v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, x)
	v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, 8<<56)
	return sipFinal(v0, v1, v2, v3)
}

// SipHash-2-4 (Aumasson, Bernstein 2012), in pieces so that the fixed
// 32- and 8-byte inputs above need no buffer. sipHash is the general
// form, against which the tests check them.

func sipInit(k0, k1 uint64) (v0, v1, v2, v3 uint64) {
	return k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
		k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573
}

func sipBlock(v0, v1, v2, v3, m uint64) (uint64, uint64, uint64, uint64) {
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ m, v1, v2, v3
}

func sipFinal(v0, v1, v2, v3 uint64) uint64 {
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// sipHash is SipHash-2-4 of any message.
func sipHash(k0, k1 uint64, msg []byte) uint64 {
	v0, v1, v2, v3 := sipInit(k0, k1)
	n := len(msg)
	for len(msg) >= 8 {
		v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, binary.LittleEndian.Uint64(msg))
		msg = msg[8:]
	}
	last := uint64(n) << 56
	for i, c := range msg {
		last |= uint64(c) << (8 * i)
	}
	v0, v1, v2, v3 = sipBlock(v0, v1, v2, v3, last)
	return sipFinal(v0, v1, v2, v3)
}
