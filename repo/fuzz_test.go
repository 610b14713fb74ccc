package repo_test

import (
	"crypto/ed25519"
	"os"
	"testing"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// fuzzSeedLog returns a log that holds the given writes, and the key that
// wrote it.
func fuzzSeedLog(f *testing.F, writes ...[]repo.Update) ([]byte, ed25519.PrivateKey) {
	seed := vfs.NewMem()
	_, key, _ := ed25519.GenerateKey(nil)
	r, err := repo.Open("/seed.log", &repo.Options{FS: seed, Key: key})
	if err != nil {
		f.Fatal(err)
	}
	for _, w := range writes {
		if _, err := r.Write(w...); err != nil {
			f.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		f.Fatal(err)
	}
	data, err := seed.ReadFile("/seed.log")
	if err != nil {
		f.Fatal(err)
	}
	return data, key
}

// memWith returns a MemFS holding data, durably, at name (in "/").
func memWith(name string, data []byte) *vfs.MemFS {
	fsys := vfs.NewMem()
	f, _ := fsys.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o644)
	f.Write(data)
	f.Sync()
	fsys.SyncDir("/")
	return fsys
}

// FuzzOpenLog feeds arbitrary bytes after a valid header to Open, read-only
// and repairing: it must return a repository or an error, never panic, and
// a repository it returns must pass through Check without panicking.
func FuzzOpenLog(f *testing.F) {
	data, key := fuzzSeedLog(f, []repo.Update{set("a", "t", item.String("x")), set("b", "n", item.Int(3))},
		[]repo.Update{set("a", "t", item.String("y"))}, []repo.Update{set("c", "s", item.StringSet("p", "q"))})
	header, body := data[:repo.HeaderSize], data[repo.HeaderSize:]
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Add([]byte{})
	f.Add([]byte{0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, tail []byte) {
		for _, ro := range []bool{true, false} {
			fsys := memWith("/f.log", append(append([]byte{}, header...), tail...))
			r, err := repo.Open("/f.log", &repo.Options{FS: fsys, Key: key, ReadOnly: ro})
			if err != nil {
				continue
			}
			r.Check()
			for _, k := range r.Keys(true) {
				r.History(k)
			}
			r.Close()
		}
	})
}

// FuzzOpenFile opens whole files, header included: empty, zeros, a header
// cut short, a damaged header with records after it, what a crash leaves
// of a log just created. Open either refuses the file or opens it; a
// writable open leaves a log that opens again to the same items.
func FuzzOpenFile(f *testing.F) {
	data, key := fuzzSeedLog(f, []repo.Update{set("a", "t", item.String("x")), set("b", "n", item.Int(3))})
	f.Add([]byte{})
	f.Add(make([]byte, repo.HeaderSize))
	f.Add(make([]byte, 4096))
	f.Add(data[:9])
	f.Add(data[:repo.HeaderSize-1])
	f.Add(data)
	f.Add(append(make([]byte, repo.HeaderSize), data[repo.HeaderSize:]...))
	f.Fuzz(func(t *testing.T, file []byte) {
		for _, ro := range []bool{true, false} {
			fsys := memWith("/f.log", file)
			r, err := repo.Open("/f.log", &repo.Options{FS: fsys, Key: key, ReadOnly: ro})
			if err != nil {
				continue
			}
			r.Check()
			keys := r.Keys(true)
			if err := r.Close(); err != nil || ro {
				continue
			}
			again, err := repo.Open("/f.log", &repo.Options{FS: fsys, Key: key, ReadOnly: true})
			if err != nil {
				t.Fatalf("a log a writable open left does not open: %v", err)
			}
			if got := again.Keys(true); len(got) != len(keys) {
				t.Fatalf("%d items after a writable open, %d when opened again", len(keys), len(got))
			}
			again.Close()
		}
	})
}
