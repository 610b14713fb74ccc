package goatdb_test

import (
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkOpenInstance opens a database: "new" in a directory that does
// not exist yet (what bench/'s create instance row measures), "existing"
// in one a previous open made and closed. Close is not timed, but in
// "new+close": a new directory's session key is saved at its first use or
// at Close, which that case times with the open.
func BenchmarkOpenInstance(b *testing.B) {
	for _, m := range []benchMode{benchModes[0], benchModes[2]} {
		b.Run("new+close/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			root, i := b.TempDir(), 0
			for b.Loop() {
				i++
				if err := openBench(b, filepath.Join(root, strconv.Itoa(i)), m).Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("new/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			root, i := b.TempDir(), 0
			for b.Loop() {
				i++
				db := openBench(b, filepath.Join(root, strconv.Itoa(i)), m)
				b.StopTimer()
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		b.Run("existing/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			if err := openBench(b, dir, m).Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				db := openBench(b, dir, m)
				b.StopTimer()
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkOpenEmptyRepo creates and opens a new empty repository in an
// open database (what bench/'s open empty repository row measures), and
// opens an existing empty one in a database just opened (its first use).
func BenchmarkOpenEmptyRepo(b *testing.B) {
	for _, m := range []benchMode{benchModes[0], benchModes[2]} {
		b.Run("new/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			db := openBench(b, b.TempDir(), m)
			defer db.Close()
			i := 0
			for b.Loop() {
				i++
				if _, err := db.Repo("/test/empty" + strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("existing/"+m.name, func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			db := openBench(b, dir, m)
			if _, err := db.Repo("/test/empty"); err != nil {
				b.Fatal(err)
			}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				db := openBench(b, dir, m)
				b.StartTimer()
				if _, err := db.Repo("/test/empty"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
