package authz

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Certificates and revocation records share one encoding. Every record is
//
//	record := body signature
//	  body       version kind fields…
//	  version    1 byte, 1
//	  kind       1 byte: 1 node certificate, 2 session certificate,
//	             3 revocation record
//	  signature  64 bytes: Ed25519 over "goatdb-cert\x00" || body, by the
//	             issuer (the root key for a node certificate, a node key
//	             for a session certificate, the root or a node key for a
//	             revocation)
//
// so the signature covers every byte before it: the version, the kind, and
// for session certificates and node-issued revocations the whole embedded
// node certificate too. The prefix keeps these signatures apart from the
// other messages goatdb keys sign: commit ids (32 bytes) and requests
// ("goatdb-req-v1\x00…").
//
// Integers are big-endian and of fixed width, so each value has one
// encoding without a rule about shortest forms:
//
//	time    8 bytes: Unix milliseconds, 0 to 2^62 (MaxTime)
//	key     32 bytes: an Ed25519 public key
//	name    1 byte length n, n bytes of A-Z a-z 0-9 . _ - (not . or ..);
//	        bounds per field below
//	cert    2 bytes length n, n bytes: an embedded node certificate record
//
// The node certificate (kind 1):
//
//	+---+---+----------+-----------+---------+----------+-----------+
//	| 1 | 1 | key (32) | notBefore | expires | node     | signature |
//	|   |   |          | time (8)  | time (8)| name     | (64)      |
//	+---+---+----------+-----------+---------+----------+-----------+
//	  node: 1–128 bytes. 116 to 243 bytes in all.
//
// The session certificate (kind 2):
//
//	+---+---+--------------+-----------+---------+----------+------+
//	| 1 | 2 | session (32) | notBefore | expires | audience | user |
//	+---+---+--------------+-----------+---------+----------+------+
//	+-----------+---------------+-------------+-----------+
//	| nroles (1)| nroles × name | issuer cert | signature |
//	+-----------+---------------+-------------+-----------+
//	  audience: 1–128 bytes; user: 0–128 bytes (0: anonymous);
//	  nroles 0–32, each role 1–64 bytes, strictly increasing;
//	  issuer cert: the node certificate whose key signs this one.
//	  At most MaxSessionCertificateSize (2,698) bytes.
//
// The revocation record (kind 3):
//
//	+---+---+--------+--------------------+-----------+-----------------+
//	| 1 | 3 | target | session (32) |     | revokedAt | notBeforeIssued |
//	|   |   | (1)    | or user name       | time (8)  | time (8)        |
//	+---+---+--------+--------------------+-----------+-----------------+
//	+----------+------------+-------------------+-----------+
//	| audience | issuer (1) | [issuer cert]     | signature |
//	+----------+------------+-------------------+-----------+
//	  target 1: a session key follows; 2: a user name (1–128 bytes).
//	  issuer 1: signed by the root key, no cert follows; 2: signed by the
//	  node key of the node certificate that follows.
//
// Decoders accept only this form (decode then encode gives the same
// bytes), check every length against its bound and the bytes left before
// slicing, refuse trailing bytes, and never panic. A time interval must be
// non-empty (notBefore < expires).

const (
	recordVersion = 1

	kindNode       = 1
	kindSession    = 2
	kindRevocation = 3

	sigSize = 64
	keySize = 32

	maxNodeName = 128
	maxAudience = 128
	// MaxUserLen bounds a user name, in bytes.
	MaxUserLen = 128
	// MaxRoles bounds the roles of one certificate.
	MaxRoles = 32
	// MaxRoleLen bounds one role name, in bytes.
	MaxRoleLen = 64

	// MaxNodeCertificateSize is the largest encoded node certificate.
	MaxNodeCertificateSize = 2 + keySize + 16 + 1 + maxNodeName + sigSize
	// MaxSessionCertificateSize is the largest encoded session certificate.
	MaxSessionCertificateSize = 2 + keySize + 16 + 1 + maxAudience + 1 + MaxUserLen +
		1 + MaxRoles*(1+MaxRoleLen) + 2 + MaxNodeCertificateSize + sigSize
	// MaxRevocationSize is the largest encoded revocation record.
	MaxRevocationSize = 3 + max(keySize, 1+MaxUserLen) + 16 + 1 + maxAudience +
		1 + 2 + MaxNodeCertificateSize + sigSize

	maxTimeMS = 1 << 62
)

// MaxTime is the latest time a record holds. A revocation whose
// NotBeforeIssued is MaxTime voids every certificate of its target, past
// and future.
var MaxTime = time.UnixMilli(maxTimeMS).UTC()

var sigContext = []byte("goatdb-cert\x00")

// signedMessage returns what a record's signature covers.
func signedMessage(body []byte) []byte {
	return append(append(make([]byte, 0, len(sigContext)+len(body)), sigContext...), body...)
}

