package repo_test

import (
	"crypto/ed25519"
	"os"
	"testing"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// FuzzOpenLog feeds arbitrary bytes after a valid header to Open, read-only
// and repairing: it must return a repository or an error, never panic, and
// a repository it returns must pass through Check without panicking.
func FuzzOpenLog(f *testing.F) {
	seed := vfs.NewMem()
	_, key, _ := ed25519.GenerateKey(nil)
	r, err := repo.Open("/seed.log", &repo.Options{FS: seed, Key: key})
	if err != nil {
		f.Fatal(err)
	}
	r.Write(set("a", "t", item.String("x")), set("b", "n", item.Int(3)))
	r.Write(set("a", "t", item.String("y")))
	r.Write(set("c", "s", item.StringSet("p", "q")))
	r.Close()
	data, _ := seed.ReadFile("/seed.log")
	header, body := data[:repo.HeaderSize], data[repo.HeaderSize:]
	f.Add(body)
	f.Add(body[:len(body)/2])
	f.Add([]byte{})
	f.Add([]byte{0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, tail []byte) {
		for _, ro := range []bool{true, false} {
			fsys := vfs.NewMem()
			file, _ := fsys.OpenFile("/f.log", os.O_CREATE|os.O_WRONLY, 0o644)
			file.Write(append(append([]byte{}, header...), tail...))
			file.Sync()
			fsys.SyncDir("/")
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
