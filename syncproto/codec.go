package syncproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto/riblt"
	"github.com/klauspost/compress/zstd"
)

// The wire format is drawn in doc.go; keep the two in step.

// Version is the message format version this build writes for messages
// that carry no horizon field; a message that carries one (a request or
// an answer about a repository that collected history, see
// RepoResponse.Horizon) is VersionHorizon. A build that predates horizons
// refuses such a message with its ErrVersion, which names what it reads:
// it could neither compare digests with a collected peer nor store its
// shallow roots, and would push the history the server collected.
const Version = 1

// VersionHorizon is the version of messages with horizon fields: version
// 1 with request flag bit 3 and answer flag bits 3 to 5. A version 2
// message uses at least one of them, and a version 1 message none, so
// that each message has one encoding.
const VersionHorizon = 2

// VersionSketch is the version of messages with rateless IBLT fields
// (first contact, see doc.go): request flag bits 4 and 5, answer flag bit
// 6, on top of version 2's. A version 3 message uses at least one of
// them, and a message of version 1 or 2 none. A build that predates them
// refuses a request of version 3 with ErrVersion; the Syncer then syncs
// that server without them (the Bloom path), and a Responder answers with
// version 3 only a request of version 3.
const VersionSketch = 3

// supportedVersions lists the versions this build reads.
var supportedVersions = []byte{Version, VersionHorizon, VersionSketch}

// Bounds on messages. A decoder refuses anything larger before allocating
// for it; an encoder refuses to produce it.
const (
	MaxMessageSize = envelopeSize + MaxPayloadSize // bytes on the wire
	MaxPayloadSize = 64 << 20                      // bytes after decompression
	MaxRepos       = 4096                          // sections per message
	MaxPathLen     = 512                           // bytes of a repository path
	MaxCommitSize  = 32 << 20                      // bytes of one encoded commit
	MaxCommits     = 1 << 20                       // commits (and rejections) per section
	MaxMissing     = 1 << 16                       // missing ids per section
	MaxReasonLen   = 1024                          // bytes of a rejection reason or status message
	MaxWant        = 1 << 16                       // short ids a Sketch asks for
	MaxSymbols     = 1 << 14                       // coded symbols per answer (at most riblt.MaxRunSymbols)
)

// maxRunBytes bounds the encoding of a run of MaxSymbols symbols: two
// uvarints and, per symbol, 16 bytes and a varint count.
const maxRunBytes = 2*binary.MaxVarintLen64 + MaxSymbols*(16+binary.MaxVarintLen64)

// Message kinds.
const (
	kindRequest  = 1
	kindResponse = 2
)

// Body codecs.
const (
	codecNone = 0
	codecZstd = 1
)

// compressMin is the payload size below which compression is not tried:
// a zstd frame costs about a dozen bytes, and small messages are mostly
// random ids and digests.
const compressMin = 128

// Section flags.
const (
	reqResume  = 1 << 0
	reqFilter  = 1 << 1
	reqRepair  = 1 << 2
	reqHorizon = 1 << 3 // version 2
	reqSketch  = 1 << 4 // version 3
	reqDecoded = 1 << 5 // version 3, only with reqSketch
	reqFlags   = reqResume | reqFilter | reqRepair
	reqFlags2  = reqHorizon
	reqFlags3  = reqSketch | reqDecoded

	respFilter    = 1 << 0
	respMore      = 1 << 1
	respHidden    = 1 << 2
	respHorizon   = 1 << 3 // version 2
	respAtHorizon = 1 << 4 // version 2
	respShallow   = 1 << 5 // version 2
	respSymbols   = 1 << 6 // version 3
	respFlags     = respFilter | respMore | respHidden
	respFlags2    = respHorizon | respAtHorizon | respShallow
	respFlags3    = respSymbols
)

// maxHorizon bounds a horizon on the wire: a Unix millisecond time, 1 up.
const maxHorizon = 1<<63 - 1

const envelopeSize = 3 // version, kind, codec

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxPayloadSize))
	// zcap decompresses into a buffer of a size the caller reserved, and
	// never beyond it (DecodeRequestBound).
	zcap, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxPayloadSize),
		zstd.WithDecodeAllCapLimit(true))
)

