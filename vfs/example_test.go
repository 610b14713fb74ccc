package vfs_test

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/goatdb/goatdb/vfs"
)

// A file survives a crash once its bytes and its directory entry, and the
// entry of the directory it is in, are synced.
func ExampleMemFS_CrashWith() {
	m := vfs.NewMem()
	m.MkdirAll("/data", 0o755)
	f, _ := m.OpenFile("/data/log", os.O_RDWR|os.O_CREATE, 0o644)
	f.Write([]byte("synced"))
	f.Sync()
	m.SyncDir("/data")
	f.Write([]byte(" and not"))

	_, err := m.CrashWith(vfs.CrashPlan{}).Stat("/data/log")
	fmt.Println("before syncing /:", err)

	m.SyncDir("/")
	for seed := range uint64(3) {
		b, _ := m.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, 0)))).ReadFile("/data/log")
		fmt.Printf("after syncing /: %q\n", b[:6])
	}
	// Output:
	// before syncing /: stat /data/log: file does not exist
	// after syncing /: "synced"
	// after syncing /: "synced"
	// after syncing /: "synced"
}

// MkdirAllSync and WriteFileAtomic make a new directory and a file in it
// durable.
func ExampleMkdirAllSync() {
	m := vfs.NewMem()
	if err := vfs.MkdirAllSync(m, "/data/state", 0o755); err != nil {
		panic(err)
	}
	if err := vfs.WriteFileAtomic(m, "/data/state/config", []byte("v1"), 0o644); err != nil {
		panic(err)
	}
	b, err := m.CrashWith(vfs.CrashPlan{}).ReadFile("/data/state/config")
	fmt.Printf("%q %v\n", b, err)
	// Output: "v1" <nil>
}
