package commit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goatdb/goatdb/item"
	"github.com/zeebo/blake3"
)

// Version is the encoding version this package writes for a commit that
// names its repository. Version 1 (no repository) is still read, and
// written for Fields without a Repo.
const Version = 2

// MaxParents bounds the number of parents of one commit.
const MaxParents = 1024

// maxTime bounds timestamps (Unix milliseconds) in New and Decode alike.
const maxTime = 1 << 62

const (
	flagDelta   = 1 << 0
	flagSession = 1 << 1
)

// ID is a commit id: blake3-256 of the commit's body.
type ID [32]byte

// String returns the id in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for logs.
func (id ID) Short() string { return id.String()[:12] }

// IsZero reports whether id is the zero id.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a 64-digit hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("%w: commit id %q must be 64 hex digits", ErrInvalid, s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: commit id %q: %v", ErrInvalid, s, err)
	}
	return id, nil
}

// CompareIDs orders ids bytewise.
func CompareIDs(a, b ID) int { return bytes.Compare(a[:], b[:]) }

// SessionID is a session's Ed25519 public key.
type SessionID [32]byte

// IsZero reports whether s names no session.
func (s SessionID) IsZero() bool { return s == SessionID{} }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the session id in base32 (52 characters).
func (s SessionID) String() string { return b32.EncodeToString(s[:]) }

// ParseSessionID parses the form String returns.
func ParseSessionID(str string) (SessionID, error) {
	var s SessionID
	b, err := b32.DecodeString(str)
	// The decoder skips newlines and ignores the last character's low bits:
	// accept only the one spelling String returns.
	if err != nil || len(b) != len(s) || b32.EncodeToString(b) != str {
		return s, fmt.Errorf("%w: session id %q is not the 52-character base32 form", ErrInvalid, str)
	}
	copy(s[:], b)
	return s, nil
}

// Schema names the schema of an item: a namespace and a version. The zero
// Schema is the dynamic schema, whose field types come from the values.
type Schema struct {
	NS      string
	Version uint32
}

// String returns "ns/version", or "dynamic".
func (s Schema) String() string {
	if s.NS == "" {
		return "dynamic"
	}
	return fmt.Sprintf("%s/%d", s.NS, s.Version)
}

// Commit is an immutable commit. Build one with [New] or [NewMerge], or
// decode one with [Decode].
type Commit struct {
	version byte   // 1 (no repository) or 2
	repo    string // version 2: the repository /type/repo
	key     string
	parents []ID
	time    int64
	session SessionID
	schema  Schema // full commits only
	full    bool
	value   item.Item  // full commits
	base    ID         // delta commits
	delta   item.Delta // delta commits

	body []byte // canonical encoding of everything but the signature
	sig  []byte
	id   ID
}

// SessionOffset returns where the 32 session bytes start in the body, or -1
// if the commit names no session. Storage may leave them out of a commit
// whose session it knows, and put them back before decoding.
func (c *Commit) SessionOffset() int {
	if c.session.IsZero() {
		return -1
	}
	off, _ := PrefixLen(c.body)
	return off
}

// PrefixLen returns the length of the fields before the session in an
// encoding (version, flags, [repository,] key, parents, time): where the
// session is, or would be. It fails with ErrCorrupt if b is too short or
// malformed there.
func PrefixLen(b []byte) (int, error) {
	d := item.NewDecoder(b)
	v := d.Byte()
	d.Byte()
	if v >= 2 {
		d.Bytes(d.Count(1))
	}
	d.Bytes(d.Count(1))
	d.Bytes(32 * d.Count(32))
	d.Uvarint()
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return d.Offset(), nil
}

// HasSession reports whether an encoding's flags say it names a session.
func HasSession(b []byte) bool { return len(b) > 1 && b[1]&flagSession != 0 }

// Fields are what a new commit is built from. Exactly one of Value (with
// Schema) for a full snapshot, or Base and Delta for a delta, is used,
// according to Full.
type Fields struct {
	// Repo is the repository /type/repo the commit belongs to. It is part
	// of what the id and signature cover, so a commit cannot be replayed
	// into another repository. Empty writes the version 1 encoding, which
	// names none.
	Repo    string
	Key     string
	Parents []ID // any order; sorted by New
	Time    int64
	Session SessionID
	Full    bool
	Schema  Schema
	Value   item.Item
	Base    ID
	Delta   item.Delta
}

