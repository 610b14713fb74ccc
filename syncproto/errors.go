package syncproto

import (
	"errors"
	"strings"
)

var (
	// ErrMalformed is returned when a message does not decode (it is
	// truncated, has trailing bytes, breaks a bound, or is not in canonical
	// form) or cannot be encoded (it breaks a bound). Errors that wrap it say
	// what is wrong and where.
	ErrMalformed = errors.New("syncproto: malformed message")

	// ErrVersion is returned when a message has a format version this build
	// does not speak. The wrapping error names the supported versions.
	ErrVersion = errors.New("syncproto: unsupported message version")

	// ErrTooLarge is returned when a message, or its decompressed payload,
	// exceeds MaxMessageSize or MaxPayloadSize.
	ErrTooLarge = errors.New("syncproto: message too large")

	// ErrUnknownRepo is returned by a Repos lookup for a path it does not
	// serve, and wrapped by Syncer.Sync when the server answers so.
	ErrUnknownRepo = errors.New("syncproto: unknown repository")

	// ErrMismatch is returned by Syncer.Sync when a response does not answer
	// the request it was sent for (other repositories, another order).
	ErrMismatch = errors.New("syncproto: response does not match request")

	// ErrNotConverged is returned (wrapped, naming the repositories) when a
	// sync used its round budget before both sides held the same commits.
	ErrNotConverged = errors.New("syncproto: not converged within the round budget")

	// ErrRemote is returned (wrapped, with the server's message) when the
	// server failed to serve a repository.
	ErrRemote = errors.New("syncproto: server error")

	// ErrStorage is returned (as a *StorageError) by Responder.Handle when
	// storing a request's commits failed: the request must then be
	// answered with a server error, never with a response, since its
	// commits are not all stored.
	ErrStorage = errors.New("syncproto: storing commits failed")

	// ErrRefused is wrapped by an error of a Repos or a Policy's View
	// whose text is written for the requester (a quota, say): the
	// repository's section is answered StatusError with that text. The
	// text of any other error is never sent (see Responder).
	ErrRefused = errors.New("syncproto: refused")
)

// RepoError is the failure of one repository in a sync; Syncer.Sync
// returns them joined (errors.Join) with any other failure.
type RepoError struct {
	Path string
	Err  error
}

func (e *RepoError) Error() string { return "sync " + e.Path + ": " + e.Err.Error() }
func (e *RepoError) Unwrap() error { return e.Err }

// StorageError is a failure to store a request's commits in repository
// Path (Responder.Handle). It matches ErrStorage and wraps the
// repository's error, whose text is for the server's log: it may name
// files.
type StorageError struct {
	Path string
	Err  error
}

func (e *StorageError) Error() string {
	return "syncproto: store commits in " + e.Path + ": " + e.Err.Error()
}

func (e *StorageError) Unwrap() []error { return []error{ErrStorage, e.Err} }

// MovedPrefix starts the message of a section that a member of a sharded
// cluster answers for a repository it does not own (StatusError): "moved
// to " and the owners' URLs, separated by spaces. A client that knows
// those URLs as nodes of its deployment syncs the repository with one of
// them; any other reads the message as an error naming where the
// repository lives.
const MovedPrefix = "moved to "

// Moved returns the repository and owner URLs of an error (a *RepoError
// whose server answered with MovedPrefix), or ok false.
func Moved(err error) (path string, owners []string, ok bool) {
	var re *RepoError
	if !errors.As(err, &re) || !errors.Is(re.Err, ErrRemote) {
		return "", nil, false
	}
	_, msg, found := strings.Cut(re.Err.Error(), ": "+MovedPrefix)
	if !found {
		return "", nil, false
	}
	return re.Path, strings.Fields(msg), true
}

// SplitMoved walks err (joined errors included) and returns the
// repositories it says moved (Moved), with their owners, and the other
// errors.
func SplitMoved(err error) (moved map[string][]string, rest []error) {
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if path, owners, ok := Moved(e); ok {
			if moved == nil {
				moved = map[string][]string{}
			}
			moved[path] = owners
			return
		}
		rest = append(rest, e)
	}
	walk(err)
	return moved, rest
}
