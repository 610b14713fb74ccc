package goatdb

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb/authz"
)

// Every request this peer sends to a server's /v1 routes carries a
// Goat-Auth header of at most authz.MaxHeaderLen bytes, which servers
// without authentication ignore. It names the server's deployment (its
// audience) and is either signed with the session key (v1,
// authz.SignRequest: an Ed25519 signature for the server to verify) or,
// once the server has named its node's public key, MACed with the request
// key the session shares with that node (v2, authz.MACRequest: a keyed
// hash to check). A server that takes v2 headers names its node key in a
// login or renewal answer and in a Goat-Node header of its answers to v1
// requests and of its 401s; the request key is derived once per server,
// node key and audience, and kept in memory. A server that refuses a
// request answers 401 with the audience in a Goat-Audience header, and,
// when the request's time was too far from its clock, a server nonce in
// Goat-Nonce. So:
//
//   - A peer that does not know a server's audience yet (never logged in
//     there, nothing learned since the database was opened) sends its
//     first request unsigned, learns the audience from the 401 and sends
//     the request again, signed.
//   - A 401 that names another audience than the one signed for is
//     answered the same way, once.
//   - A 401 with a Goat-Nonce is answered by signing the same request again
//     with the nonce echoed, once, so a device with a wrong clock works.
//     The server's clock, from the answer's Date header, then moves the
//     time later requests to that server are signed with, so they need no
//     challenge.
//   - A 401 to a v2 request that names another node key than the one the
//     request was MACed for (the server's key changed) is answered by
//     MACing the request again for that key, once. If that is refused
//     naming yet another key, the address leads to several nodes that do
//     not share a key: the request is signed with v1, as every later one to
//     that server; so it is too once the server has named another node
//     key more than maxNodeChanges times.
//   - A 401 to a v2 request that names no node key (a server that no
//     longer takes v2, or a refusal by the route itself) makes the peer
//     forget the node key: later requests are signed with v1 until an
//     answer names one again.
//
// Anything else, and a fifth 401, is the answer: ErrUnauthenticated.

// audienceHeader names the deployment in a server's 401 answers.
const audienceHeader = "Goat-Audience"

// NodeCertHeader carries, on every request of a server node replicating
// its peers (SyncOptions.Node), the node's certificate (base64 of
// authz.NodeCertificate.Encode): a server of the same deployment that
// verifies it against its root key treats the request, signed by the
// node's key, as the node's.
const NodeCertHeader = "Goat-Node-Cert"

// NodeHistoryHeader carries, beside NodeCertHeader, how long the node
// keeps history (NodeAuth.History), in seconds: a peer that keeps another
// length refuses the node (403), since each would refuse as below its
// horizon commits the other still accepts.
const NodeHistoryHeader = "Goat-Node-History"

// authPrefix is the path prefix of the routes that manage sessions; no
// certificate renewal runs before them.
const authPrefix = "/v1/auth/"

// maxNodeChanges is how many times a server may name another node key
// before its requests are signed with v1 only.
const maxNodeChanges = 4

// signer is what a remote needs to sign its requests: the audience and
// node key it learned from the server (in memory) and the renewal state.
type signer struct {
	mu       sync.Mutex    // guards audience, offset, node, reqKey, nodeChanges and v1Only
	audience string        // last audience the server named, or ""
	offset   time.Duration // the server's clock minus ours, once a challenge said

	node        ed25519.PublicKey // last node key the server named, or nil
	reqKey      *authz.RequestKey // derived for the last node key and audience MACed for, or nil
	nodeChanges int               // times the server named another node key than the one known
	v1Only      bool              // sign with v1: the server takes no v2, or its node key keeps changing

	renewMu    sync.Mutex // serialises renewals; guards renewAfter
	renewAfter time.Time  // no renewal before this, after one failed
}

// audience returns the audience to sign for: the one the server named
// last, else the one of the stored credential, else "" (send unsigned).
func (rm *remote) audience() string {
	rm.sign.mu.Lock()
	a := rm.sign.audience
	rm.sign.mu.Unlock()
	if a != "" {
		return a
	}
	if rm.nodeCert != "" {
		return "" // a node keeps no login: the server names its audience
	}
	if c, ok := rm.db.creds.get(rm.url); ok {
		return c.audience
	}
	return ""
}

