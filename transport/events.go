package transport

import (
	"bufio"
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

// Event is one event of the stream.
type Event struct {
	// Type is EventChanged, EventReady, another type a later version may
	// send (to be ignored), or "" for a block without an event field: a
	// keep-alive, or the retry field that opens a stream.
	Type string
	// Notice is the repository's position, for EventChanged.
	Notice syncproto.Notice
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
func (er *EventReader) Next() (Event, error) {
	var event, data string
	for {
		line, err := er.readLine()
		if err != nil {
			return Event{}, err
		}
		switch {
		case line == "":
			ev := Event{Type: event}
			if event == EventChanged {
				if ev.Notice, err = syncproto.DecodeNotice([]byte(data)); err != nil {
					return Event{}, err
				}
			}
			return ev, nil
		case strings.HasPrefix(line, ":"): // a comment: keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimPrefix(line[len("data:"):], " ")
		}
	}
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
