package repo

import (
	"fmt"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// TestLazyValueUndecodable: a head value from the index that does not
// decode is read from the log instead, once, whatever the readers that
// meet it at the same time, and the index is removed; a value that
// decodes is decoded once for all its readers too.
func TestLazyValueUndecodable(t *testing.T) {
	ixSetup(t)
	fsys := vfs.NewMem()
	r := ixOpen(t, fsys, Options{})
	want := map[string]item.Item{}
	for i := range 20 {
		k := fmt.Sprint("k", i)
		v := item.New(map[string]item.Value{"n": item.Int(int64(i)), "t": item.String(k)})
		want[k] = v
		if _, err := r.Write(Update{Key: k, Fn: func(Current) (item.Item, commit.Schema, error) { return v, commit.Schema{NS: "note", Version: 1}, nil }}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = ixOpen(t, fsys, Options{})
	lazy := func(k string) *lazyValue {
		lz := r.items.get(k).lazy.Load()
		if lz == nil {
			t.Fatalf("%s: not opened from the index (no lazy value)", k)
		}
		return lz
	}
	lazy("k3").enc = []byte{0xff, 0xff, 0xff}
	for _, k := range []string{"k3", "k4"} {
		lz := lazy(k)
		var wg sync.WaitGroup
		got := make([]item.Item, 8)
		for i := range got {
			wg.Go(func() {
				v, _, ok := r.Get(k)
				if !ok {
					t.Errorf("%s: not found", k)
				}
				got[i] = v
			})
		}
		wg.Wait()
		for i, v := range got {
			if !item.ItemsEqual(v, want[k]) {
				t.Fatalf("%s: reader %d got %v, want %v", k, i, v, want[k])
			}
		}
		if d := lz.dec.Load(); d == nil || !item.ItemsEqual(*d, want[k]) {
			t.Fatalf("%s: decoded value not kept", k)
		}
	}
	if ixExists(fsys, ixPath+IndexSuffix) {
		t.Fatal("the index whose value does not decode is still there")
	}
}
