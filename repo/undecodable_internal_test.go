package repo

import (
	"crypto/ed25519"
	"os"
	"testing"
)

// TestSoundRecordThatDoesNotDecode: a record whose checksums hold but
// whose commit does not decode (bytes no goatdb wrote) is damage like any
// other: quarantined by a writable open, reported by a read-only one,
// never dropped in silence.
func TestSoundRecordThatDoesNotDecode(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	log := appendHeader(nil, logHeader{epoch: 3})
	off := int64(len(log))
	log = appendRecord(log, recCommit, []byte{storedFull, 0xde, 0xad}, off)
	log = appendMark(log, int64(len(log)))

	ro, _ := recoverOpen(t, log, Options{Key: key, ReadOnly: true})
	if d := ro.Damage(); len(d) != 1 || d[0].Offset != off {
		t.Errorf("read-only Damage = %v, want the record at %d", d, off)
	}
	r, path := recoverOpen(t, log, Options{Key: key})
	if q := r.Quarantine(); len(q) != 1 || q[0].Offset != off {
		t.Fatalf("Quarantine = %v, want the record at %d", q, off)
	}
	if _, err := os.Stat(path + ".quarantine"); err != nil {
		t.Fatal(err)
	}
	if ps := r.Check(); len(ps) != 1 || ps[0].Offset != off {
		t.Errorf("Check = %v, want the quarantined record", ps)
	}
}
