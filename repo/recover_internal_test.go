package repo

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

func recoverSet(key, field string, v item.Value) Update {
	return Update{Key: key, Fn: func(c Current) (item.Item, commit.Schema, error) {
		return c.Value.With(field, v), c.Schema, nil
	}}
}

// recoverOpen writes data to a new log file and opens it.
func recoverOpen(t *testing.T, data []byte, opts Options) (*Repo, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, &opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// TestTornLaterPageKept is finding 3: a group of writes synced together
// is torn so that a later page reached the disk and an earlier one did not
// (zeros up to a 4 KiB boundary, then valid records). Recovery keeps the
// prefix that was synced before, does not resurrect the records after the
// zeros, reports no damage, and Check passes. Under Async this keeps a
// prefix of each writer's writes; under Sync the torn writes are those
// whose fsync never returned, so none of them reappears.
func TestTornLaterPageKept(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(t.TempDir(), "src.log")
	r, err := Open(path, &Options{Key: key, Durability: Async, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := r.Write(recoverSet(string(rune('a'+i)), "v", item.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	ackEnd := int(r.LogSize()) // the file reaches into reserved space
	// One batch of writes, framed while only ackEnd bytes were durable.
	big := strings.Repeat("x", 300)
	for i := range 60 {
		if _, err := r.Write(recoverSet("w"+string(rune('a'+i%26))+string(rune('a'+i/26)), "v", item.String(big+string(rune(i))))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	full = full[:r.LogSize()] // not the space reserved past the log
	r.Close()
	boundary := (ackEnd/4096 + 1) * 4096
	if boundary+1000 > len(full) {
		t.Fatalf("batch too small: log %d bytes, boundary %d", len(full), boundary)
	}
	for _, shape := range []struct {
		name  string
		image []byte
	}{
		{"earlier page lost", append(append(slices.Clone(full[:ackEnd]), make([]byte, boundary-ackEnd)...), full[boundary:]...)},
		{"two pages lost", append(append(slices.Clone(full[:ackEnd]), make([]byte, boundary+4096-ackEnd)...), full[boundary+4096:]...)},
		{"middle page lost", append(append(slices.Clone(full[:boundary]), make([]byte, 4096)...), full[boundary+4096:]...)},
	} {
		for _, ro := range []bool{true, false} {
			t.Run(shape.name+map[bool]string{true: "/readonly", false: ""}[ro], func(t *testing.T) {
				got, path := recoverOpen(t, shape.image, Options{Key: key, ReadOnly: ro})
				if ps := got.Check(); ps != nil {
					t.Fatalf("Check after recovery: %v", ps)
				}
				if d, q := got.Damage(), got.Quarantine(); len(d) > 0 || len(q) > 0 {
					t.Fatalf("torn write reported as damage %v / quarantine %v", d, q)
				}
				for i := range 5 {
					if v, _, ok := got.Get(string(rune('a' + i))); !ok || !item.ItemsEqual(v, item.Item{}.With("v", item.Int(int64(i)))) {
						t.Errorf("acknowledged item %c lost", 'a'+i)
					}
				}
				// A prefix of the batch: once one write is missing, no
				// later one is there.
				gap := false
				for i := range 60 {
					_, _, ok := got.Get("w" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
					if ok && gap {
						t.Fatalf("write %d survived after an earlier one was lost: not a prefix", i)
					}
					gap = gap || !ok
				}
				if !gap {
					t.Fatalf("every torn write survived")
				}
				if ro {
					if b, _ := os.ReadFile(path); !bytes.Equal(b, shape.image) {
						t.Errorf("a read-only open changed the file")
					}
				}
			})
		}
	}
}

// TestSmuggledRecord is the attack of finding 3: a peer sends a signed
// commit whose content holds the bytes of a valid record, itself holding
// an unsigned commit stored as the log owner's. Tearing the outer record
// (its head lost) must never make recovery take the inner one as the
// owner's: it is refused, whether the tear is a torn tail or damage that
// later records claim.
func TestSmuggledRecord(t *testing.T) {
	_, serverKey, _ := ed25519.GenerateKey(nil)
	_, attackerKey, _ := ed25519.GenerateKey(nil)
	var serverSession, attackerSession commit.SessionID
	copy(serverSession[:], serverKey.Public().(ed25519.PublicKey))
	copy(attackerSession[:], attackerKey.Public().(ed25519.PublicKey))

	// The inner record, framed as the server would frame its own commit,
	// with a claim of 0 so that any offset accepts it. Strings must be
	// UTF-8, so the attacker varies a nonce until the record's bytes, after
	// a lead byte that makes its first magic byte a valid sequence, are.
	var fake *commit.Commit
	var inner []byte
	for nonce := 0; ; nonce++ {
		f, err := commit.New(commit.Fields{Key: "admin", Time: 1, Session: serverSession, Full: true,
			Value: item.Item{}.With("role", item.String("admin")).With("n", item.Int(int64(nonce)))}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := appendCommitRecord(nil, f, serverSession, 0)
		if utf8.Valid(append([]byte{0xC2}, rec...)) {
			fake, inner = f, rec
			break
		}
		if nonce > 1<<20 {
			t.Fatal("no UTF-8 record found")
		}
	}
	outer, err := commit.New(commit.Fields{Key: "note", Time: 2, Session: attackerSession, Full: true,
		Value: item.Item{}.With("text", item.String("hello\xC2"+string(inner)+"bye"))}, attackerKey)
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "server.log")
	r, err := Open(path, &Options{Key: serverKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(recoverSet("x", "v", item.Int(1))); err != nil {
		t.Fatal(err)
	}
	before := r.Seq()
	if _, rej, err := r.Receive([][]byte{outer.Encode()}); err != nil || len(rej) > 0 {
		t.Fatal(err, rej)
	}
	outerEnd := r.Seq()
	if _, err := r.Write(recoverSet("y", "v", item.Int(2))); err != nil {
		t.Fatal(err)
	}
	r.Close()
	full, _ := os.ReadFile(path)
	if !bytes.Contains(full[before:outerEnd], inner) {
		t.Fatalf("the outer record does not hold the inner one as it is (compressed?)")
	}
	headLost := slices.Clone(full)
	clear(headLost[before : before+recHeadSize])
	for _, shape := range []struct {
		name  string
		image []byte
	}{
		{"torn tail, head lost", headLost[:outerEnd]},
		{"claimed damage, head lost", headLost},
	} {
		t.Run(shape.name, func(t *testing.T) {
			got, _ := recoverOpen(t, shape.image, Options{Key: serverKey})
			if got.Has(fake.ID()) {
				t.Fatalf("recovery took the smuggled record's commit")
			}
			if _, _, ok := got.Get("admin"); ok {
				t.Fatalf("the smuggled item exists")
			}
			if _, _, ok := got.Get("x"); !ok {
				t.Errorf("acknowledged item x lost")
			}
		})
	}
}

// TestResyncBoundedWork plants a record head every 23 bytes, each sound
// but claiming data to the end of the file with a wrong checksum, as an
// attacker could inside commit contents: the scan past a damaged head
// must still checksum no more than about the file's size directly, then
// answer from prefix checksums, and find the real record at the end.
func TestResyncBoundedWork(t *testing.T) {
	const planted = 40_000
	var data []byte
	data = append(data, make([]byte, HeaderSize)...)
	data = append(data, 0xff) // damage: no head at HeaderSize
	for i := range planted {
		start := len(data)
		data = append(data, make([]byte, recHeadSize)...)
		rec := data[start:]
		rec[0], rec[1], rec[2] = recMagic[0], recMagic[1], recCommit
		n := (planted - i - 1) * recHeadSize // data up to the real record
		binary.LittleEndian.PutUint32(rec[3:], uint32(n))
		binary.LittleEndian.PutUint32(rec[15:], 12345) // wrong data crc
		binary.LittleEndian.PutUint32(rec[19:], crc32.Checksum(rec[:19], castagnoli))
	}
	real := len(data)
	data = appendRecord(data, recCommit, []byte("payload"), int64(real))
	idx := &lazyCRC{data: data}
	next, _ := resync(data, idx, HeaderSize+1)
	if next != real {
		t.Fatalf("resync found %d, want the real record at %d", next, real)
	}
	if idx.direct > len(data) || idx.indexed == nil {
		t.Fatalf("checksummed %d bytes directly for a %d-byte file (indexed: %v)", idx.direct, len(data), idx.indexed != nil)
	}
}

// appendV1Record frames data of type typ as format 1 did.
func appendV1Record(b []byte, typ byte, data []byte) []byte {
	payload := append([]byte{typ}, data...)
	start := len(b)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	lenEnd := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, payload...)
	crc := crc32.Update(crc32.Checksum(b[start:lenEnd], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(b[lenEnd:], crc)
	return b
}

// TestReadV1Log opens a log of format 1: read-only it reads as it is; a
// writable open rebuilds it in format 2 with every commit, and keeps
// anything it cannot read (a damaged record, a tail) in quarantine.
func TestReadV1Log(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	var owner commit.SessionID
	copy(owner[:], key.Public().(ed25519.PublicKey))
	var cs []*commit.Commit
	for i := range 4 {
		c, err := commit.New(commit.Fields{Key: fmt.Sprint("k", i), Time: int64(i + 1), Session: owner, Full: true,
			Value: item.Item{}.With("n", item.Int(int64(i)))}, key)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	header := appendHeader(nil, logHeader{owner: owner, epoch: 7})
	binary.LittleEndian.PutUint32(header[8:], 1)
	binary.LittleEndian.PutUint32(header[HeaderSize-4:], crc32.Checksum(header[:HeaderSize-4], castagnoli))
	log := slices.Clone(header)
	log = appendV1Record(log, recCommit, appendStored(nil, cs[0], owner))
	log = appendV1Record(log, recGroup, appendGroup(nil, cs[1:3], owner))
	damagedAt := len(log)
	log = appendV1Record(log, recCommit, appendStored(nil, cs[3], owner))
	log[len(log)-3] ^= 0xff                                                               // damage the last record
	log = appendV1Record(log, recMark-1, nil)[:len(log)]                                  // nothing: keep the damaged one last
	log = append(log, appendV1Record(nil, recCommit, appendStored(nil, cs[0], owner))...) // a valid record after it

	ro, _ := recoverOpen(t, log, Options{Key: key, ReadOnly: true})
	for i := range 3 {
		if _, _, ok := ro.Get(fmt.Sprint("k", i)); !ok {
			t.Errorf("read-only: k%d missing", i)
		}
	}
	r, path := recoverOpen(t, log, Options{Key: key})
	for i := range 3 {
		if _, _, ok := r.Get(fmt.Sprint("k", i)); !ok {
			t.Errorf("k%d missing after the rebuild", i)
		}
	}
	data, _ := os.ReadFile(path)
	if h, err := checkHeader(data); err != nil || h.version != logVersion {
		t.Fatalf("rebuilt log: version %d, %v", h.version, err)
	}
	q := r.Quarantine()
	if len(q) != 1 || q[0].Offset != int64(damagedAt) {
		t.Fatalf("Quarantine = %v, want the damaged record at %d", q, damagedAt)
	}
	if _, err := r.Write(recoverSet("z", "n", item.Int(9))); err != nil {
		t.Fatal(err)
	}
	if ps := r.Check(); len(ps) != 1 || ps[0].Offset != int64(damagedAt) {
		t.Errorf("Check = %v, want only the quarantined range", ps)
	}
}
