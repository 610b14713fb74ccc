package raftstore

// White-box tests of the codecs: decoders never panic on any input, and
// what they accept encodes back to the same bytes.

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func seedLogs() [][]*raft.Log {
	return [][]*raft.Log{
		{{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("config")}},
		{{Index: 7, Term: 2, Data: []byte("a"), Extensions: []byte("ext"), AppendedAt: time.Unix(1_700_000_000, 5)},
			{Index: 9, Term: 3, Type: raft.LogNoop}},
		{{Index: 1 << 60, AppendedAt: time.Date(10000, 1, 1, 0, 0, 0, 999_999_999, time.UTC)}},
	}
}

// pointers returns pointers to the elements of logs.
func pointers(logs []raft.Log) []*raft.Log {
	ps := make([]*raft.Log, len(logs))
	for i := range logs {
		ps[i] = &logs[i]
	}
	return ps
}

func FuzzDecode(f *testing.F) {
	for _, logs := range seedLogs() {
		f.Add(appendFrame(nil, 0, logs[0].Index-1, logs)[frameHeader:])
	}
	f.Add([]byte{})
	f.Add(make([]byte, bodyHeader+entryHeader))
	f.Fuzz(func(t *testing.T, body []byte) {
		prev, logs, err := decodeBody(body)
		if err != nil {
			return
		}
		// The body is the one encoding of what it decodes to.
		frame := appendFrame(nil, 0, prev, pointers(logs))
		if !bytes.Equal(frame[frameHeader:], body) {
			t.Fatalf("decode then encode changed the body:\n%x\n%x", body, frame[frameHeader:])
		}
		if _, _, ok := readFrame(frame, 0, 0); !ok {
			t.Fatal("a frame just encoded does not read back")
		}
	})
}

func FuzzDecodeStable(f *testing.F) {
	f.Add(encodeStable(map[string][]byte{}))
	f.Add(encodeStable(map[string][]byte{"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 3}, "LastVoteCand": []byte("n1"), "": {}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		kv, err := decodeStable(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeStable(kv), b) {
			t.Fatalf("decode then encode changed the stable file %x", b)
		}
	})
}

func TestZeroTime(t *testing.T) {
	frame := appendFrame(nil, 0, 0, []*raft.Log{{Index: 1}})
	_, logs, err := decodeBody(frame[frameHeader:])
	if err != nil {
		t.Fatal(err)
	}
	if logs[0].AppendedAt != (time.Time{}) {
		t.Fatalf("the zero time decodes as %v", logs[0].AppendedAt)
	}
}

// TestDecodeAliasing checks that appending to a decoded entry's data
// cannot overwrite the entry after it.
func TestDecodeAliasing(t *testing.T) {
	frame := appendFrame(nil, 0, 0, []*raft.Log{{Index: 1, Data: []byte("a")}, {Index: 2, Data: []byte("b")}})
	_, logs, err := decodeBody(frame[frameHeader:])
	if err != nil {
		t.Fatal(err)
	}
	_ = append(logs[0].Data, 'X')
	if logs[1].Index != 2 || string(logs[1].Data) != "b" {
		t.Fatalf("appending to entry 1's data changed entry 2: %+v", logs[1])
	}
}