// enc appends a record's fields.
type enc struct{ b []byte }

func (e *enc) byte(v byte)    { e.b = append(e.b, v) }
func (e *enc) raw(v []byte)   { e.b = append(e.b, v...) }
func (e *enc) time(ms uint64) { e.b = binary.BigEndian.AppendUint64(e.b, ms) }
func (e *enc) name(s string)  { e.b = append(append(e.b, byte(len(s))), s...) }
func (e *enc) cert(v []byte) {
	e.b = binary.BigEndian.AppendUint16(e.b, uint16(len(v)))
	e.b = append(e.b, v...)
}

// dec reads a record's fields. The first failure sticks: later reads
// return zero values, and err says what was wrong where.
type dec struct {
	what string // "session certificate", …
	b    []byte
	off  int
	err  error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d: %s", ErrBadCertificate, d.what, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *dec) take(n int, field string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("%s: needs %d bytes, %d left", field, n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *dec) byte(field string) byte {
	v := d.take(1, field)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *dec) key(field string) []byte { return d.take(keySize, field) }

func (d *dec) time(field string) uint64 {
	v := d.take(8, field)
	if v == nil {
		return 0
	}
	ms := binary.BigEndian.Uint64(v)
	if ms > maxTimeMS {
		d.off -= 8
		d.fail("%s: %d ms is after MaxTime", field, ms)
		return 0
	}
	return ms
}

func (d *dec) name(field string, minLen, maxLen int) string {
	n := int(d.byte(field + " length"))
	if d.err != nil {
		return ""
	}
	if n < minLen || n > maxLen {
		d.off--
		d.fail("%s: length %d not in %d–%d", field, n, minLen, maxLen)
		return ""
	}
	s := string(d.take(n, field))
	if d.err == nil {
		if err := checkName(field, s, minLen, maxLen); err != nil {
			d.off -= n
			d.fail("%v", err)
		}
	}
	return s
}

func (d *dec) cert(field string) []byte {
	v := d.take(2, field+" length")
	if v == nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(v))
	if n > MaxNodeCertificateSize {
		d.off -= 2
		d.fail("%s: length %d > %d", field, n, MaxNodeCertificateSize)
		return nil
	}
	return d.take(n, field)
}

// header reads the version and kind.
func (d *dec) header(kind byte) {
	if v := d.byte("version"); d.err == nil && v != recordVersion {
		d.off--
		d.fail("version %d, this build reads version %d", v, recordVersion)
	}
	if k := d.byte("kind"); d.err == nil && k != kind {
		d.off--
		d.fail("kind %d, want %d", k, kind)
	}
}

// signature reads the signature, which must end the record, and returns
// the body before it.
func (d *dec) signature() (body, sig []byte) {
	end := d.off
	sig = d.take(sigSize, "signature")
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, nil
	}
	return d.b[:end], sig
}

// interval reads notBefore and expires, which must form a non-empty
// interval.
func (d *dec) interval() (notBefore, expires uint64) {
	notBefore = d.time("notBefore")
	expires = d.time("expires")
	if d.err == nil && notBefore >= expires {
		d.off -= 16
		d.fail("notBefore %d is not before expires %d", notBefore, expires)
	}
	return notBefore, expires
}

// checkName checks a name field: min–max bytes of A-Z a-z 0-9 . _ -, not
// "." or "..". An empty name is allowed only when min is 0.
func checkName(field, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("%s %.64q: length %d not in %d–%d", field, s, len(s), minLen, maxLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%s %q: . and .. are not names", field, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s %.64q: byte %#x; use A-Z a-z 0-9 . _ -", field, s, c)
		}
	}
	return nil
}

// millis converts t to the encoded time, checking its range.
func millis(field string, t time.Time) (uint64, error) {
	ms := t.UnixMilli()
	if ms < 0 || ms > maxTimeMS {
		return 0, fmt.Errorf("%w: %s %v is not between 1970 and MaxTime", ErrBadCertificate, field, t)
	}
	return uint64(ms), nil
}

func fromMillis(ms uint64) time.Time { return time.UnixMilli(int64(ms)).UTC() }

// checkInterval checks what Issue is given for an interval.
func checkInterval(notBefore, expires time.Time) (nb, ex uint64, err error) {
	if nb, err = millis("NotBefore", notBefore); err != nil {
		return 0, 0, err
	}
	if ex, err = millis("Expires", expires); err != nil {
		return 0, 0, err
	}
	if nb >= ex {
		return 0, 0, fmt.Errorf("%w: NotBefore %v is not before Expires %v", ErrBadCertificate, notBefore, expires)
	}
	return nb, ex, nil
}

// covers reports whether [notBefore, expires) holds t.
func covers(notBefore, expires uint64, t time.Time) bool {
	ms := t.UnixMilli()
	return ms >= 0 && uint64(ms) >= notBefore && uint64(ms) < expires
}
