package raftstore_test

import (
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/vfs"
)

// Open a store and use it as raft's log and stable store; here on an
// in-memory filesystem, in a program on vfs.OS and a data directory.
func ExampleOpen() {
	s, err := raftstore.Open(vfs.NewMem(), "/data/raft")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	if err := s.StoreLogs([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("first")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte("second")},
	}); err != nil {
		panic(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		panic(err)
	}

	var l raft.Log
	if err := s.GetLog(2, &l); err != nil {
		panic(err)
	}
	last, _ := s.LastIndex()
	term, _ := s.GetUint64([]byte("CurrentTerm"))
	fmt.Printf("entry 2: %s; last index %d; term %d\n", l.Data, last, term)
	// Output: entry 2: second; last index 2; term 1
}
