package raftstore

import "github.com/hashicorp/raft"

// ForgeFrame returns the frame holding logs after prev, checksummed with salt, as a
// peer guessing the salt would lay it out inside an entry's data.
func ForgeFrame(salt, prev uint64, logs []*raft.Log) []byte {
	return appendFrame(nil, salt, prev, logs)
}