func (rm *remote) setAudience(a string) {
	rm.sign.mu.Lock()
	rm.sign.audience = a
	rm.sign.mu.Unlock()
}

// clock returns the time to sign with: this peer's clock, moved by the
// offset learned from the server's last clock challenge.
func (rm *remote) clock() time.Time {
	rm.sign.mu.Lock()
	off := rm.sign.offset
	rm.sign.mu.Unlock()
	return rm.db.opts.Now().Add(off)
}

// learnClock takes the server's clock from the Date header of a clock
// challenge, so that the next requests are signed with a time the server
// accepts and need no challenge (the echo answers this one). The Date
// header has whole seconds; the server's window is a minute.
func (rm *remote) learnClock(resp *http.Response) {
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return
	}
	off := time.Until(t)
	if off > -time.Second && off < time.Second {
		off = 0
	}
	rm.sign.mu.Lock()
	rm.sign.offset = off
	rm.sign.mu.Unlock()
}

// do sends a signed request to path (under the server URL) with body and
// the given headers, answering the server's audience and clock challenges
// (see above), and returns the response: 2xx, or the error status the
// server gave. Before a request outside /v1/auth/ it renews the stored
// certificate if less than half of its lifetime is left. A request that
// does not reach the server is an error wrapping ErrUnreachable, or the
// context's error.
func (rm *remote) do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	if !strings.HasPrefix(path, authPrefix) {
		rm.maybeRenew(ctx)
	}
	aud, echo := rm.audience(), ""
	learned, echoed, rekeys := false, false, 0
	for {
		resp, used, err := rm.send(ctx, method, path, body, header, aud, echo)
		if err != nil {
			return nil, err
		}
		other := rm.learnNode(resp, used)
		if resp.StatusCode != http.StatusUnauthorized {
			return resp, nil
		}
		named := resp.Header.Get(audienceHeader)
		nonce := resp.Header.Get(authz.NonceHeaderName)
		switch {
		case !learned && named != aud && validAudience(named):
			learned, aud, echo = true, named, ""
			rm.setAudience(named)
		case !echoed && aud != "" && named == aud && validEcho(nonce):
			echoed, echo = true, nonce
			rm.learnClock(resp)
		case other && rekeys < 2:
			if rekeys++; rekeys == 2 {
				rm.signV1("the server names another node key at each request")
			}
		default:
			return resp, nil
		}
		drain(resp)
	}
}