// EncodeRequest returns a request's wire encoding.
func EncodeRequest(r *Request) ([]byte, error) {
	b := make([]byte, envelopeSize, 256)
	b = append(b, r.Session[:]...)
	if len(r.Repos) > MaxRepos {
		return nil, fmt.Errorf("%w: %d repositories, at most %d", ErrMalformed, len(r.Repos), MaxRepos)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Repos)))
	version := byte(Version)
	for i := range r.Repos {
		var err error
		if b, err = appendRepoRequest(b, &r.Repos[i]); err != nil {
			return nil, err
		}
		if r.Repos[i].Horizon != 0 {
			version = max(version, VersionHorizon)
		}
		if r.Repos[i].Sketch != nil {
			version = VersionSketch
		}
	}
	return seal(b, kindRequest, version)
}

func appendRepoRequest(b []byte, q *RepoRequest) ([]byte, error) {
	b, err := appendPath(b, q.Path)
	if err != nil {
		return nil, err
	}
	var flags byte
	if q.Resume != nil {
		flags |= reqResume
	}
	if q.Filter != nil {
		flags |= reqFilter
	}
	if q.Repair {
		flags |= reqRepair
	}
	if q.Horizon < 0 {
		return nil, fmt.Errorf("%w: negative horizon %d", ErrMalformed, q.Horizon)
	}
	if q.Horizon != 0 {
		flags |= reqHorizon
	}
	if q.Sketch != nil {
		flags |= reqSketch
		if q.Sketch.Decoded {
			flags |= reqDecoded
		}
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, q.Count)
	b = append(b, q.Digest[:]...)
	if q.Horizon != 0 {
		b = binary.AppendUvarint(b, uint64(q.Horizon))
	}
	if q.Resume != nil {
		b = binary.LittleEndian.AppendUint64(b, q.Resume.Epoch)
		b = binary.AppendUvarint(b, q.Resume.Seq)
	}
	if q.Filter != nil {
		b = appendFilter(b, q.Filter)
	}
	if q.Sketch != nil {
		if b, err = appendSketch(b, q.Sketch); err != nil {
			return nil, err
		}
	}
	if b, err = appendCommits(b, q.Commits); err != nil {
		return nil, err
	}
	return appendIDs(b, q.Missing)
}

// EncodeResponse returns a response's wire encoding.
func EncodeResponse(r *Response) ([]byte, error) {
	b := make([]byte, envelopeSize, envelopeSize+responseSize(r))
	if len(r.Repos) > MaxRepos {
		return nil, fmt.Errorf("%w: %d repositories, at most %d", ErrMalformed, len(r.Repos), MaxRepos)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Repos)))
	version := byte(Version)
	for i := range r.Repos {
		var err error
		if b, err = appendRepoResponse(b, &r.Repos[i]); err != nil {
			return nil, err
		}
		if p := &r.Repos[i]; p.Status == StatusOK && (p.Horizon != 0 || p.AtHorizon != nil || len(p.Shallow) > 0) {
			version = max(version, VersionHorizon)
		}
		if p := &r.Repos[i]; p.Status == StatusOK && p.Symbols != nil {
			version = VersionSketch
		}
	}
	return seal(b, kindResponse, version)
}

// responseSize estimates the payload of r, so that it is allocated once
// (an answer may carry megabytes of commits: growing its buffer by
// doubling would allocate twice that).
func responseSize(r *Response) int {
	n := binary.MaxVarintLen64
	for i := range r.Repos {
		p := &r.Repos[i]
		n += len(p.Path) + len(p.Message) + 140 + len(commit.ID{})*(len(p.Missing)+len(p.Hidden))
		n += (len(commit.ID{}) + 2*binary.MaxVarintLen32 + binary.MaxVarintLen64) * len(p.Shallow)
		if p.Filter != nil {
			n += int(p.Filter.bf.Cap()/8) + 64
		}
		if p.Symbols != nil {
			n += 2*binary.MaxVarintLen64 + 20*len(p.Symbols.Symbols)
		}
		for _, c := range p.Commits {
			n += binary.MaxVarintLen32 + len(c)
		}
		for _, rj := range p.Rejected {
			n += len(rj.ID) + binary.MaxVarintLen32 + len(rj.Reason)
		}
	}
	return min(n, MaxPayloadSize+1)
}