// New builds a commit, computing its encoding and id. It signs it with key
// when key is not nil; key must belong to f.Session.
func New(f Fields, key ed25519.PrivateKey) (*Commit, error) {
	c := &Commit{
		version: 1, repo: f.Repo,
		key: f.Key, parents: slices.Clone(f.Parents), time: f.Time, session: f.Session,
		full: f.Full, schema: f.Schema, value: f.Value, base: f.Base, delta: f.Delta,
	}
	if f.Repo != "" {
		c.version = Version
	}
	slices.SortFunc(c.parents, CompareIDs)
	if c.full {
		c.base, c.delta = ID{}, item.Delta{}
	} else {
		c.schema, c.value = Schema{}, item.Item{}
	}
	if err := c.encode(); err != nil {
		return nil, err
	}
	if key != nil {
		if err := c.sign(key); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// NewMerge builds the merge commit of the given leaves: no session, no
// signature, timestamp = the latest leaf's. Its contents (a full snapshot
// or a delta) and its repository (f.Repo) are chosen by the caller,
// deterministically.
func NewMerge[L interface {
	ID() ID
	Time() int64
}](key string, leaves []L, f Fields) (*Commit, error) {
	f.Key, f.Session, f.Parents, f.Time = key, SessionID{}, nil, 0
	for _, l := range leaves {
		f.Parents = append(f.Parents, l.ID())
		f.Time = max(f.Time, l.Time())
	}
	if len(f.Parents) < 2 {
		return nil, fmt.Errorf("%w: a merge needs two or more leaves", ErrInvalid)
	}
	return New(f, nil)
}

func (c *Commit) encode() error {
	if err := c.validate(); err != nil {
		return err
	}
	flags := byte(0)
	if !c.full {
		flags |= flagDelta
	}
	if !c.session.IsZero() {
		flags |= flagSession
	}
	b := make([]byte, 0, 128)
	b = append(b, c.version, flags)
	if c.version >= 2 {
		b = binary.AppendUvarint(b, uint64(len(c.repo)))
		b = append(b, c.repo...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.key)))
	b = append(b, c.key...)
	b = binary.AppendUvarint(b, uint64(len(c.parents)))
	for _, p := range c.parents {
		b = append(b, p[:]...)
	}
	b = binary.AppendUvarint(b, uint64(c.time))
	if !c.session.IsZero() {
		b = append(b, c.session[:]...)
	}
	var err error
	if c.full {
		b = binary.AppendUvarint(b, uint64(len(c.schema.NS)))
		b = append(b, c.schema.NS...)
		b = binary.AppendUvarint(b, uint64(c.schema.Version))
		b, err = item.AppendItem(b, c.value)
	} else {
		b = append(b, c.base[:]...)
		b, err = item.AppendDelta(b, c.delta)
	}
	if err != nil {
		return fmt.Errorf("%w: item %s: %w", ErrInvalid, c.key, err)
	}
	c.body = b
	c.id = blake3.Sum256(b)
	return nil
}

func (c *Commit) validate() error {
	if c.version >= 2 {
		if err := ValidRepo(c.repo); err != nil {
			return err
		}
	}
	if err := ValidKey(c.key); err != nil {
		return err
	}
	if len(c.parents) > MaxParents {
		return fmt.Errorf("%w: %d parents, at most %d", ErrInvalid, len(c.parents), MaxParents)
	}
	for i := 1; i < len(c.parents); i++ {
		if c.parents[i-1] == c.parents[i] {
			return fmt.Errorf("%w: parent %s twice", ErrInvalid, c.parents[i].Short())
		}
	}
	if c.time < 0 || c.time > maxTime {
		return fmt.Errorf("%w: timestamp %d out of range [0, 2^62]", ErrInvalid, c.time)
	}
	if len(c.parents) >= 2 && !c.session.IsZero() {
		return fmt.Errorf("%w: a merge commit has no session", ErrInvalid)
	}
	if len(c.parents) < 2 && c.session.IsZero() {
		return fmt.Errorf("%w: a commit that is not a merge names its session", ErrInvalid)
	}
	if !c.full && len(c.parents) == 0 {
		return fmt.Errorf("%w: a delta needs a parent", ErrInvalid)
	}
	if c.full {
		return ValidSchema(c.schema)
	}
	return nil
}

// ValidSchema checks a schema reference: the zero (dynamic) schema, or a
// namespace that follows the key rule (see ValidKey) with a version of 1 or
// more.
func ValidSchema(s Schema) error {
	switch {
	case s.NS == "" && s.Version != 0:
		return fmt.Errorf("%w: the dynamic schema has no version", ErrInvalid)
	case s.NS == "":
		return nil
	case s.Version == 0:
		return fmt.Errorf("%w: schema %q has version 0; versions start at 1", ErrInvalid, s.NS)
	}
	if err := ValidKey(s.NS); err != nil {
		return fmt.Errorf("%w: schema namespace: %w", ErrInvalid, err)
	}
	return nil
}

func (c *Commit) sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize || !bytes.Equal(key.Public().(ed25519.PublicKey), c.session[:]) {
		return fmt.Errorf("%w: the key does not belong to session %s", ErrBadSignature, c.session)
	}
	c.sig = ed25519.Sign(key, c.id[:])
	verified.Load().add(c.id, c.sig) // signed with the session's own key
	return nil
}

