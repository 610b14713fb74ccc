package item_test

import (
	"testing"

	"github.com/goatdb/goatdb/item"
)

// benchItem is the benchmark workload: a small item as an application
// would store it.
func benchItem() item.Item {
	return item.New(map[string]item.Value{
		"title": item.String("Item 42"),
		"count": item.Number(42),
		"tags":  item.StringSet("tag42", "category2"),
	})
}

func BenchmarkAppendItem(b *testing.B) {
	it := benchItem()
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = item.AppendItem(buf[:0], it); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/item")
}

func BenchmarkDecodeItem(b *testing.B) {
	enc := encItem(b, benchItem())
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := item.DecodeItem(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff(b *testing.B) {
	base := benchItem()
	target := base.With("count", item.Number(43)).With("tags", item.StringSet("tag42", "category3"))
	b.ReportAllocs()
	var d item.Delta
	for b.Loop() {
		d = item.Diff(base, target)
	}
	b.ReportMetric(float64(len(encDelta(b, d))), "bytes/delta")
}

func BenchmarkMerge(b *testing.B) {
	base := benchItem()
	deltas := []item.Delta{
		item.Diff(base, base.With("count", item.Number(43))),
		item.Diff(base, base.With("tags", item.StringSet("tag42", "category2", "new"))),
		item.Diff(base, base.With("title", item.String("Item 42!")).With("count", item.Number(44))),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := item.Merge(base, deltas); err != nil {
			b.Fatal(err)
		}
	}
}