func appendRepoResponse(b []byte, p *RepoResponse) ([]byte, error) {
	b, err := appendPath(b, p.Path)
	if err != nil {
		return nil, err
	}
	if p.Status >= numStatus {
		return nil, fmt.Errorf("%w: status %d", ErrMalformed, p.Status)
	}
	b = append(b, byte(p.Status))
	if p.Status != StatusOK {
		return appendString(b, p.Message, MaxReasonLen, "status message")
	}
	var flags byte
	if p.Filter != nil {
		flags |= respFilter
	}
	if p.More {
		flags |= respMore
	}
	if len(p.Hidden) > 0 {
		flags |= respHidden
	}
	switch {
	case p.Horizon < 0:
		return nil, fmt.Errorf("%w: negative horizon %d", ErrMalformed, p.Horizon)
	case p.Horizon != 0:
		flags |= respHorizon
	}
	if p.AtHorizon != nil {
		flags |= respAtHorizon
	}
	if len(p.Shallow) > 0 {
		flags |= respShallow
	}
	if p.Symbols != nil {
		flags |= respSymbols
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, p.Epoch)
	b = binary.AppendUvarint(b, p.Seq)
	b = binary.AppendUvarint(b, p.Count)
	b = append(b, p.Digest[:]...)
	if p.Horizon != 0 {
		b = binary.AppendUvarint(b, uint64(p.Horizon))
	}
	if p.AtHorizon != nil {
		b = binary.AppendUvarint(b, p.AtHorizon.Count)
		b = append(b, p.AtHorizon.Digest[:]...)
	}
	if p.Filter != nil {
		b = appendFilter(b, p.Filter)
	}
	if p.Symbols != nil {
		if b, err = appendSymbols(b, p.Symbols); err != nil {
			return nil, err
		}
	}
	if b, err = appendCommits(b, p.Commits); err != nil {
		return nil, err
	}
	if b, err = appendIDs(b, p.Missing); err != nil {
		return nil, err
	}
	if len(p.Rejected) > MaxCommits {
		return nil, fmt.Errorf("%w: %d rejections, at most %d", ErrMalformed, len(p.Rejected), MaxCommits)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Rejected)))
	for _, rj := range p.Rejected {
		b = append(b, rj.ID[:]...)
		if b, err = appendString(b, rj.Reason, MaxReasonLen, "rejection reason"); err != nil {
			return nil, err
		}
	}
	if len(p.Hidden) > 0 {
		if len(p.Hidden) > MaxCommits {
			return nil, fmt.Errorf("%w: %d hidden ids, at most %d", ErrMalformed, len(p.Hidden), MaxCommits)
		}
		b = binary.AppendUvarint(b, uint64(len(p.Hidden)))
		for _, id := range p.Hidden {
			b = append(b, id[:]...)
		}
	}
	if len(p.Shallow) > 0 {
		if len(p.Shallow) > MaxCommits {
			return nil, fmt.Errorf("%w: %d shallow roots, at most %d", ErrMalformed, len(p.Shallow), MaxCommits)
		}
		b = binary.AppendUvarint(b, uint64(len(p.Shallow)))
		for _, sr := range p.Shallow {
			if sr.Gen == 0 {
				return nil, fmt.Errorf("%w: shallow root %s of generation 0", ErrMalformed, sr.ID.Short())
			}
			if sr.Absent == 0 {
				return nil, fmt.Errorf("%w: shallow root %s with no collected parent", ErrMalformed, sr.ID.Short())
			}
			b = append(b, sr.ID[:]...)
			b = binary.AppendUvarint(b, uint64(sr.Gen))
			b = binary.AppendUvarint(b, uint64(sr.Depth))
			b = binary.AppendUvarint(b, sr.Absent)
		}
	}
	return b, nil
}

func appendPath(b []byte, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty repository path", ErrMalformed)
	}
	return appendString(b, path, MaxPathLen, "repository path")
}