// ValidKey checks an item key: 1–128 characters of A-Z a-z 0-9 . _ -, not
// "." or "..".
func ValidKey(key string) error {
	if len(key) == 0 || len(key) > 128 || key == "." || key == ".." {
		return fmt.Errorf("%w: key %q must be 1–128 characters (not . or ..)", ErrInvalid, key)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			// Name the whole character, not its first UTF-8 byte.
			bad := fmt.Sprintf("'\\x%02x'", c)
			if r, n := utf8.DecodeRuneInString(key[i:]); r != utf8.RuneError || n > 1 {
				bad = strconv.QuoteRune(r)
			}
			return fmt.Errorf("%w: key %q has %s; use A-Z a-z 0-9 . _ -", ErrInvalid, key, bad)
		}
	}
	return nil
}

// ValidRepo checks a repository path: /type/repo, each part following the
// key rule (see ValidKey).
func ValidRepo(repo string) error {
	parts := strings.Split(repo, "/")
	if len(parts) != 3 || parts[0] != "" {
		return fmt.Errorf("%w: repository %q must be /type/repo", ErrInvalid, repo)
	}
	for _, p := range parts[1:] {
		if err := ValidKey(p); err != nil {
			return fmt.Errorf("%w: repository %q: %w", ErrInvalid, repo, err)
		}
	}
	return nil
}

// ID returns the commit's id.
func (c *Commit) ID() ID { return c.id }

// Repo returns the repository the commit names, or "" for a version 1
// commit, which names none.
func (c *Commit) Repo() string { return c.repo }

// Version returns the commit's encoding version: 1 or 2.
func (c *Commit) Version() int { return int(c.version) }

// Key returns the item key.
func (c *Commit) Key() string { return c.key }

// Parents returns the sorted parent ids. The slice is shared: do not modify it.
func (c *Commit) Parents() []ID { return c.parents }

// Time returns the timestamp in Unix milliseconds.
func (c *Commit) Time() int64 { return c.time }

// Timestamp returns the timestamp as a UTC time.
func (c *Commit) Timestamp() time.Time { return time.UnixMilli(c.time).UTC() }

// Session returns the author's session id; zero for merges.
func (c *Commit) Session() SessionID { return c.session }

// IsMerge reports whether the commit has two or more parents.
func (c *Commit) IsMerge() bool { return len(c.parents) >= 2 }

// IsFull reports whether the contents are a full snapshot.
func (c *Commit) IsFull() bool { return c.full }

// Schema returns the schema of a full commit; a delta has its base's.
func (c *Commit) Schema() Schema { return c.schema }

// Value returns the item of a full commit.
func (c *Commit) Value() item.Item { return c.value }

// Base returns the base id of a delta.
func (c *Commit) Base() ID { return c.base }

// Delta returns the edits of a delta.
func (c *Commit) Delta() item.Delta { return c.delta }

// Signed reports whether the commit carries a signature.
func (c *Commit) Signed() bool { return len(c.sig) > 0 }

// Signature returns the signature, or nil.
func (c *Commit) Signature() []byte { return c.sig }

// Body returns the canonical encoding without the signature (what the id
// hashes). The slice is shared: do not modify it.
func (c *Commit) Body() []byte { return c.body }

// Size returns the length of the encoding.
func (c *Commit) Size() int { return len(c.body) + len(c.sig) }

// AppendEncoding appends the commit's encoding (body and signature) to b.
func (c *Commit) AppendEncoding(b []byte) []byte {
	return append(append(b, c.body...), c.sig...)
}

// Encode returns the commit's encoding.
func (c *Commit) Encode() []byte { return c.AppendEncoding(make([]byte, 0, c.Size())) }

// VerifySignature checks the signature against the commit's session. A merge
// must be unsigned; any other commit must be signed when required is true.
// A commit whose exact bytes verified before in this process is not
// verified again (see SetVerifiedCacheSize).
func (c *Commit) VerifySignature(required bool) error {
	switch {
	case c.IsMerge() && c.Signed():
		return fmt.Errorf("%w: merge commit %s is signed", ErrBadSignature, c.id.Short())
	case !c.Signed():
		if required && !c.IsMerge() {
			return fmt.Errorf("%w: commit %s is not signed", ErrBadSignature, c.id.Short())
		}
		return nil
	case verified.Load().has(c.id, c.sig):
		return nil
	case !ed25519.Verify(c.session[:], c.id[:], c.sig):
		return fmt.Errorf("%w: commit %s does not verify against session %s", ErrBadSignature, c.id.Short(), c.session)
	}
	verified.Load().add(c.id, c.sig)
	return nil
}
