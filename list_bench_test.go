package goatdb_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
)

// BenchmarkListCounterBytesOnDisk measures, in one run, how much the log
// grows per write of each kind to existing items (1,000 items, each with
// a title, an int, a counter and a list of 5 strings, in three databases
// alike): a one-field update (the int), a counter increment, and a list
// append (the whole list written with one more element). It reports each
// as diskB/op and the counter's and the list's as ratios to the update.
func BenchmarkListCounterBytesOnDisk(b *testing.B) {
	const items = 1000
	type db struct {
		*goatdb.DB
		dir string
	}
	open := func() db {
		dir := b.TempDir()
		d, err := goatdb.Open(dir, &goatdb.Options{Durability: goatdb.Async})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		batch := d.Batch()
		for i := range items {
			batch.Put("/data/b/i"+strconv.Itoa(i), goatdb.Fields{"title": "Item " + strconv.Itoa(i), "n": i,
				"views": item.Counter(0), "steps": item.StringList("a", "b", "c", "d", "e")})
		}
		if _, err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		return db{d, dir}
	}
	size := func(d db) int64 {
		if err := d.Flush(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(d.dir, "data", "b.log"))
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	upd, cnt, lst := open(), open(), open()
	steps := make([][]string, items)
	for i := range steps {
		steps[i] = []string{"a", "b", "c", "d", "e"}
	}
	before := [3]int64{size(upd), size(cnt), size(lst)}
	n := 0
	for b.Loop() {
		i := n % items
		path := "/data/b/i" + strconv.Itoa(i)
		steps[i] = append(steps[i], "step "+strconv.Itoa(n))
		for _, w := range []struct {
			d db
			f goatdb.Fields
		}{
			{upd, goatdb.Fields{"n": items + n}},
			{cnt, goatdb.Fields{"views": item.Counter(int64(n/items + 1))}},
			{lst, goatdb.Fields{"steps": item.StringList(steps[i]...)}},
		} {
			if _, err := w.d.Put(path, w.f); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	perOp := func(d db, i int) float64 { return float64(size(d)-before[i]) / float64(n) }
	u, c, l := perOp(upd, 0), perOp(cnt, 1), perOp(lst, 2)
	b.ReportMetric(u, "updateB/op")
	b.ReportMetric(c, "counterB/op")
	b.ReportMetric(l, "listB/op")
	b.ReportMetric(c/u, "counter/update")
	b.ReportMetric(l/u, "list/update")
}