func appendString(b []byte, s string, maxLen int, what string) ([]byte, error) {
	if len(s) > maxLen {
		return nil, fmt.Errorf("%w: %s of %d bytes, at most %d", ErrMalformed, what, len(s), maxLen)
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...), nil
}

func appendFilter(b []byte, f *Filter) []byte {
	b = append(b, f.salt[:]...)
	b = append(b, byte(f.K()))
	b = binary.AppendUvarint(b, f.Bits())
	for _, w := range f.words() {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// appendSketch appends a request's sketch: the key, then From, or the
// wanted short ids once decoded.
func appendSketch(b []byte, k *Sketch) ([]byte, error) {
	b = append(b, k.Key[:]...)
	if !k.Decoded {
		if k.From > riblt.MaxIndex || k.Ask > MaxSymbols || len(k.Want) > 0 {
			return nil, fmt.Errorf("%w: sketch from symbol %d asking %d with %d wanted ids", ErrMalformed, k.From, k.Ask, len(k.Want))
		}
		b = binary.AppendUvarint(b, k.From)
		return binary.AppendUvarint(b, k.Ask), nil
	}
	if k.From != 0 || k.Ask != 0 || len(k.Want) > MaxWant {
		return nil, fmt.Errorf("%w: decoded sketch from symbol %d with %d wanted ids, at most %d", ErrMalformed, k.From, len(k.Want), MaxWant)
	}
	b = binary.AppendUvarint(b, uint64(len(k.Want)))
	for _, x := range k.Want {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b, nil
}

// appendSymbols appends a run of 1 to MaxSymbols symbols, as a uvarint
// length and the riblt run.
func appendSymbols(b []byte, r *SymbolRun) ([]byte, error) {
	if len(r.Symbols) == 0 || len(r.Symbols) > MaxSymbols {
		return nil, fmt.Errorf("%w: %d symbols, want 1 to %d", ErrMalformed, len(r.Symbols), MaxSymbols)
	}
	run, err := riblt.AppendRun(nil, r.Start, r.Symbols)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	b = binary.AppendUvarint(b, uint64(len(run)))
	return append(b, run...), nil
}

func appendCommits(b []byte, encs [][]byte) ([]byte, error) {
	if len(encs) > MaxCommits {
		return nil, fmt.Errorf("%w: %d commits, at most %d", ErrMalformed, len(encs), MaxCommits)
	}
	b = binary.AppendUvarint(b, uint64(len(encs)))
	for _, e := range encs {
		if len(e) == 0 || len(e) > MaxCommitSize {
			return nil, fmt.Errorf("%w: commit of %d bytes, want 1 to %d", ErrMalformed, len(e), MaxCommitSize)
		}
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b, nil
}

func appendIDs(b []byte, ids []commit.ID) ([]byte, error) {
	if len(ids) > MaxMissing {
		return nil, fmt.Errorf("%w: %d missing ids, at most %d", ErrMalformed, len(ids), MaxMissing)
	}
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b, nil
}

// seal fills in the envelope of b (whose first envelopeSize bytes are
// reserved) and compresses the payload when that pays.
func seal(b []byte, kind, version byte) ([]byte, error) {
	payload := b[envelopeSize:]
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrTooLarge, len(payload), MaxPayloadSize)
	}
	b[0], b[1], b[2] = version, kind, codecNone
	if len(payload) >= compressMin {
		z := zenc.EncodeAll(payload, make([]byte, envelopeSize, envelopeSize+len(payload)/2))
		if len(z) < len(b) {
			z[0], z[1], z[2] = version, kind, codecZstd
			b = z
		}
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	return b, nil
}

// open checks a message's envelope and returns its payload, in memory of
// its own: decoded messages refer to it instead of copying each commit.
func open(msg []byte, kind byte) ([]byte, error) {
	if err := checkEnvelope(msg, kind); err != nil {
		return nil, err
	}
	switch msg[2] {
	case codecNone:
		return slices.Clone(msg[envelopeSize:]), nil
	case codecZstd:
		payload, err := zdec.DecodeAll(msg[envelopeSize:], nil)
		switch {
		case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
			return nil, fmt.Errorf("%w: payload over %d bytes", ErrTooLarge, MaxPayloadSize)
		case err != nil:
			return nil, fmt.Errorf("%w: decompress payload: %w", ErrMalformed, err)
		case len(payload) > MaxPayloadSize:
			return nil, fmt.Errorf("%w: payload of %d bytes, at most %d", ErrTooLarge, len(payload), MaxPayloadSize)
		}
		return payload, nil
	}
	return nil, fmt.Errorf("%w: unknown codec %d", ErrMalformed, msg[2])
}

// checkEnvelope checks a message's size, version and kind.
func checkEnvelope(msg []byte, kind byte) error {
	if len(msg) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(msg), MaxMessageSize)
	}
	if len(msg) < envelopeSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte envelope", ErrMalformed, len(msg), envelopeSize)
	}
	if !slices.Contains(supportedVersions, msg[0]) {
		return fmt.Errorf("%w: version %d (this build reads version %v)", ErrVersion, msg[0], supportedVersions)
	}
	if msg[1] != kind {
		return fmt.Errorf("%w: message kind %d, want %d (%s)", ErrMalformed, msg[1], kind, kindName(kind))
	}
	return nil
}

