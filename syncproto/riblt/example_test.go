package riblt_test

import (
	"fmt"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto/riblt"
)

// A server streams its set's symbols; a client decodes the difference
// with its own set as they arrive, with no estimate of its size.
func Example() {
	key := riblt.NewKey() // chosen afresh for each request
	id := func(i int) commit.ID { return commit.ID{byte(i), byte(i >> 8)} }

	server := riblt.NewEncoder(key)
	client := riblt.NewDecoder(key, nil)
	for i := range 10_000 {
		if i%1000 != 7 { // the client lacks commits 7, 1007, ...
			client.Add(id(i))
		}
		if i != 42 { // ... and the server lacks 42
			server.Add(id(i))
		}
	}

	stream := server.Stream(0)
	for !client.Done() {
		if err := client.AddSymbol(stream.Next()); err != nil {
			fmt.Println("fall back:", err)
			return
		}
	}
	fmt.Printf("server only: %d, client only: %d\n", len(client.RemoteOnly()), len(client.LocalOnly()))
	fmt.Println("symbols:", client.Received() <= 40)
	// Output:
	// server only: 10, client only: 1
	// symbols: true
}

// Symbols travel in runs: any range of a set's symbols, encoded compactly
// and decoded strictly.
func ExampleAppendRun() {
	key := riblt.KeyFromBytes([riblt.KeySize]byte{1})
	enc := riblt.NewEncoder(key)
	for i := range 1000 {
		enc.Add(commit.ID{byte(i), byte(i >> 8)})
	}
	b, err := riblt.AppendRun(nil, 64, enc.AppendSymbols(nil, 64, 128))
	if err != nil {
		panic(err)
	}
	start, syms, err := riblt.DecodeRun(b, nil)
	fmt.Println(start, len(syms), len(b), err)
	// Output: 64 64 1090 <nil>
}
