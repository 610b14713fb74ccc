package syncproto

import (
	"github.com/goatdb/goatdb/commit"
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
	Path   string // the repository, e.g. "/data/tasks"
	Count  uint64 // how many commits the client holds, pending ones included
	Digest Digest // digest of the client's commit ids
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
	Epoch  uint64
	Seq    uint64 // the position this answer is complete up to
	Count  uint64 // how many commits the server holds (in view), after this request's
	Digest Digest // digest of the server's commit ids (in view), after this request's
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
	// Rejected are the request's commits the server refused, with reasons.
	Rejected []Rejection
	// Hidden are ids of commits this request carried that the server holds
	// but that are outside what the requester may read (it lost read
	// access to their items): the server's Count and Digest leave them
	// out, so the client leaves them out of its comparison too. Only ids
	// of commits in the request's Commits ever appear here.
	Hidden []commit.ID
}

// Rejection names a commit a peer refused and why.
type Rejection struct {
	ID     commit.ID
	Reason string
}