func kindName(kind byte) string {
	if kind == kindRequest {
		return "request"
	}
	return "response"
}

// UndeclaredBound is the most a compressed payload whose zstd frame does
// not declare its size may hold, for DecodeRequestBound: Encode declares
// the size of every payload it compresses but the smallest (under 256
// bytes), and a peer that does not must keep such payloads this small.
const UndeclaredBound = 4 << 10

// PayloadBound returns how many bytes opening msg takes at most: its
// payload's size if it is not compressed, or the size its zstd frame
// declares (UndeclaredBound if it declares none; MaxPayloadSize at most),
// so that a server can reserve that much memory before
// DecodeRequestBound allocates it.
func PayloadBound(msg []byte) int {
	if len(msg) < envelopeSize || len(msg) > MaxMessageSize {
		return 0 // refused before anything is allocated
	}
	if msg[2] != codecZstd {
		return len(msg) - envelopeSize
	}
	var h zstd.Header
	switch err := h.Decode(msg[envelopeSize:]); {
	case err != nil || !h.HasFCS:
		return UndeclaredBound
	case h.FrameContentSize > MaxPayloadSize:
		return MaxPayloadSize
	}
	return int(h.FrameContentSize)
}

// DecodeRequestBound is DecodeRequest for a message whose payload may
// take at most bound bytes (PayloadBound, or less): it allocates at most
// that much to decompress it, and a payload that turns out larger (a
// frame that lied about its size, or several frames) is refused with
// ErrTooLarge. A server reserves bound from its memory budget first.
func DecodeRequestBound(msg []byte, bound int) (*Request, error) {
	payload, err := openBound(msg, kindRequest, bound)
	if err != nil {
		return nil, err
	}
	return decodeRequestPayload(payload, msg[0])
}

// openBound is open, decompressing into at most bound bytes.
func openBound(msg []byte, kind byte, bound int) ([]byte, error) {
	bound = min(bound, MaxPayloadSize)
	if err := checkEnvelope(msg, kind); err != nil {
		return nil, err
	}
	if msg[2] != codecZstd {
		if len(msg)-envelopeSize > bound {
			return nil, fmt.Errorf("%w: payload of %d bytes, over the %d reserved", ErrTooLarge, len(msg)-envelopeSize, bound)
		}
		return open(msg, kind)
	}
	payload, err := zcap.DecodeAll(msg[envelopeSize:], make([]byte, 0, bound))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, fmt.Errorf("%w: payload over the %d bytes reserved", ErrTooLarge, bound)
	case err != nil && strings.Contains(err.Error(), "bigger than max block size"):
		// How the decoder says that a block of a frame that declares no
		// size does not fit what is left of the buffer.
		return nil, fmt.Errorf("%w: payload over the %d bytes reserved", ErrTooLarge, bound)
	case err != nil:
		return nil, fmt.Errorf("%w: decompress payload: %w", ErrMalformed, err)
	case len(payload) > bound:
		return nil, fmt.Errorf("%w: payload of %d bytes, over the %d reserved", ErrTooLarge, len(payload), bound)
	}
	return payload, nil
}

