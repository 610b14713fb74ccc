package repo

import (
	"crypto/rand"
	"testing"
)

// TestHorizonRecordRoundTrip encodes horizon records, usual and unusual
// entries, one record and a list split over several, and decodes them
// back; and refuses malformed ones.
func TestHorizonRecordRoundTrip(t *testing.T) {
	defer func(n int) { horizonChunk = n }(horizonChunk)
	horizonChunk = 4
	for _, n := range []int{0, 1, 3, 4, 9} {
		list := make([]listed, n)
		want := map[idPrefix]shallowEntry{}
		for i := range list {
			rand.Read(list[i].prefix[:])
			e := shallowEntry{gen: uint32(1 + i%300), absent: allParents}
			if i%3 == 1 {
				e.depth, e.absent = uint16(i%maxChain), 1<<(i%5)
			}
			list[i].shallowEntry = e
			want[list[i].prefix] = e
		}
		b := appendHorizonRecords(nil, 1_700_000_000_000, 42, list)
		s := scanLog(append(make([]byte, HeaderSize), b...))
		var hi horizonInfo
		for _, rec := range s.recs {
			if rec.typ != recHorizon || rec.bad {
				t.Fatalf("%d entries: record %+v", n, rec)
			}
			if err := decodeHorizon(rec.data, &hi); err != nil {
				t.Fatalf("%d entries: %v", n, err)
			}
		}
		if wantRecs := max(1, (n+horizonChunk-1)/horizonChunk); len(s.recs) != wantRecs {
			t.Errorf("%d entries in %d records, want %d", n, len(s.recs), wantRecs)
		}
		if hi.horizon != 1_700_000_000_000 || hi.prevEpoch != 42 || len(hi.shallow) != len(want) {
			t.Fatalf("%d entries: decoded horizon %d, epoch %d, %d entries", n, hi.horizon, hi.prevEpoch, len(hi.shallow))
		}
		for p, e := range want {
			if hi.shallow[p] != e {
				t.Fatalf("entry %x: %+v, want %+v", p, hi.shallow[p], e)
			}
		}
		if n == 1 {
			// The usual entry: a prefix and one byte.
			if size := len(b) - recHeadSize - 18; size != horizonPrefix+1 {
				t.Errorf("a full snapshot with its parents collected takes %d bytes, want %d", size, horizonPrefix+1)
			}
		}
	}

	good := appendHorizonRecords(nil, 5, 6, []listed{{shallowEntry: shallowEntry{gen: 3, absent: allParents}}})[recHeadSize:]
	for name, data := range map[string][]byte{
		"empty":        nil,
		"version":      append([]byte{9}, good[1:]...),
		"cut":          good[:len(good)-1],
		"trailing":     append(append([]byte{}, good...), 0),
		"generation 0": append(append([]byte{}, good[:len(good)-1]...), 0),
		"count":        append(append(append([]byte{}, good[:17]...), 50), good[18:]...),
	} {
		var hi horizonInfo
		if err := decodeHorizon(data, &hi); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	var hi horizonInfo
	if err := decodeHorizon(good, &hi); err != nil {
		t.Fatal(err)
	}
	other := appendHorizonRecords(nil, 7, 6, nil)[recHeadSize:]
	if err := decodeHorizon(other, &hi); err == nil {
		t.Error("records that disagree on the horizon decoded")
	}
}
