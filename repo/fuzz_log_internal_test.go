package repo

import (
	"testing"
)

// FuzzScanLog feeds arbitrary bytes after a header to the log scanner: it
// never panics, every record and damaged range lies inside the data and in
// order, no record starts at or after the end it reports, and every claim
// it keeps is at most its record's offset.
func FuzzScanLog(f *testing.F) {
	header := appendHeader(nil, logHeader{epoch: 1})
	rec := appendRecord(nil, recCommit, []byte{storedFull, 1, 2, 3}, HeaderSize)
	f.Add(rec)
	f.Add(appendMark(rec, HeaderSize+int64(len(rec))))
	f.Add(append(make([]byte, 100), rec...))
	f.Add(rec[:10])
	f.Fuzz(func(t *testing.T, tail []byte) {
		data := append(append([]byte{}, header...), tail...)
		for _, sc := range []scan{scanLog(data), scanLogV1(data)} {
			if sc.end < HeaderSize || sc.end > int64(len(data)) {
				t.Fatalf("end %d outside [%d, %d]", sc.end, HeaderSize, len(data))
			}
			last := int64(HeaderSize)
			for _, r := range sc.recs {
				if r.off < last || r.end > int64(len(data)) || r.off >= sc.end || r.claim > r.off {
					t.Fatalf("record [%d, %d) claim %d out of place (last %d, end %d)", r.off, r.end, r.claim, last, sc.end)
				}
				last = r.end
				salvageCommits(r.typ, r.data)
				recordCommits(r.typ, r.data)
			}
			for _, d := range sc.damage {
				if d.Offset < 0 || d.Length < 0 || d.Offset+d.Length > int64(len(data)) || d.Offset >= sc.end {
					t.Fatalf("damage %v out of place (end %d)", d, sc.end)
				}
			}
		}
	})
}

// FuzzParseQuarantine feeds arbitrary bytes to the quarantine file
// decoder: it never panics, and an entry it appends is read back.
func FuzzParseQuarantine(f *testing.F) {
	entry := appendQuarantineEntry(nil, quarantineMeta{Kind: "damage", Offset: 56, Length: 3, Reason: "x"}, []byte{1, 2, 3})
	f.Add(entry)
	f.Add(append(entry, appendQuarantineEntry(nil, quarantineMeta{Kind: "resolved"}, nil)...))
	f.Add(entry[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		qs := parseQuarantine(data, "q")
		more := parseQuarantine(append(append([]byte{}, data...), entry...), "q")
		// A whole entry after data is read unless data ends in a torn
		// entry, which stops the reading.
		if len(more) > len(qs)+1 {
			t.Fatalf("%d entries, then %d after appending one", len(qs), len(more))
		}
	})
}