// DecodeRequest decodes a request. It never panics; any input that is not
// a canonical encoding within the bounds gives an error wrapping
// ErrMalformed, ErrVersion or ErrTooLarge. The request shares no memory
// with msg.
func DecodeRequest(msg []byte) (*Request, error) {
	payload, err := open(msg, kindRequest)
	if err != nil {
		return nil, err
	}
	return decodeRequestPayload(payload, msg[0])
}

// decodeRequestPayload decodes an opened request's payload, of the given
// version.
func decodeRequestPayload(payload []byte, version byte) (*Request, error) {
	d := &decoder{buf: payload, version: version}
	r := &Request{}
	copy(r.Session[:], d.fixed(len(r.Session)))
	n := d.count(MaxRepos, 1, "repositories")
	for i := 0; i < n && d.err == nil; i++ {
		r.Repos = append(r.Repos, d.repoRequest())
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeResponse decodes a response; see DecodeRequest.
func DecodeResponse(msg []byte) (*Response, error) {
	payload, err := open(msg, kindResponse)
	if err != nil {
		return nil, err
	}
	d := &decoder{buf: payload, version: msg[0]}
	r := &Response{}
	n := d.count(MaxRepos, 1, "repositories")
	for i := 0; i < n && d.err == nil; i++ {
		r.Repos = append(r.Repos, d.repoResponse())
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

// decoder reads a payload. The first error sticks; after it every read
// returns zero values, so callers check once at the end.
type decoder struct {
	buf     []byte
	off     int
	err     error
	version byte // the message's
	used2   bool // a field of version 2 was read
	used3   bool // a field of version 3 was read
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at payload offset %d", ErrMalformed, fmt.Sprintf(format, args...), d.off)
	}
}

func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%d trailing bytes", len(d.buf)-d.off)
	}
	if d.err == nil && d.version == VersionHorizon && !d.used2 {
		d.fail("version %d message with no field of version %d", VersionHorizon, VersionHorizon)
	}
	if d.err == nil && d.version == VersionSketch && !d.used3 {
		d.fail("version %d message with no field of version %d", VersionSketch, VersionSketch)
	}
	return d.err
}

func (d *decoder) left() int { return len(d.buf) - d.off }

func (d *decoder) fixed(n int) []byte {
	if d.err != nil {
		return nil
	}
	if d.left() < n {
		d.fail("truncated: need %d bytes, have %d", n, d.left())
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) byte() byte {
	if b := d.fixed(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uint64le() uint64 {
	if b := d.fixed(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// uvarint reads a uvarint in shortest form.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	switch {
	case n == 0:
		d.fail("truncated uvarint")
		return 0
	case n < 0:
		d.fail("uvarint overflows 64 bits")
		return 0
	case n != uvarintLen(v):
		d.fail("uvarint not in shortest form")
		return 0
	}
	d.off += n
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// count reads a uvarint count of at most maxN items of at least minSize
// bytes each, so that it never promises more items than bytes are left.
func (d *decoder) count(maxN, minSize int, what string) int {
	v := d.uvarint()
	switch {
	case d.err != nil:
		return 0
	case v > uint64(maxN):
		d.fail("%d %s, at most %d", v, what, maxN)
		return 0
	case v*uint64(minSize) > uint64(d.left()):
		d.fail("truncated: %d %s need at least %d bytes, have %d", v, what, v*uint64(minSize), d.left())
		return 0
	}
	return int(v)
}

// bytes reads a uvarint length (minLen to maxLen) and that many bytes;
// the result's capacity ends with it, so appending to it cannot clobber
// what follows.
func (d *decoder) bytes(minLen, maxLen int, what string) []byte {
	v := d.uvarint()
	switch {
	case d.err != nil:
		return nil
	case v < uint64(minLen) || v > uint64(maxLen):
		d.fail("%s of %d bytes, want %d to %d", what, v, minLen, maxLen)
		return nil
	}
	b := d.fixed(int(v))
	return b[:len(b):len(b)]
}

func (d *decoder) string(minLen, maxLen int, what string) string {
	return string(d.bytes(minLen, maxLen, what))
}

func (d *decoder) digest() (g Digest) {
	copy(g[:], d.fixed(len(g)))
	return g
}

// flags reads a flags byte of which only allowed bits may be set, and
// the bits of v2 too in a message of version 2 or 3, and of v3 in one of
// version 3.
func (d *decoder) flags(allowed, v2, v3 byte) byte {
	if d.version >= VersionHorizon {
		allowed |= v2
	}
	if d.version >= VersionSketch {
		allowed |= v3
	}
	f := d.byte()
	if f&^allowed != 0 {
		d.fail("unknown flags %#x", f&^allowed)
		return 0
	}
	if f&v2 != 0 {
		d.used2 = true
	}
	if f&v3 != 0 {
		d.used3 = true
	}
	return f
}

// horizon reads a horizon: a uvarint, 1 to maxHorizon.
func (d *decoder) horizon() int64 {
	v := d.uvarint()
	if d.err == nil && (v == 0 || v > maxHorizon) {
		d.fail("horizon %d, want 1 to %d", v, uint64(maxHorizon))
		return 0
	}
	return int64(v)
}

func (d *decoder) repoRequest() RepoRequest {
	q := RepoRequest{Path: d.string(1, MaxPathLen, "repository path")}
	flags := d.flags(reqFlags, reqFlags2, reqFlags3)
	if flags&(reqSketch|reqDecoded) == reqDecoded {
		d.fail("decoded flag without a sketch")
	}
	q.Count = d.uvarint()
	q.Digest = d.digest()
	if flags&reqHorizon != 0 {
		q.Horizon = d.horizon()
	}
	if flags&reqResume != 0 {
		q.Resume = &Point{Epoch: d.uint64le(), Seq: d.uvarint()}
	}
	if flags&reqFilter != 0 {
		q.Filter = d.filter()
	}
	q.Repair = flags&reqRepair != 0
	if flags&reqSketch != 0 {
		q.Sketch = d.sketch(flags&reqDecoded != 0)
	}
	q.Commits = d.commits()
	q.Missing = d.ids(MaxMissing, "missing ids")
	return q
}

func (d *decoder) repoResponse() RepoResponse {
	p := RepoResponse{Path: d.string(1, MaxPathLen, "repository path")}
	if p.Status = Status(d.byte()); p.Status >= numStatus {
		d.fail("unknown status %d", p.Status)
	}
	if p.Status != StatusOK {
		p.Message = d.string(0, MaxReasonLen, "status message")
		return p
	}
	flags := d.flags(respFlags, respFlags2, respFlags3)
	p.Epoch = d.uint64le()
	p.Seq = d.uvarint()
	p.Count = d.uvarint()
	p.Digest = d.digest()
	if flags&respHorizon != 0 {
		p.Horizon = d.horizon()
	}
	if flags&respAtHorizon != 0 {
		p.AtHorizon = &SetSum{Count: d.uvarint(), Digest: d.digest()}
	}
	if flags&respFilter != 0 {
		p.Filter = d.filter()
	}
	if flags&respSymbols != 0 {
		p.Symbols = d.symbols()
	}
	p.More = flags&respMore != 0
	p.Commits = d.commits()
	p.Missing = d.ids(MaxMissing, "missing ids")
	n := d.count(MaxCommits, len(commit.ID{})+1, "rejections")
	for i := 0; i < n && d.err == nil; i++ {
		var rj Rejection
		copy(rj.ID[:], d.fixed(len(rj.ID)))
		rj.Reason = d.string(0, MaxReasonLen, "rejection reason")
		p.Rejected = append(p.Rejected, rj)
	}
	if flags&respHidden != 0 {
		// Canonical: the flag is set iff there are hidden ids.
		if p.Hidden = d.ids(MaxCommits, "hidden ids"); len(p.Hidden) == 0 {
			d.fail("hidden flag set with no hidden ids")
		}
	}
	if flags&respShallow != 0 {
		p.Shallow = d.shallow()
	}
	return p
}

// shallow reads a list of shallow roots: 1 to MaxCommits of (id,
// generation 1 to 2^32-1, depth 0 to 2^16-1, absent mask not 0).
func (d *decoder) shallow() []ShallowRoot {
	n := d.count(MaxCommits, len(commit.ID{})+3, "shallow roots")
	if n == 0 {
		d.fail("shallow flag set with no shallow roots")
		return nil
	}
	out := make([]ShallowRoot, n)
	for i := 0; i < n && d.err == nil; i++ {
		copy(out[i].ID[:], d.fixed(len(out[i].ID)))
		g, dp, ab := d.uvarint(), d.uvarint(), d.uvarint()
		switch {
		case d.err != nil:
		case g == 0 || g > 1<<32-1:
			d.fail("shallow root of generation %d, want 1 to %d", g, uint64(1<<32-1))
		case dp > 1<<16-1:
			d.fail("shallow root of delta depth %d, at most %d", dp, 1<<16-1)
		case ab == 0:
			d.fail("shallow root with no collected parent")
		}
		out[i].Gen, out[i].Depth, out[i].Absent = uint32(g), uint16(dp), ab
	}
	if d.err != nil {
		return nil
	}
	return out
}

// sketch reads a request's sketch: a key, then From (at most
// riblt.MaxIndex) and Ask (at most MaxSymbols) or, if decoded, 0 to
// MaxWant short ids.
func (d *decoder) sketch(decoded bool) *Sketch {
	k := &Sketch{Decoded: decoded}
	copy(k.Key[:], d.fixed(len(k.Key)))
	if !decoded {
		if k.From = d.uvarint(); d.err == nil && k.From > riblt.MaxIndex {
			d.fail("sketch from symbol %d, at most %d", k.From, uint64(riblt.MaxIndex))
		}
		if k.Ask = d.uvarint(); d.err == nil && k.Ask > MaxSymbols {
			d.fail("sketch asking %d symbols, at most %d", k.Ask, MaxSymbols)
		}
		return k
	}
	n := d.count(MaxWant, 4, "wanted short ids")
	if n > 0 {
		k.Want = make([]uint32, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		if b := d.fixed(4); b != nil {
			k.Want[i] = binary.LittleEndian.Uint32(b)
		}
	}
	return k
}

// symbols reads a run of 1 to MaxSymbols coded symbols.
func (d *decoder) symbols() *SymbolRun {
	b := d.bytes(1, maxRunBytes, "symbol run")
	if d.err != nil {
		return nil
	}
	start, syms, err := riblt.DecodeRun(b, nil)
	switch {
	case err != nil:
		d.fail("symbol run: %v", err)
		return nil
	case len(syms) == 0 || len(syms) > MaxSymbols:
		d.fail("%d symbols, want 1 to %d", len(syms), MaxSymbols)
		return nil
	}
	return &SymbolRun{Start: start, Symbols: syms}
}

func (d *decoder) filter() *Filter {
	var salt [SaltSize]byte
	copy(salt[:], d.fixed(SaltSize))
	k := int(d.byte())
	m := d.uvarint()
	switch {
	case d.err != nil:
		return nil
	case k < 1 || k > MaxFilterK:
		d.fail("filter with %d hash functions, want 1 to %d", k, MaxFilterK)
		return nil
	case m < 64 || m > MaxFilterBits:
		d.fail("filter of %d bits, want 64 to %d", m, MaxFilterBits)
		return nil
	}
	raw := d.fixed(int((m + 63) / 64 * 8))
	if raw == nil {
		return nil
	}
	if tail := m % 64; tail != 0 && binary.LittleEndian.Uint64(raw[len(raw)-8:])>>tail != 0 {
		d.fail("filter has bits set past its size")
		return nil
	}
	return filterFrom(salt, m, k, raw)
}

func (d *decoder) commits() [][]byte {
	n := d.count(MaxCommits, 2, "commits")
	var out [][]byte
	if n > 0 {
		out = make([][]byte, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.bytes(1, MaxCommitSize, "commit"))
	}
	return out
}

func (d *decoder) ids(maxN int, what string) []commit.ID {
	n := d.count(maxN, len(commit.ID{}), what)
	var out []commit.ID
	if n > 0 {
		out = make([]commit.ID, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		copy(out[i][:], d.fixed(len(out[i])))
	}
	return out
}
