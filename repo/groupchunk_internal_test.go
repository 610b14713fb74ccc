package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/klauspost/compress/zstd"
)

// withGroupChunk sets groupChunk for a test.
func withGroupChunk(tb testing.TB, n int) {
	old := groupChunk
	groupChunk = n
	tb.Cleanup(func() { groupChunk = old })
}

// randomGroup returns n members of compressible random bytes and their
// group's data, as appendStoredRecord builds it.
func randomGroup(rng *rand.Rand, n int) ([][]byte, []byte) {
	words := []string{"title", "body", "count", "tags", "a fairly long value that repeats", "x"}
	members := make([][]byte, n)
	data := binary.AppendUvarint(nil, uint64(n))
	for i := range members {
		var m []byte
		for len(m) < 1+rng.IntN(400) {
			m = append(m, words[rng.IntN(len(words))]...)
		}
		members[i] = m
		data = binary.AppendUvarint(data, uint64(len(m)))
		data = append(data, m...)
	}
	return members, data
}

// readFrame reads member idx of a record's data through its directory,
// as frameCommitLocked does from the file.
func readFrame(data []byte, idx int) ([]byte, error) {
	n, ok := groupDirSize(data)
	if !ok || n > len(data) {
		return nil, fmt.Errorf("no directory")
	}
	g, err := parseGroupDir(data[:n], len(data))
	if err != nil {
		return nil, err
	}
	j := g.frameOf(idx)
	d, err := g.frame(zdec, data[g.at[j]:g.at[j+1]], j, nil)
	if err != nil {
		return nil, err
	}
	cs, err := g.frameCommits(j, d)
	if err != nil {
		return nil, err
	}
	if idx-g.first[j] >= len(cs) {
		return nil, fmt.Errorf("commit %d past frame %d", idx, j)
	}
	return cs[idx-g.first[j]], nil
}

