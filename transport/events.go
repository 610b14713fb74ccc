package transport

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/goatdb/goatdb/syncproto"
)

// The event types of the stream (see the package doc).
const (
	// EventChanged carries a repository's position (syncproto.Notice).
	EventChanged = "changed"
	// EventReady ends the listing that opens a stream.
	EventReady = "ready"
)

// MaxEventLine bounds one line of the event stream, its line ending
// included: a notice of syncproto.MaxNoticeSize bytes and its "data: "
// prefix fit. A reader refuses longer lines, so a peer cannot make it
// buffer more.
const MaxEventLine = syncproto.MaxNoticeSize + 16

// EventsContentType is the media type of the event stream.
const EventsContentType = "text/event-stream"

// MaxEventCommits bounds the commit bytes of one event (the sum of the
// commits' encodings, before base64): a reader refuses an event with more,
// so a peer cannot make it buffer more. A server's own bound is at most
// this.
const MaxEventCommits = 1 << 20

// commitsLine is how many base64 characters a "commits:" line carries at
// most, so that the line fits MaxEventLine.
const commitsLine = 1024

// maxFrames bounds the framed commits of one event (each commit after
// its length), and maxCommitsText their base64 text.
const maxFrames = MaxEventCommits + MaxEventCommits/8

var maxCommitsText = base64.RawStdEncoding.EncodedLen(maxFrames)

// Event is one event of the stream.
type Event struct {
	// Type is EventChanged, EventReady, another type a later version may
	// send (to be ignored), or "" for a block without an event field: a
	// keep-alive, or the retry field that opens a stream.
	Type string
	// Notice is the repository's position, for EventChanged.
	Notice syncproto.Notice
	// From and Commits, for an EventChanged that carries commits (Commits
	// is not empty): the encodings of every commit the receiver may read
	// written after position From up to Notice's position, in log order.
	From    syncproto.Point
	Commits [][]byte
}

// EventWriter writes the event stream. Its methods write whole events;
// errors of the underlying writer are returned as they come (a
// bufio.Writer keeps them until Flush). It is not safe for concurrent
// use.
type EventWriter struct {
	w io.Writer
}

// NewEventWriter returns an EventWriter writing to w.
func NewEventWriter(w io.Writer) *EventWriter { return &EventWriter{w: w} }

// Retry writes the reconnection delay a browser's EventSource uses;
// goatdb's readers ignore it.
func (w *EventWriter) Retry(d time.Duration) error {
	_, err := io.WriteString(w.w, "retry: "+strconv.FormatInt(d.Milliseconds(), 10)+"\n\n")
	return err
}

// Changed writes a "changed" event with the notice. A notice that does not
// encode (syncproto.EncodeNotice) is an error and writes nothing.
func (w *EventWriter) Changed(n syncproto.Notice) error {
	data, err := syncproto.EncodeNotice(n)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w.w, "event: "+EventChanged+"\ndata: "+string(data)+"\n\n")
	return err
}

// ChangedWith writes a "changed" event with the notice that also carries
// the commits written since position from (see Event). With no commits it
// is Changed. Commits of more than MaxEventCommits bytes, or an empty
// commit, are an error and write nothing.
func (w *EventWriter) ChangedWith(n syncproto.Notice, from syncproto.Point, commits [][]byte) error {
	if len(commits) == 0 {
		return w.Changed(n)
	}
	data, err := syncproto.EncodeNotice(n)
	if err != nil {
		return err
	}
	size := 0
	for _, c := range commits {
		if len(c) == 0 {
			return fmt.Errorf("%w: an empty commit in an event", syncproto.ErrMalformed)
		}
		size += len(c)
	}
	if size > MaxEventCommits {
		return fmt.Errorf("%w: %d commit bytes in an event, over %d", syncproto.ErrTooLarge, size, MaxEventCommits)
	}
	frames := make([]byte, 0, size+len(commits)*binary.MaxVarintLen32)
	for _, c := range commits {
		frames = binary.AppendUvarint(frames, uint64(len(c)))
		frames = append(frames, c...)
	}
	if len(frames) > maxFrames {
		return fmt.Errorf("%w: %d commits of %d bytes in an event: too many", syncproto.ErrTooLarge, len(commits), size)
	}
	text := base64.RawStdEncoding.EncodeToString(frames)
	var b strings.Builder
	b.Grow(len(text) + len(text)/commitsLine*10 + len(data) + 64)
	b.WriteString("event: " + EventChanged + "\ndata: " + string(data) + "\n")
	b.WriteString("from: " + formatPoint(from) + "\n")
	for len(text) > 0 {
		k := min(len(text), commitsLine)
		b.WriteString("commits: " + text[:k] + "\n")
		text = text[k:]
	}
	b.WriteString("\n")
	_, err = io.WriteString(w.w, b.String())
	return err
}

// formatPoint writes a position as a "from:" line carries it.
func formatPoint(p syncproto.Point) string {
	return fmt.Sprintf("%016x %d", p.Epoch, p.Seq)
}

