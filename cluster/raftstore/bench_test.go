package raftstore_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/vfs"
)

// BenchmarkStoreLogs stores batches of 1 and 64 entries of 128 bytes on
// the OS filesystem, each batch fsynced. (MemFS is no measure here: its
// Sync copies the whole file.)
func BenchmarkStoreLogs(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", batch), func(b *testing.B) {
			fsys, d := vfs.OS, filepath.Join(b.TempDir(), "raft")
			s := open(b, fsys, d)
			logs := make([]*raft.Log, batch)
			for i := range logs {
				logs[i] = &raft.Log{Term: 1, Data: make([]byte, 128), AppendedAt: time.Now()}
			}
			next := uint64(1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, l := range logs {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(logSize(b, fsys, filepath.Join(d, "log")))/float64(next-1), "file-B/entry")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next-1), "ns/entry")
		})
	}
}
