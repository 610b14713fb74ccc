package repo

import (
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// TestMain runs the package's tests with the head index as
// GOATDB_TEST_INDEX says: "always" (every Close writes one, every open
// that can uses it, reading it 61 bytes at a time), "background" (as always, and every time the log
// doubles an index is written in the background: tests that count file
// operations or build crash images from unsynced bytes do not hold in this
// mode), "damaged" (every index
// written is damaged, so every open falls back to a replay, and a
// repository holds the encodings of its newest 256 bytes of commits only,
// so that commits are read from the log as much as they can be, and
// indexes are read 61 bytes at a time),
// "never", or unset (the default thresholds).
func TestMain(m *testing.M) {
	switch mode := os.Getenv("GOATDB_TEST_INDEX"); mode {
	case "":
	case "always":
		indexMinCommits = 0
		indexWindow = 61 // head indexes are read a few bytes at a time
	case "background":
		indexMinCommits, indexGrowth = 0, 1
	case "damaged":
		indexMinCommits = 0
		indexWritten = damageIndex
		encBudget = 256
		indexWindow = 61 // head indexes are read a few bytes at a time
	case "never":
		indexMinCommits = math.MaxInt
	default:
		fmt.Fprintf(os.Stderr, "GOATDB_TEST_INDEX=%q: want always, background, damaged or never\n", mode)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// damageIndex flips a byte in the middle of an index file.
func damageIndex(fsys vfs.FS, path string) {
	b, err := fsys.ReadFile(path)
	if err != nil || len(b) == 0 {
		return
	}
	b[len(b)/2] ^= 0x40
	vfs.WriteFileAtomic(fsys, path, b, 0o644) // an injected fault leaves it whole, or removed

}