// parsePoint reads what formatPoint writes, and only that.
func parsePoint(s string) (syncproto.Point, error) {
	e, q, ok := strings.Cut(s, " ")
	epoch, err1 := strconv.ParseUint(e, 16, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	p := syncproto.Point{Epoch: epoch, Seq: seq}
	if !ok || err1 != nil || err2 != nil || formatPoint(p) != s {
		return syncproto.Point{}, fmt.Errorf("%w: event position %q: want 16 lowercase hex digits, a space and a decimal number", syncproto.ErrMalformed, s)
	}
	return p, nil
}

// parseCommits decodes the text of an event's "commits:" lines.
func parseCommits(text string) ([][]byte, error) {
	frames, err := base64.RawStdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: event commits: %v", syncproto.ErrMalformed, err)
	}
	var out [][]byte
	size := 0
	for len(frames) > 0 {
		n, k := binary.Uvarint(frames)
		if k <= 0 || n == 0 || n > uint64(len(frames)-k) {
			return nil, fmt.Errorf("%w: event commits: bad frame", syncproto.ErrMalformed)
		}
		out = append(out, frames[k:k+int(n)])
		frames = frames[k+int(n):]
		size += int(n)
	}
	if size > MaxEventCommits {
		return nil, fmt.Errorf("%w: %d commit bytes in an event, over %d", syncproto.ErrMalformed, size, MaxEventCommits)
	}
	return out, nil
}

// Ready writes the "ready" event that ends a stream's opening listing.
func (w *EventWriter) Ready() error {
	_, err := io.WriteString(w.w, "event: "+EventReady+"\ndata: {}\n\n")
	return err
}

// KeepAlive writes a comment, which readers count as a sign of life.
func (w *EventWriter) KeepAlive() error {
	_, err := io.WriteString(w.w, ": keep-alive\n\n")
	return err
}

// EventReader reads the event stream. It is not safe for concurrent use.
type EventReader struct {
	r  io.Reader
	br *bufio.Reader
}

// NewEventReader returns an EventReader reading from r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{r: r, br: bufio.NewReaderSize(r, 4096)}
}

// Next returns the next event: the fields read up to the next blank line.
// A "changed" event whose data is not a notice is an error wrapping
// syncproto.ErrMalformed; any other error (a line over MaxEventLine
// bytes, the end of the stream or a failed read) is the reader's.
//
// A "changed" event with commits has a "from:" line and "commits:" lines,
// or neither: one without the other, a position or commits that do not
// parse, and commits over MaxEventCommits bytes are errors wrapping
// syncproto.ErrMalformed. The other types ignore both lines.
func (er *EventReader) Next() (Event, error) {
	var event, data, from string
	var text strings.Builder
	hasFrom, hasCommits := false, false
	for {
		line, err := er.readLine()
		if err != nil {
			return Event{}, err
		}
		switch {
		case line == "":
			if event != EventChanged {
				return Event{Type: event}, nil
			}
			return changedEvent(data, from, hasFrom, hasCommits, text.String())
		case strings.HasPrefix(line, ":"): // a comment: keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimPrefix(line[len("data:"):], " ")
		case strings.HasPrefix(line, "from:"):
			from, hasFrom = strings.TrimPrefix(line[len("from:"):], " "), true
		case strings.HasPrefix(line, "commits:"):
			hasCommits = true
			if text.Len() <= maxCommitsText { // past it, the event is refused
				text.WriteString(strings.TrimPrefix(line[len("commits:"):], " "))
			}
		}
	}
}

// changedEvent makes the "changed" event of the fields read.
func changedEvent(data, from string, hasFrom, hasCommits bool, text string) (Event, error) {
	ev := Event{Type: EventChanged}
	var err error
	if ev.Notice, err = syncproto.DecodeNotice([]byte(data)); err != nil {
		return Event{}, err
	}
	switch {
	case !hasFrom && !hasCommits:
		return ev, nil
	case hasFrom != hasCommits:
		return Event{}, fmt.Errorf("%w: event of %s: a from line needs commits lines, and commits a from line", syncproto.ErrMalformed, ev.Notice.Repo)
	case len(text) > maxCommitsText:
		return Event{}, fmt.Errorf("%w: event of %s: commits over %d bytes", syncproto.ErrMalformed, ev.Notice.Repo, MaxEventCommits)
	}
	if ev.From, err = parsePoint(from); err != nil {
		return Event{}, err
	}
	if ev.Commits, err = parseCommits(text); err != nil {
		return Event{}, err
	}
	if len(ev.Commits) == 0 {
		return Event{}, fmt.Errorf("%w: event of %s: empty commits lines", syncproto.ErrMalformed, ev.Notice.Repo)
	}
	return ev, nil
}

// Close closes the reader NewEventReader was given, if it is an
// io.Closer.
func (er *EventReader) Close() error {
	if c, ok := er.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// readLine reads one line of at most MaxEventLine bytes, and returns it
// without its line ending.
func (er *EventReader) readLine() (string, error) {
	var sb strings.Builder
	for {
		frag, err := er.br.ReadSlice('\n')
		sb.Write(frag)
		if sb.Len() > MaxEventLine {
			return "", fmt.Errorf("event line over %d bytes", MaxEventLine)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return "", err
		}
		return strings.TrimRight(sb.String(), "\r\n"), nil
	}
}
