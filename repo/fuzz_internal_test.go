package repo

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzRecordCommits feeds arbitrary record types and data to the decoder
// and the salvager:
// it must return stored commits or an error, never panic, and every stored
// commit it returns must load (or fail) without panicking.
func FuzzRecordCommits(f *testing.F) {
	f.Add([]byte{recCommit, storedFull, 1, 0})
	f.Add([]byte{recGroup, 2, 3, storedFull, 1, 2, 2, storedByOwner, 1})
	f.Add([]byte{recGroupZstd, 0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte{9})
	// A chunked group: a directory, then frames (groupchunk.go).
	chunk := groupChunk
	groupChunk = 256
	_, data := randomGroup(rand.New(rand.NewPCG(1, 1)), 12)
	f.Add(append([]byte{recGroupZstd}, chunkGroup(data)...))
	groupChunk = chunk
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return // framing never yields an empty payload
		}
		typ, data := payload[0], payload[1:]
		// What a directory lets this build decompress, a build that
		// predates it (one zstd stream) decompresses the same.
		if d, err := decompress(zdec, data, nil); err == nil {
			if old, err := zdec.DecodeAll(data, nil); err != nil || !bytes.Equal(d, old) {
				t.Fatalf("decompressed through the directory, but not the same as one stream: %v", err)
			}
		}
		for _, st := range salvageCommits(typ, data) {
			loadStored(st, [32]byte{1}, new([]byte))
		}
		stored, err := recordCommits(typ, data)
		if err != nil {
			return
		}
		var arena []byte
		owner := [32]byte{1}
		for _, st := range stored {
			loadStored(st, owner, &arena)
		}
		decodeRecord(typ, data, owner)
	})
}
