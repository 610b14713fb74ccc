package commit

import (
	"crypto/ed25519"
	"fmt"
	"unsafe"

	"github.com/goatdb/goatdb/item"
	"github.com/zeebo/blake3"
)

// Decode decodes a commit and computes its id. It checks the encoding is
// canonical and the commit well formed; it does not check the signature
// (see [Commit.VerifySignature]). The commit keeps references into b: do not
// modify b afterwards.
func Decode(b []byte) (*Commit, error) { return decode(b, nil) }

// DecodeShared is Decode for bulk loading: field names and schema
// namespaces come from in (see item.Interner), and the key and string
// values share b's memory instead of being copied, so b must never be
// modified afterwards (Decode only requires that of the body).
func DecodeShared(b []byte, in *item.Interner) (*Commit, error) {
	if in == nil {
		in = new(item.Interner)
	}
	return decode(b, in)
}

func decode(b []byte, in *item.Interner) (*Commit, error) {
	c, d, err := decodeHeader(b, in)
	if err != nil {
		return nil, err
	}
	if c.full {
		c.value = d.Item()
	} else {
		c.delta = d.Delta()
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: contents: %w", ErrCorrupt, err)
	}
	if err := c.finish(b, d.Offset()); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeHeader(b []byte, in *item.Interner) (*Commit, *item.Decoder, error) {
	d := item.NewDecoder(b)
	if in != nil {
		d = item.NewSharingDecoder(b, in)
	}
	c := &Commit{}
	if c.version = d.Byte(); d.Err() == nil && (c.version < 1 || c.version > Version) {
		return nil, nil, fmt.Errorf("%w: version %d, this build reads 1 to %d", ErrCorrupt, c.version, Version)
	}
	flags := d.Byte()
	if d.Err() == nil && flags&^(flagDelta|flagSession) != 0 {
		d.Fail("unknown flags %#x", flags)
	}
	c.full = flags&flagDelta == 0
	if c.version >= 2 {
		if r := d.Bytes(d.Count(1)); in != nil && len(r) > 0 {
			c.repo = in.Intern(r)
		} else {
			c.repo = string(r)
		}
	}
	if k := d.Bytes(d.Count(1)); in != nil && len(k) > 0 {
		c.key = unsafe.String(&k[0], len(k))
	} else {
		c.key = string(k)
	}
	n := d.Count(32)
	if n > 0 {
		c.parents = make([]ID, n)
		for i := range c.parents {
			copy(c.parents[i][:], d.Bytes(32))
			if i > 0 && d.Err() == nil && CompareIDs(c.parents[i-1], c.parents[i]) >= 0 {
				d.Fail("parents not strictly increasing")
			}
		}
	}
	t := d.Uvarint()
	if t > maxTime {
		d.Fail("timestamp %d out of range", t)
	}
	c.time = int64(t)
	if flags&flagSession != 0 {
		copy(c.session[:], d.Bytes(32))
		if d.Err() == nil && c.session.IsZero() {
			d.Fail("zero session id")
		}
	}
	if c.full {
		if ns := d.Bytes(d.Count(1)); in != nil {
			c.schema.NS = in.Intern(ns)
		} else {
			c.schema.NS = string(ns)
		}
		v := d.Uvarint()
		if v > 1<<32-1 {
			d.Fail("schema version %d out of range", v)
		}
		c.schema.Version = uint32(v)
	} else {
		copy(c.base[:], d.Bytes(32))
	}
	if err := d.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return c, d, nil
}

// finish checks the commit, splits body from signature and computes the id.
func (c *Commit) finish(b []byte, bodyLen int) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	switch len(b) - bodyLen {
	case 0:
	case ed25519.SignatureSize:
		c.sig = b[bodyLen:len(b):len(b)]
	default:
		return fmt.Errorf("%w: %d bytes after the body; a signature is %d", ErrCorrupt, len(b)-bodyLen, ed25519.SignatureSize)
	}
	c.body = b[:bodyLen:bodyLen]
	c.id = blake3.Sum256(c.body)
	return nil
}
