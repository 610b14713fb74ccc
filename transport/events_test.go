package transport_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
)

// serverStream is what a server writes: the retry, a listing, ready, a
// keep-alive and a change.
func serverStream(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	w := transport.NewEventWriter(&b)
	steps := []func() error{
		func() error { return w.Retry(2 * time.Second) },
		func() error { return w.Changed(syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 42}) },
		func() error { return w.Changed(syncproto.Notice{Repo: "/sys/sessions", Epoch: 1, Seq: 0}) },
		w.Ready,
		w.KeepAlive,
		func() error { return w.Changed(syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 43}) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// readAll reads events until the stream ends or fails.
func readAll(r io.Reader) ([]transport.Event, error) {
	er := transport.NewEventReader(r)
	var out []transport.Event
	for {
		ev, err := er.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
		out = append(out, ev)
	}
}

func TestEventsRoundTrip(t *testing.T) {
	got, err := readAll(bytes.NewReader(serverStream(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := []transport.Event{
		{},
		{Type: transport.EventChanged, Notice: syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 42}},
		{Type: transport.EventChanged, Notice: syncproto.Notice{Repo: "/sys/sessions", Epoch: 1}},
		{Type: transport.EventReady},
		{},
		{Type: transport.EventChanged, Notice: syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 43}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("read %+v\nwant %+v", got, want)
	}
}

// TestEventsServerBytes pins what the writer writes: the package doc
// draws it.
func TestEventsServerBytes(t *testing.T) {
	want := "retry: 2000\n\n" +
		"event: changed\ndata: {\"repo\":\"/data/tasks\",\"epoch\":\"00000000075bcd15\",\"seq\":42}\n\n" +
		"event: changed\ndata: {\"repo\":\"/sys/sessions\",\"epoch\":\"0000000000000001\",\"seq\":0}\n\n" +
		"event: ready\ndata: {}\n\n" +
		": keep-alive\n\n" +
		"event: changed\ndata: {\"repo\":\"/data/tasks\",\"epoch\":\"00000000075bcd15\",\"seq\":43}\n\n"
	if got := string(serverStream(t)); got != want {
		t.Errorf("wrote\n%s\nwant\n%s", got, want)
	}
}

func TestEventsReader(t *testing.T) {
	long := "data: " + strings.Repeat("x", transport.MaxEventLine) + "\n\n"
	tests := []struct {
		name    string
		in      string
		want    []transport.Event
		wantErr error // nil: ends with EOF
		anyErr  bool
	}{
		{name: "crlf", in: "event: ready\r\ndata: {}\r\n\r\n", want: []transport.Event{{Type: transport.EventReady}}},
		{name: "unknown type and fields", in: "id: 7\nevent: other\ndata: x\n\n", want: []transport.Event{{Type: "other"}}},
		{name: "later fields win", in: "event: other\nevent:ready\n\n", want: []transport.Event{{Type: transport.EventReady}}},
		{name: "bad notice", in: "event: changed\ndata: {\"repo\":\"x\"}\n\n", wantErr: syncproto.ErrMalformed},
		{name: "changed without data", in: "event: changed\n\n", wantErr: syncproto.ErrMalformed},
		{name: "line too long", in: long, anyErr: true},
		{name: "cut short", in: "event: ready\ndata: {}", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tt.in))
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			case tt.anyErr && err == nil:
				t.Error("no error")
			case tt.wantErr == nil && !tt.anyErr && err != nil:
				t.Errorf("error %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("read %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestEventsLineBound: a line of MaxEventLine bytes with its line ending
// is read; one byte more is refused.
func TestEventsLineBound(t *testing.T) {
	for _, extra := range []int{0, 1} {
		line := ":" + strings.Repeat("x", transport.MaxEventLine-2+extra) + "\n"
		_, err := readAll(strings.NewReader(line + "\n"))
		if (err != nil) != (extra == 1) {
			t.Errorf("a line of %d bytes: %v", len(line), err)
		}
	}
}

// FuzzEventReader: the reader never panics, and what it reads, written
// again by the writer, reads back the same.
func FuzzEventReader(f *testing.F) {
	f.Add(serverStream(f))
	f.Add([]byte("event: ready\r\ndata: {}\r\n\r\n: keep-alive\r\n\r\n"))
	f.Add([]byte("event: changed\ndata: {\"repo\":\"/a/b\",\"epoch\":\"0000000000000001\",\"seq\":1}\n\n"))
	f.Add([]byte("event: changed\ndata: {\"repo\":\"/a/b\"}\n\n"))
	f.Add([]byte("event: other\nid: 1\ndata: x\n\nevent:changed\n"))
	f.Add([]byte("data: " + strings.Repeat("y", transport.MaxEventLine) + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, _ := readAll(bytes.NewReader(in))
		var b bytes.Buffer
		bw := bufio.NewWriter(&b)
		w := transport.NewEventWriter(bw)
		var want []transport.Event
		for _, ev := range got {
			var err error
			switch ev.Type {
			case transport.EventChanged:
				err = w.Changed(ev.Notice)
			case transport.EventReady:
				err = w.Ready()
			case "":
				err = w.KeepAlive()
			default:
				continue
			}
			if err != nil {
				t.Fatalf("write %+v read from %q: %v", ev, in, err)
			}
			want = append(want, ev)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := readAll(&b)
		if err != nil || !slices.Equal(again, want) {
			t.Fatalf("read %+v from %q, written again and read %+v (%v)", want, in, again, err)
		}
	})
}
