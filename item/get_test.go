package item_test

import (
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// TestGet: Get finds every field and no other, whether the item has few
// fields (looked through one by one) or many (searched by order).
func TestGet(t *testing.T) {
	for _, n := range []int{0, 1, 2, 11, 12, 13, 40} {
		fields := map[string]item.Value{}
		for i := range n {
			fields[fmt.Sprintf("f%02d", i*2)] = item.Int(int64(i))
		}
		it := item.New(fields)
		for i := range 2*n + 2 {
			name := fmt.Sprintf("f%02d", i)
			want, ok := fields[name]
			got, found := it.Get(name)
			if found != ok || found && !item.Equal(got, want) {
				t.Fatalf("%d fields: Get(%s) = %v, %v; want %v, %v", n, name, got, found, want, ok)
			}
		}
		if _, found := it.Get(""); found {
			t.Fatalf("%d fields: found the empty name", n)
		}
	}
}
