package syncproto

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Notice tells a peer that a server's repository has reached a position:
// a server pushes one when the repository changes (over Server-Sent
// Events, as the data of a "changed" event), and one per repository when a
// peer starts listening. A peer whose resume point for the repository is
// at Seq or later in the same Epoch has nothing to fetch; any other peer
// syncs. A notice alone carries no commits, so a lost, late or repeated
// notice costs at most one sync. (An event may carry the commits beside
// it: see Responder.NoticeSince and package transport.)
//
// On the wire a notice is one line of JSON:
//
//	{"repo":"/data/tasks","epoch":"8f1c2a0b9d3e4f56","seq":1234}
//
// with the epoch as 16 lowercase hex digits (JSON numbers lose precision
// above 2^53 in many languages).
type Notice struct {
	Repo  string
	Epoch uint64
	Seq   uint64
}

type noticeJSON struct {
	Repo  string `json:"repo"`
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// MaxNoticeSize bounds an encoded notice.
const MaxNoticeSize = 1024

// EncodeNotice returns the notice's one-line JSON form.
func EncodeNotice(n Notice) ([]byte, error) {
	if err := checkNoticePath(n.Repo); err != nil {
		return nil, err
	}
	b, err := json.Marshal(noticeJSON{Repo: n.Repo, Epoch: fmt.Sprintf("%016x", n.Epoch), Seq: n.Seq})
	if err == nil && len(b) > MaxNoticeSize {
		err = fmt.Errorf("%w: notice of %d bytes, over %d", ErrMalformed, len(b), MaxNoticeSize)
	}
	return b, err
}

// DecodeNotice parses a notice, strictly: only the exact bytes
// EncodeNotice writes are accepted; anything else (unknown, missing,
// duplicate or case-variant fields, trailing data) is an error wrapping
// ErrMalformed.
func DecodeNotice(b []byte) (Notice, error) {
	if len(b) > MaxNoticeSize {
		return Notice{}, fmt.Errorf("%w: notice of %d bytes, over %d", ErrMalformed, len(b), MaxNoticeSize)
	}
	var j noticeJSON
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return Notice{}, fmt.Errorf("%w: notice: %v", ErrMalformed, err)
	}
	if d.More() {
		return Notice{}, fmt.Errorf("%w: notice: trailing data", ErrMalformed)
	}
	if err := checkNoticePath(j.Repo); err != nil {
		return Notice{}, err
	}
	if len(j.Epoch) != 16 || strings.ToLower(j.Epoch) != j.Epoch {
		return Notice{}, fmt.Errorf("%w: notice epoch %q: want 16 lowercase hex digits", ErrMalformed, j.Epoch)
	}
	epoch, err := strconv.ParseUint(j.Epoch, 16, 64)
	if err != nil {
		return Notice{}, fmt.Errorf("%w: notice epoch %q: want 16 lowercase hex digits", ErrMalformed, j.Epoch)
	}
	n := Notice{Repo: j.Repo, Epoch: epoch, Seq: j.Seq}
	// Only the canonical form: the one EncodeNotice writes. This refuses
	// case-variant, duplicate, missing or null fields and stray bytes.
	if canon, err := EncodeNotice(n); err != nil || string(canon) != string(b) {
		return Notice{}, fmt.Errorf("%w: notice is not in canonical form (want %s)", ErrMalformed, canon)
	}
	return n, nil
}

func checkNoticePath(p string) error {
	if p == "" || len(p) > MaxPathLen || p[0] != '/' {
		return fmt.Errorf("%w: notice repository %q: want a path /type/repo of at most %d bytes", ErrMalformed, p, MaxPathLen)
	}
	return nil
}