// send sends one attempt, MACed or signed for aud unless aud is "" or the
// peer has no key (a read-only database without one). used is the node
// key a v2 header was MACed for, nil if the request was not MACed.
func (rm *remote) send(ctx context.Context, method, path string, body []byte, header http.Header, aud, echo string) (resp *http.Response, used ed25519.PublicKey, err error) {
	req, err := http.NewRequestWithContext(ctx, method, rm.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if rm.nodeCert != "" {
		req.Header.Set(NodeCertHeader, rm.nodeCert)
	}
	if rm.nodeHist != "" {
		req.Header.Set(NodeHistoryHeader, rm.nodeHist)
	}
	if aud != "" && rm.key != nil {
		var h string
		r := authz.Request{Method: method, Host: req.URL.Host, PathQuery: req.URL.RequestURI(), Body: authz.BodyDigest(body)}
		if k, node := rm.requestKey(aud); k != nil {
			h, err = authz.MACRequest(k, r, rm.clock(), authz.NewNonce(), echo)
			used = node
		} else {
			h, err = authz.SignRequest(rm.key, aud, r, rm.clock(), authz.NewNonce(), echo)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("goatdb: sign the request to %s: %w", rm.url, err)
		}
		req.Host = req.URL.Host // the host signed is the one sent
		req.Header.Set(authz.AuthHeaderName, h)
	}
	resp, err = rm.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return resp, used, nil
}

// requestKey returns the request key to MAC a request for aud with, and
// the node key it is for, deriving it if the node key or the audience
// changed; nil if requests to this server are signed with v1 (no node key
// known, or v1Only).
func (rm *remote) requestKey(aud string) (*authz.RequestKey, ed25519.PublicKey) {
	rm.sign.mu.Lock()
	defer rm.sign.mu.Unlock()
	node := rm.sign.node
	if rm.sign.v1Only || node == nil {
		return nil, nil
	}
	if k := rm.sign.reqKey; k != nil && k.Audience() == aud && k.Node().Equal(node) {
		return k, node
	}
	k, err := authz.NewRequestKey(rm.key, node, aud)
	if err != nil {
		rm.db.opts.Logger.Debug("no request key for the server's node key; signing with v1", "server", rm.url, "err", err)
		return nil, nil
	}
	rm.sign.reqKey = k
	return k, node
}

// learnNode takes the node key an answer named in its Goat-Node header,
// and reports whether a 401 to a request MACed for the node key used (nil
// if the request was signed with v1) named another key. A 401 to a MACed
// request that names none makes the peer forget the node key.
func (rm *remote) learnNode(resp *http.Response, used ed25519.PublicKey) (other bool) {
	named := resp.Header.Get(authz.NodeHeaderName)
	if named == "" {
		if used != nil && resp.StatusCode == http.StatusUnauthorized {
			rm.sign.mu.Lock()
			rm.sign.node, rm.sign.reqKey = nil, nil
			rm.sign.mu.Unlock()
		}
		return false
	}
	node, err := authz.ParseNodeKey(named)
	if err != nil {
		return false
	}
	rm.setNode(node)
	return used != nil && resp.StatusCode == http.StatusUnauthorized && !node.Equal(used)
}

// setNode records the server's node key, as a login answer or a
// Goat-Node header named it. Past maxNodeChanges changes, requests are
// signed with v1 only.
func (rm *remote) setNode(node ed25519.PublicKey) {
	rm.sign.mu.Lock()
	defer rm.sign.mu.Unlock()
	if rm.sign.node.Equal(node) {
		return
	}
	if rm.sign.node != nil {
		rm.sign.nodeChanges++
	}
	rm.sign.node = node
	if rm.sign.nodeChanges == maxNodeChanges+1 {
		rm.signV1Locked("the server's node key changed too often")
	}
}

// signV1 makes every later request to the server signed with v1.
func (rm *remote) signV1(why string) {
	rm.sign.mu.Lock()
	defer rm.sign.mu.Unlock()
	rm.signV1Locked(why)
}

func (rm *remote) signV1Locked(why string) {
	if !rm.sign.v1Only {
		rm.sign.v1Only = true
		rm.db.opts.Logger.Warn(why+" (nodes behind one address with keys of their own?); signing requests to it with v1, which costs it more CPU",
			"server", rm.url)
	}
}

// drain reads a little of a response that is not used and closes it, so
// its connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// validAudience reports whether a is a deployment name a request can be
// signed for: 1–128 characters of A-Z a-z 0-9 . _ -, not . or ..
func validAudience(a string) bool {
	if len(a) == 0 || len(a) > 128 || a == "." || a == ".." {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validEcho reports whether a server nonce can be echoed: 24 bytes in
// unpadded base64url, as authz spells them.
func validEcho(n string) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	return err == nil && len(b) == 24 && base64.RawURLEncoding.EncodeToString(b) == n
}

// unauthenticated turns a 401 answer into an error that wraps both
// ErrUnauthenticated and the *ServerError, and says what to do.
func unauthenticated(resp *http.Response, serverURL, hint string) error {
	return &authError{se: serverError(resp), hint: hint, url: serverURL}
}

type authError struct {
	se   *ServerError
	url  string
	hint string // what to do, or "" for the login hint
}

func (e *authError) Error() string {
	hint := e.hint
	if hint == "" {
		hint = fmt.Sprintf("not logged in there, or the login expired or was revoked: run 'goatdb login %s NAME --code CODE'", e.url)
	}
	return fmt.Sprintf("%v; %s", e.se, hint)
}

func (e *authError) Unwrap() []error { return []error{ErrUnauthenticated, e.se} }

// statusError returns the error for a response that is not 2xx.
func (rm *remote) statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return unauthenticated(resp, rm.url, "")
	}
	return serverError(resp)
}
