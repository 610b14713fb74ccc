package repo

import "hash/crc32"

// CRC-32C of arbitrary segments of one buffer in bounded time, so that
// recovery can test many candidate records over the same bytes without
// re-reading them: a segment's checksum follows from the checksums of two
// prefixes, because the CRC is affine in its initial value. With
// U(c, y) = crc32.Update(c, castagnoli, y) and shift(c, n) the raw CRC
// state c advanced over n zero bytes,
//
//	U(0, y) = U(a, y) xor shift(a, len(y))   for any a,
//
// so U(0, data[i:j]) = P(j) xor shift(P(i), j-i) where P(k) = U(0, data[:k]).
// shift is a multiplication by x^(8n) modulo the polynomial (zlib's
// crc32_combine method).

const crcPoly = 0x82f63b78 // Castagnoli, reflected

// crcX2n[k] is x^(2^k) modulo the polynomial.
var crcX2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = crcMul(p, p)
		t[k] = p
	}
	return t
}()

// crcMul multiplies a and b modulo the polynomial (reflected bit order).
func crcMul(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
}

// crcShift advances a raw CRC state over n zero bytes.
func crcShift(c uint32, n int) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMul(crcX2n[k&31], p)
		}
	}
	return crcMul(p, c)
}

// crcStride is the spacing of the prefix checksums crcIndex keeps.
const crcStride = 64

// crcIndex answers the CRC-32C of any segment of data in O(crcStride +
// log n) time after one pass over data. It costs 4 bytes per crcStride
// bytes.
type crcIndex struct {
	data   []byte
	prefix []uint32 // prefix[k] = CRC of data[:k*crcStride]
}

func newCRCIndex(data []byte) *crcIndex {
	x := &crcIndex{data: data, prefix: make([]uint32, 1, len(data)/crcStride+1)}
	var c uint32
	for i := crcStride; i <= len(data); i += crcStride {
		c = crc32.Update(c, castagnoli, data[i-crcStride:i])
		x.prefix = append(x.prefix, c)
	}
	return x
}

// sum returns the CRC-32C of data[i:j].
func (x *crcIndex) sum(i, j int) uint32 {
	a := (i + crcStride - 1) / crcStride // first stride boundary at or after i
	b := j / crcStride                   // last stride boundary at or before j
	if a >= b {
		return crc32.Checksum(x.data[i:j], castagnoli)
	}
	head := crc32.Checksum(x.data[i:a*crcStride], castagnoli)
	mid := x.prefix[b] ^ crcShift(x.prefix[a], (b-a)*crcStride)
	c := crcShift(head, (b-a)*crcStride) ^ mid
	tail := x.data[b*crcStride : j]
	return crc32.Update(c, castagnoli, tail)
}
