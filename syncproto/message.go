package syncproto

import (
	"crypto/sha256"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto/riblt"
)

// Request is one round of a sync, from a client to a server: one section
// per repository still being synced.
type Request struct {
	// Session is the requesting peer's session id (its Ed25519 public key).
	// The server hands it to its Repos; who the requester is, for the
	// Policy, comes with the request's context; binding either to the
	// request with a signature is the transport's job.
	Session commit.SessionID
	Repos   []RepoRequest
}

// RepoRequest is the client's part of a round for one repository.
type RepoRequest struct {
	Path string // the repository, e.g. "/data/tasks"
	// Horizon is the time (Unix milliseconds) Count and Digest start at:
	// they cover the client's commits with a time at or after it. 0 (all
	// of them) until a server named a horizon (RepoResponse.Horizon); a
	// client that holds no commit sends 0, and gets everything the server
	// holds, below its horizon too (cold start).
	Horizon int64
	Count   uint64 // how many commits the client holds (from Horizon on), pending ones included
	Digest  Digest // digest of the client's commit ids (from Horizon on)
	// Resume, if set, asks for the server's commits since this point (which
	// the client got at its last sync with this server).
	Resume *Point
	// Filter, if set, holds the client's commit ids: the server answers with
	// its commits the filter does not hold. No filter and Count 0 means an
	// empty client.
	Filter *Filter
	// Repair asks the server to answer Filter even if the digests match.
	Repair bool
	// Commits are encoded commits the client found the server to lack.
	Commits [][]byte
	// Missing are ids the client lacks: parents and delta bases of its
	// pending commits.
	Missing []commit.ID
	// Sketch, if set, asks for rateless IBLT reconciliation (first
	// contact without a resume point, see doc.go): coded symbols of the
	// server's commit ids, or, once the client decoded the difference,
	// the commits it lacks by short id. Version 3.
	Sketch *Sketch
}

// Sketch is a client's part of a rateless IBLT exchange (package riblt):
// the key it chose for this sync, and either the index of the next symbol
// it wants or, once it decoded the difference, the short ids of the
// server's commits it lacks.
type Sketch struct {
	// Key is the seed of the riblt key that keys the short ids and
	// checksums (RibltKey). The client draws it afresh for each sync.
	Key [SketchKeySize]byte
	// From is the index of the first symbol wanted (riblt
	// Decoder.Received); 0 when Decoded.
	From uint64
	// Ask is how many symbols the client asks for (at most MaxSymbols); 0
	// lets the server choose. Not when Decoded.
	Ask uint64
	// Decoded says the client decoded the difference: the server sends no
	// symbols, only the commits named by Want.
	Decoded bool
	// Want names the server's commits the client lacks, at most MaxWant:
	// the high 32 bits of each one's short id under Key (WantOf); only
	// when Decoded. The server sends every commit of the requester's view
	// that matches one: about N/2^32 extra commits per name for N commits,
	// which the client holds already.
	Want []uint32
}

// SketchKeySize is the size of a Sketch's key: 128 random bits, which
// RibltKey stretches to a riblt.Key.
const SketchKeySize = 16

// RibltKey returns the riblt key of the sketch: the SHA-256 of its Key.
func (k *Sketch) RibltKey() riblt.Key { return riblt.KeyFromBytes(sha256.Sum256(k.Key[:])) }

// SymbolRun is a run of a server's coded symbols (riblt): the symbols
// with indices [Start, Start+len(Symbols)) of the stream of its commit
// ids under the request's Sketch.Key.
type SymbolRun struct {
	Start   uint64
	Symbols []riblt.Symbol
}

// Point is a position in a server's log: its epoch and a sequence number.
type Point struct {
	Epoch uint64
	Seq   uint64
}

// Response is a server's answer to a Request: one section per section of
// the request, in the same order.
type Response struct {
	Repos []RepoResponse
}

// Status says whether a server served a repository.
type Status uint8

const (
	// StatusOK: the section holds the server's answer.
	StatusOK Status = iota
	// StatusNotFound: the server does not serve this repository.
	StatusNotFound
	// StatusError: the server failed; Message says why.
	StatusError
	numStatus
)

// String returns "ok", "not found" or "error".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusError:
		return "error"
	}
	return "unknown status"
}

// RepoResponse is the server's part of a round for one repository. Only
// Path, Status and Message are set unless Status is StatusOK.
type RepoResponse struct {
	Path    string
	Status  Status
	Message string // why, when Status is not StatusOK

	// Epoch and Seq are the server's position: its log's epoch and
	// sequence number, or, for a requester who may read only part of the
	// repository, a position in that view which reveals nothing of the
	// log (see Policy).
	Epoch uint64
	Seq   uint64 // the position this answer is complete up to
	// Count and Digest are the server's commits (in view) with a time at
	// or after the request's Horizon, after this request's: the two sides'
	// sets compared over the same commits.
	Count  uint64
	Digest Digest
	// Horizon is the server's horizon (Unix milliseconds): it collected
	// its history before it (repo.Repo.Horizon), keeping only some older
	// commits (current heads, shallow roots). 0 if it never collected.
	// Both sides compare their commits from the horizon on; the client
	// names it in its next requests.
	Horizon int64
	// AtHorizon is the server's count and digest over its commits from
	// Horizon on, when the request named another horizon (Count and Digest
	// are over the request's); nil when the request named Horizon.
	AtHorizon *SetSum
	// Filter, if set, holds the server's commit ids: the client should send
	// the commits it does not hold in its next request.
	Filter *Filter
	// More says the server left out commits to keep the message small; the
	// client should run another round.
	More bool
	// Commits are encoded commits the server found the client to lack.
	Commits [][]byte
	// Missing are ids the server lacks (see RepoRequest.Missing).
	Missing []commit.ID
	// Symbols, if set, are coded symbols of the server's commit ids (in
	// view, from the request's horizon on), answering a request's Sketch.
	// Version 3.
	Symbols *SymbolRun
	// Rejected are the request's commits the server refused, with reasons.
	Rejected []Rejection
	// Hidden are ids of commits this request carried that the server holds
	// but that are outside what the requester may read (it lost read
	// access to their items): the server's Count and Digest leave them
	// out, so the client leaves them out of its comparison too. Only ids
	// of commits in the request's Commits ever appear here.
	Hidden []commit.ID
	// Shallow names the commits of Commits whose parents the server
	// collected (shallow roots), with their generation numbers: the client
	// stores them as roots of that generation (repo.Repo.ReceiveShallow),
	// so that it builds the same graph, and merges the same, as the server.
	Shallow []ShallowRoot
}

// SetSum is the count and digest of a set of commit ids.
type SetSum struct {
	Count  uint64
	Digest Digest
}

// ShallowRoot is a commit some of whose parents were collected, with what
// its peer needs to take it as complete without them: what its
// generation number and delta depth were with them, and which of them
// were collected.
type ShallowRoot struct {
	ID     commit.ID
	Gen    uint32 // generation: 1 + its parents' largest, as it was before they were collected
	Depth  uint16 // delta depth: deltas since its base (0 for a full snapshot)
	Absent uint64 // bit i: its parent i (in commit order) was collected; not 0
}

// Rejection names a commit a peer refused and why: repo's, which
// Receive returns and a message carries as it is (its Reason cut to
// MaxReasonLen bytes).
type Rejection = repo.Rejection