// TestChunkGroup: a group longer than groupChunk is stored as a directory
// and frames of whole commits, each about groupChunk bytes of the data;
// the whole data decodes as before (recordCommits, which replay and
// older builds use), and every member reads from its frame alone.
func TestChunkGroup(t *testing.T) {
	withGroupChunk(t, 1<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 5, 40, 300} {
		members, data := randomGroup(rng, n)
		rec := appendGroupData(nil, data, 0)
		h, ok := parseHead(rec, 0)
		if !ok || recHeadSize+h.length != len(rec) {
			t.Fatalf("%d members: no sound record", n)
		}
		body := rec[recHeadSize:]
		got, err := recordCommits(h.typ, body)
		if err != nil || len(got) != n {
			t.Fatalf("%d members: recordCommits gives %d, %v", n, len(got), err)
		}
		for i := range got {
			if !bytes.Equal(got[i], members[i]) {
				t.Fatalf("%d members: member %d differs", n, i)
			}
		}
		dn, chunked := groupDirSize(body)
		if chunked != (len(data) > groupChunk) {
			t.Fatalf("%d members (%d bytes): chunked %v", n, len(data), chunked)
		}
		if !chunked {
			continue
		}
		g, err := parseGroupDir(body[:dn], len(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := len(data) / groupChunk; len(g.first) < want {
			t.Fatalf("%d bytes in %d frames, want at least %d", len(data), len(g.first), want)
		}
		for j := range g.first {
			// No frame declares its size: a decoder of the whole data in
			// one call (an older build's) would size its output to each
			// frame in turn, copying all before it.
			var fh zstd.Header
			if err := fh.Decode(body[g.at[j]:g.at[j+1]]); err != nil || fh.HasFCS {
				t.Fatalf("frame %d declares its size (%v)", j, err)
			}
			d, err := zdec.DecodeAll(body[g.at[j]:g.at[j+1]], nil)
			if err != nil || len(d) != g.raw[j] {
				t.Fatalf("frame %d: %d bytes, the directory says %d (%v)", j, len(d), g.raw[j], err)
			}
			if len(d) > groupChunk+500 {
				t.Fatalf("frame %d holds %d bytes, want about %d", j, len(d), groupChunk)
			}
		}
		for i := range members {
			m, err := readFrame(body, i)
			if err != nil || !bytes.Equal(m, members[i]) {
				t.Fatalf("%d members: member %d from its frame: %v", n, i, err)
			}
		}
		if _, err := readFrame(body, n); err == nil {
			t.Fatalf("%d members: member %d read", n, n)
		}
	}
}

// TestChunkGroupIncompressible: a long group that does not compress is
// stored as it is, with no directory.
func TestChunkGroupIncompressible(t *testing.T) {
	withGroupChunk(t, 1<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	data := binary.AppendUvarint(nil, 8)
	for range 8 {
		m := make([]byte, 600)
		for i := range m {
			m[i] = byte(rng.Uint32())
		}
		data = binary.AppendUvarint(data, uint64(len(m)))
		data = append(data, m...)
	}
	rec := appendGroupData(nil, data, 0)
	if h, ok := parseHead(rec, 0); !ok || h.typ != recGroup || !bytes.Equal(rec[recHeadSize:], data) {
		t.Fatalf("record type %d, want the data as it is (%d)", h.typ, recGroup)
	}
}

// chunkedRepo writes n items in one batch, a chunked group record of
// frames of 1 KiB, closes the repository and opens it again from its
// head index.
func chunkedRepo(t *testing.T, n int) (path string, r *Repo, ids []commit.ID) {
	t.Helper()
	ixSetup(t)
	withGroupChunk(t, 1<<10)
	path = filepath.Join(t.TempDir(), "r.log")
	key := ixKey("chunked")
	r, err := Open(path, &Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	// First a record of 80 KiB that does not compress: reads of the
	// group after it are not taken for a scan from the log's start.
	filler := make([]byte, 80<<10)
	for i := range filler {
		filler[i] = 'a' + byte(i*7919%26+i/26%3)
	}
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(filler), func(i, j int) { filler[i], filler[j] = filler[j], filler[i] })
	if _, err := r.Write(Update{Key: "filler", Fn: func(Current) (item.Item, commit.Schema, error) {
		return item.New(map[string]item.Value{"x": item.String(string(filler))}), commit.Schema{}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	ids = writeBatch(t, r, "k", n)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err = Open(path, &Options{Key: key}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !r.openedFromIndex() {
		t.Fatal("not opened from the head index")
	}
	return path, r, ids
}

// writeBatch writes n items keyed prefix0000… in one write, item i with
// n = i, and returns their commits' ids in order.
func writeBatch(tb testing.TB, r *Repo, prefix string, n int) []commit.ID {
	tb.Helper()
	ups := make([]Update, n)
	for i := range ups {
		v := item.New(map[string]item.Value{"title": item.String(fmt.Sprintf("item %d of a batch long enough to be chunked", i)), "n": item.Number(float64(i))})
		ups[i] = Update{Key: fmt.Sprintf("%s%05d", prefix, i), Fn: func(Current) (item.Item, commit.Schema, error) { return v, commit.Schema{}, nil }}
	}
	cs, err := r.Write(ups...)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]commit.ID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID()
	}
	return ids
}

// openedFromIndex reports whether the head values are still lazy, as an
// open from the index leaves them.
func (r *Repo) openedFromIndex() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, st := range r.list {
		if st.lazy.Load() != nil {
			return true
		}
	}
	return false
}

// TestReadCommitFromFrame: a random read of a commit of a chunked group
// decompresses only its frame, and gives the commit.
func TestReadCommitFromFrame(t *testing.T) {
	const n = 300
	_, r, ids := chunkedRepo(t, n)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, i := range append([]int{n - 1, 0, n / 2}, rng.Perm(n)[:20]...) {
		c, ok := r.Commit(ids[i])
		if !ok || c.ID() != ids[i] {
			t.Fatalf("commit %d: not read", i)
		}
		if v := c.Value(); get(v, "n").Float() != float64(i) {
			t.Fatalf("commit %d: value %v", i, v)
		}
		r.rd.mu.Lock()
		whole, frame := r.rd.stored, len(r.rd.frame)
		r.rd.mu.Unlock()
		if whole != nil || frame == 0 || frame >= n/4 {
			t.Fatalf("commit %d: the whole record read (%v), or a frame of %d commits", i, whole != nil, frame)
		}
	}
	if h := r.Health(); !h.OK() {
		t.Fatalf("health %+v", h)
	}
}

// TestReadCommitBadDirectory: a directory that lies about where its
// frames start, in a record whose checksum holds, costs a whole read and
// no damage: the commit read is the one the graph names.
func TestReadCommitBadDirectory(t *testing.T) {
	const n = 300
	path, r, ids := chunkedRepo(t, n)
	// Where the group is, and its directory.
	r.mu.RLock()
	nd := r.commits.get(ids[n-1])
	off, size := int64(nd.seq)-int64(nd.size), int(nd.size)
	r.mu.RUnlock()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := b[off : off+int64(size)]
	body := rec[recHeadSize:]
	dn, ok := groupDirSize(body)
	if !ok {
		t.Fatal("the group is not chunked")
	}
	g, err := parseGroupDir(body[:dn], len(body))
	if err != nil || len(g.first) < 3 {
		t.Fatalf("%d frames, %v", len(g.first), err)
	}
	// Frames 1 and 2 say they start one commit later, so that frame 1
	// still holds as many as it says; the uvarints keep their lengths,
	// and the record's checksums are made right again.
	dir := []byte{groupDirVersion}
	dir = binary.AppendUvarint(dir, uint64(len(g.first)))
	for j := range g.first {
		first := g.first[j]
		if j == 1 || j == 2 {
			first++
		}
		dir = binary.AppendUvarint(dir, uint64(g.at[j+1]-g.at[j]))
		dir = binary.AppendUvarint(dir, uint64(first))
		dir = binary.AppendUvarint(dir, uint64(g.raw[j]))
	}
	if len(dir) != dn-groupDirHead {
		t.Fatalf("directory of %d bytes, was %d", len(dir), dn-groupDirHead)
	}
	copy(body[groupDirHead:], dir)
	claim := int64(binary.LittleEndian.Uint64(rec[7:]))
	putHead(rec, rec[2], claim)
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(rec[15:]) {
		t.Fatal("checksum not made right")
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err = Open(path, &Options{Key: ixKey("chunked")}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.openedFromIndex() {
		t.Fatal("not opened from the head index")
	}
	i := g.first[1] + 1 // the directory names another commit for it
	before := r.decodes.Load()
	c, ok := r.Commit(ids[i])
	if !ok || c.ID() != ids[i] || get(c.Value(), "n").Float() != float64(i) {
		t.Fatalf("commit %d: not read right", i)
	}
	if d := r.decodes.Load() - before; d != 2 {
		t.Fatalf("%d decodes, want 2: the frame's commit, then the whole record's", d)
	}
	if h := r.Health(); !h.OK() {
		t.Fatalf("health %+v", h)
	}
	if _, err := os.Stat(path + IndexSuffix); err != nil {
		t.Fatalf("the head index was removed: %v", err)
	}
}

// FuzzGroupDir: a record's data read through its directory never panics,
// and what a frame gives is part of what the whole data decompresses to,
// as replay reads it.
func FuzzGroupDir(f *testing.F) {
	withGroupChunk(f, 256)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{3, 20} {
		_, data := randomGroup(rng, n)
		rec := appendGroupData(nil, data, 0)
		f.Add(rec[recHeadSize:], uint16(n/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, idx uint16) {
		m, err := readFrame(data, int(idx))
		if err != nil {
			return
		}
		if whole, err := zdec.DecodeAll(data, nil); err == nil && !bytes.Contains(whole, m) {
			t.Fatalf("member %d from its frame is not in the whole data", idx)
		}
	})
}

// BenchmarkReadCommitCold reads random commits of a repository opened
// from its head index, written in batches of 5,000 (group records of
// about 350 KiB): with groups chunked into frames of 8 KiB (groupChunk)
// and of 64 KiB, and in one frame each, as logs written before chunking
// hold them.
func BenchmarkReadCommitCold(b *testing.B) {
	ixSetup(b)
	const batches, per = 20, 5000
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"frames-8KiB", 8 << 10}, {"frames-64KiB", 64 << 10}, {"one-frame", 1 << 30}} {
		b.Run(tc.name, func(b *testing.B) {
			withGroupChunk(b, tc.chunk)
			path := filepath.Join(b.TempDir(), "r.log")
			key := ixKey("cold")
			r, err := Open(path, &Options{Key: key, Durability: Async})
			if err != nil {
				b.Fatal(err)
			}
			var ids []commit.ID
			for k := range batches {
				ids = append(ids, writeBatch(b, r, fmt.Sprintf("k%02d-", k), per)...)
			}
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			if r, err = Open(path, &Options{Key: key}); err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(1, 1))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := r.Commit(ids[rng.IntN(len(ids))]); !ok {
					b.Fatal("not read")
				}
			}
			b.ReportMetric(float64(fi.Size())/float64(len(ids)), "log-B/commit")
		})
	}
}

// TestSalvageChunkedGroup: a chunked group with a frame that does not
// decode, replayed, loses only that frame's commits: the others, after it
// too, are salvaged frame by frame, verified and kept, and the record's
// bytes quarantined.
func TestSalvageChunkedGroup(t *testing.T) {
	const n = 300
	path, r, ids := chunkedRepo(t, n)
	r.mu.RLock()
	nd := r.commits.get(ids[0])
	off, size := int64(nd.seq)-int64(nd.size), int(nd.size)
	r.mu.RUnlock()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := b[off+recHeadSize : off+int64(size)]
	dn, ok := groupDirSize(body)
	if !ok {
		t.Fatal("the group is not chunked")
	}
	g, err := parseGroupDir(body[:dn], len(body))
	if err != nil || len(g.first) < 4 {
		t.Fatalf("%d frames, %v", len(g.first), err)
	}
	const j = 2 // the frame damaged: its magic, so that it does not decode
	body[g.at[j]] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + IndexSuffix); err != nil { // replay, which meets the damage
		t.Fatal(err)
	}
	if r, err = Open(path, &Options{Key: ixKey("chunked")}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Health(); h.Quarantined != 1 {
		t.Fatalf("health %+v, want the record quarantined", h)
	}
	lost := 0
	for i, id := range ids {
		c, ok := r.Commit(id)
		inFrame := i >= g.first[j] && i < g.first[j+1]
		switch {
		case ok && get(c.Value(), "n").Float() != float64(i):
			t.Fatalf("commit %d: value %v", i, c.Value())
		case !ok && !inFrame:
			t.Fatalf("commit %d (frame %d) lost, want only frame %d's", i, g.frameOf(i), j)
		case !ok:
			lost++
		}
	}
	if want := g.first[j+1] - g.first[j]; lost != want {
		t.Fatalf("%d commits lost, want frame %d's %d", lost, j, want)
	}
	t.Logf("%d of %d commits lost, all in frame %d of %d", lost, n, j, len(g.first))
}
