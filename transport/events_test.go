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
		func() error {
			return w.ChangedWith(syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 45},
				syncproto.Point{Epoch: 123456789, Seq: 43}, [][]byte{[]byte("one"), []byte("two!")})
		},
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
		{Type: transport.EventChanged, Notice: syncproto.Notice{Repo: "/data/tasks", Epoch: 123456789, Seq: 45},
			From: syncproto.Point{Epoch: 123456789, Seq: 43}, Commits: [][]byte{[]byte("one"), []byte("two!")}},
	}
	if !equalEvents(got, want) {
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
		"event: changed\ndata: {\"repo\":\"/data/tasks\",\"epoch\":\"00000000075bcd15\",\"seq\":43}\n\n" +
		"event: changed\ndata: {\"repo\":\"/data/tasks\",\"epoch\":\"00000000075bcd15\",\"seq\":45}\n" +
		"from: 00000000075bcd15 43\ncommits: A29uZQR0d28h\n\n"
	if got := string(serverStream(t)); got != want {
		t.Errorf("wrote\n%s\nwant\n%s", got, want)
	}
}

func TestEventsReader(t *testing.T) {
	long := "data: " + strings.Repeat("x", transport.MaxEventLine) + "\n\n"
	notice := syncproto.Notice{Repo: "/a/b", Epoch: 1, Seq: 3}
	changed := "event: changed\ndata: {\"repo\":\"/a/b\",\"epoch\":\"0000000000000001\",\"seq\":3}\n"
	tooMany := strings.Repeat("commits: "+strings.Repeat("A", 1024)+"\n", (transport.MaxEventCommits*3/2)/1024)
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
		{name: "commits", in: changed + "from: 0000000000000001 2\ncommits: A29u\ncommits: ZQ\n\n",
			want: []transport.Event{{Type: transport.EventChanged, Notice: notice, From: syncproto.Point{Epoch: 1, Seq: 2}, Commits: [][]byte{[]byte("one")}}}},
		{name: "commits lines ignored elsewhere", in: "event: other\nfrom: x\ncommits: !\n\n", want: []transport.Event{{Type: "other"}}},
		{name: "from without commits", in: changed + "from: 0000000000000001 2\n\n", wantErr: syncproto.ErrMalformed},
		{name: "commits without from", in: changed + "commits: A29uZQ\n\n", wantErr: syncproto.ErrMalformed},
		{name: "bad from", in: changed + "from: 1 2\ncommits: A29uZQ\n\n", wantErr: syncproto.ErrMalformed},
		{name: "from with a leading zero", in: changed + "from: 0000000000000001 02\ncommits: A29uZQ\n\n", wantErr: syncproto.ErrMalformed},
		{name: "bad base64", in: changed + "from: 0000000000000001 2\ncommits: A29uZQ==\n\n", wantErr: syncproto.ErrMalformed},
		{name: "frame past the end", in: changed + "from: 0000000000000001 2\ncommits: BG9uZQ\n\n", wantErr: syncproto.ErrMalformed},
		{name: "empty frame", in: changed + "from: 0000000000000001 2\ncommits: AA\n\n", wantErr: syncproto.ErrMalformed},
		{name: "empty commits", in: changed + "from: 0000000000000001 2\ncommits:\n\n", wantErr: syncproto.ErrMalformed},
		{name: "too many commit bytes", in: changed + "from: 0000000000000001 2\n" + tooMany + "\n", wantErr: syncproto.ErrMalformed},
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
			if !equalEvents(got, tt.want) {
				t.Errorf("read %+v, want %+v", got, tt.want)
			}
		})
	}
}

// equalEvents reports whether two lists of events are the same.
func equalEvents(a, b []transport.Event) bool {
	return slices.EqualFunc(a, b, func(x, y transport.Event) bool {
		return x.Type == y.Type && x.Notice == y.Notice && x.From == y.From &&
			slices.EqualFunc(x.Commits, y.Commits, bytes.Equal)
	})
}

// TestEventsCommitsOldReaders: a changed event with commits is, to a
// reader that ignores the lines it does not know (every reader before
// commits in events), the bare notice Changed writes; and each of its
// lines fits MaxEventLine.
func TestEventsCommitsOldReaders(t *testing.T) {
	n := syncproto.Notice{Repo: "/data/tasks", Epoch: 7, Seq: 9}
	big := bytes.Repeat([]byte{0xfe}, 50_000)
	var with, bare bytes.Buffer
	if err := transport.NewEventWriter(&with).ChangedWith(n, syncproto.Point{Epoch: 7, Seq: 8}, [][]byte{big, []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := transport.NewEventWriter(&bare).Changed(n); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.SplitAfter(with.String(), "\n") {
		if len(line) > transport.MaxEventLine {
			t.Fatalf("a line of %d bytes", len(line))
		}
		if !strings.HasPrefix(line, "from:") && !strings.HasPrefix(line, "commits:") {
			kept = append(kept, line)
		}
	}
	if got := strings.Join(kept, ""); got != bare.String() {
		t.Errorf("without the new lines:\n%q\nwant\n%q", got, bare.String())
	}
	got, err := readAll(&with)
	if err != nil || len(got) != 1 || len(got[0].Commits) != 2 || !bytes.Equal(got[0].Commits[0], big) {
		t.Fatalf("read back %d events (%v)", len(got), err)
	}
}

// TestEventsWriterBounds: the writer refuses what readers would.
func TestEventsWriterBounds(t *testing.T) {
	n := syncproto.Notice{Repo: "/a/b", Epoch: 1, Seq: 2}
	tests := []struct {
		name    string
		commits [][]byte
		wantErr error
	}{
		{"too many bytes", [][]byte{make([]byte, transport.MaxEventCommits+1)}, syncproto.ErrTooLarge},
		{"too many commits", slices.Repeat([][]byte{{1}}, transport.MaxEventCommits*3/5), syncproto.ErrTooLarge},
		{"empty commit", [][]byte{{}}, syncproto.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := transport.NewEventWriter(&b).ChangedWith(n, syncproto.Point{Epoch: 1, Seq: 1}, tt.commits)
			if !errors.Is(err, tt.wantErr) || b.Len() != 0 {
				t.Errorf("error %v, wrote %d bytes; want %v and nothing", err, b.Len(), tt.wantErr)
			}
		})
	}
	var b bytes.Buffer
	max := [][]byte{make([]byte, transport.MaxEventCommits/2), make([]byte, transport.MaxEventCommits/2)}
	if err := transport.NewEventWriter(&b).ChangedWith(n, syncproto.Point{Epoch: 1, Seq: 1}, max); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(&b); err != nil || len(got) != 1 {
		t.Fatalf("%d events at the bound: %v", len(got), err)
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
	f.Add([]byte("event: changed\ndata: {\"repo\":\"/a/b\",\"epoch\":\"0000000000000001\",\"seq\":3}\nfrom: 0000000000000001 2\ncommits: A29u\ncommits: ZQJ4eQ\n\n"))
	f.Add([]byte("event: changed\ndata: {\"repo\":\"/a/b\",\"epoch\":\"0000000000000001\",\"seq\":3}\ncommits: AA\n\n"))
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
				err = w.ChangedWith(ev.Notice, ev.From, ev.Commits)
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
		if err != nil || !equalEvents(again, want) {
			t.Fatalf("read %+v from %q, written again and read %+v (%v)", want, in, again, err)
		}
	})
}
