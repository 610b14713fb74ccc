package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/syncproto"
)

// AudienceHeader names the deployment in a server's 401 answers.
const AudienceHeader = "Goat-Audience"

// NodeCertHeader carries, on every request of a server node replicating
// its peers, the node's certificate (base64 of
// authz.NodeCertificate.Encode): a server of the same deployment that
// verifies it against its root key treats the request, signed by the
// node's key, as the node's.
const NodeCertHeader = "Goat-Node-Cert"

// NodeRulesHeader carries, beside NodeCertHeader, the fingerprint of the
// rules the node enforces (authz.Rules.Fingerprint): a peer whose rules
// differ refuses to replicate with it.
const NodeRulesHeader = "Goat-Node-Rules"

// NodeHistoryHeader carries, beside NodeCertHeader, how long the node
// keeps history, in seconds: a peer that keeps another length refuses the
// node (403), since each would refuse as below its horizon commits the
// other still accepts.
const NodeHistoryHeader = "Goat-Node-History"

// SyncContentType is the media type of sync messages on the wire.
const SyncContentType = "application/x-goatdb-sync"

// AuthPrefix is the path prefix of the routes that manage sessions; no
// Config.BeforeRequest runs before them.
const AuthPrefix = "/v1/auth/"

// maxNodeChanges is how many times a server may name another node key
// before its requests are signed with v1 only.
const maxNodeChanges = 4

// maxAuthAnswer bounds the JSON answer of an /v1/auth route.
const maxAuthAnswer = 64 << 10

// Config configures a Client. URL is required; the zero value of every
// other field is a sensible default.
type Config struct {
	// URL is the server's URL, normalised: http or https, a host, no
	// trailing slash, query or fragment.
	URL string
	// HTTP is the HTTP client; nil means one with bounded dialing and
	// headers and no overall timeout (event streams last).
	HTTP *http.Client
	// Key signs the requests; nil sends them unsigned.
	Key ed25519.PrivateKey
	// Now is this peer's clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings (a server whose node key keeps changing);
	// nil discards them.
	Logger *slog.Logger
	// NodeCert, if not "", is a server node's certificate (base64), sent
	// in NodeCertHeader with every request: the client acts as that
	// node, which keeps no login, so StoredAudience is not consulted.
	NodeCert string
	// NodeHistory, if not "", is sent in NodeHistoryHeader.
	NodeHistory string
	// NodeRules, if not "", is sent in NodeRulesHeader.
	NodeRules string
	// StoredAudience returns the audience of this peer's stored login to
	// the server, "" if none; nil means none. It is called for requests
	// sent before the server named an audience.
	StoredAudience func() string
	// BeforeRequest, if not nil, is called before every request outside
	// AuthPrefix: a peer renews its certificate there.
	BeforeRequest func(ctx context.Context)
}

// Client sends requests to one server's HTTP API, signed (see the
// package doc), and reads its answers. It is safe for concurrent use.
type Client struct {
	cfg  Config
	sign signer
}

// signer is what a Client learned from the server, in memory.
type signer struct {
	mu       sync.Mutex    // guards every field
	audience string        // last audience the server named, or ""
	offset   time.Duration // the server's clock minus ours, once a challenge said

	node        ed25519.PublicKey // last node key the server named, or nil
	reqKey      *authz.RequestKey // derived for the last node key and audience MACed for, or nil
	nodeChanges int               // times the server named another node key than the one known
	v1Only      bool              // sign with v1: the server takes no v2, or its node key keeps changing
}

// New returns a Client configured by cfg.
func New(cfg Config) *Client {
	if cfg.HTTP == nil {
		cfg.HTTP = defaultHTTPClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg}
}

// defaultHTTPClient has no overall timeout (event streams are long) but
// bounded dialing and headers; requests carry their own context.
var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	MaxIdleConnsPerHost:   16,
	IdleConnTimeout:       90 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	ForceAttemptHTTP2:     true,
}}

// URL returns the server's URL.
func (c *Client) URL() string { return c.cfg.URL }

// Audience returns the audience to sign for: the one the server named
// last, else the one of the stored login (Config.StoredAudience), else ""
// (send unsigned).
func (c *Client) Audience() string {
	c.sign.mu.Lock()
	a := c.sign.audience
	c.sign.mu.Unlock()
	if a != "" || c.cfg.NodeCert != "" || c.cfg.StoredAudience == nil {
		return a
	}
	return c.cfg.StoredAudience()
}

// SetAudience records the audience the server named, as a login answer
// did.
func (c *Client) SetAudience(a string) {
	c.sign.mu.Lock()
	c.sign.audience = a
	c.sign.mu.Unlock()
}

// clock returns the time to sign with: this peer's clock, moved by the
// offset learned from the server's last clock challenge.
func (c *Client) clock() time.Time {
	c.sign.mu.Lock()
	off := c.sign.offset
	c.sign.mu.Unlock()
	return c.cfg.Now().Add(off)
}

// learnClock takes the server's clock from the Date header of a clock
// challenge, so that the next requests are signed with a time the server
// accepts and need no challenge (the echo answers this one). The Date
// header has whole seconds; the server's window is a minute.
func (c *Client) learnClock(resp *http.Response) {
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return
	}
	off := time.Until(t)
	if off > -time.Second && off < time.Second {
		off = 0
	}
	c.sign.mu.Lock()
	c.sign.offset = off
	c.sign.mu.Unlock()
}

// Do sends a signed request to path (under the server URL) with body and
// the given headers, answering the server's audience, clock and node-key
// challenges (see the package doc), and returns the response: 2xx, or
// the error status the server gave. Before a request outside AuthPrefix
// it calls Config.BeforeRequest. A request that does not reach the
// server is an error wrapping ErrUnreachable, or the context's error.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	if !strings.HasPrefix(path, AuthPrefix) && c.cfg.BeforeRequest != nil {
		c.cfg.BeforeRequest(ctx)
	}
	aud, echo := c.Audience(), ""
	learned, echoed, rekeys := false, false, 0
	for {
		resp, used, err := c.send(ctx, method, path, body, header, aud, echo)
		if err != nil {
			return nil, err
		}
		other := c.learnNode(resp, used)
		if resp.StatusCode != http.StatusUnauthorized {
			return resp, nil
		}
		named := resp.Header.Get(AudienceHeader)
		nonce := resp.Header.Get(authz.NonceHeaderName)
		switch {
		case !learned && named != aud && validAudience(named):
			learned, aud, echo = true, named, ""
			c.SetAudience(named)
		case !echoed && aud != "" && named == aud && validEcho(nonce):
			echoed, echo = true, nonce
			c.learnClock(resp)
		case other && rekeys < 2:
			if rekeys++; rekeys == 2 {
				c.signV1("the server names another node key at each request")
			}
		default:
			return resp, nil
		}
		Drain(resp)
	}
}

// send sends one attempt, MACed or signed for aud unless aud is "" or the
// client has no key. used is the node key a v2 header was MACed for, nil
// if the request was not MACed.
func (c *Client) send(ctx context.Context, method, path string, body []byte, header http.Header, aud, echo string) (resp *http.Response, used ed25519.PublicKey, err error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.cfg.NodeCert != "" {
		req.Header.Set(NodeCertHeader, c.cfg.NodeCert)
	}
	if c.cfg.NodeRules != "" {
		req.Header.Set(NodeRulesHeader, c.cfg.NodeRules)
	}
	if c.cfg.NodeHistory != "" {
		req.Header.Set(NodeHistoryHeader, c.cfg.NodeHistory)
	}
	if aud != "" && c.cfg.Key != nil {
		var h string
		r := authz.Request{Method: method, Host: req.URL.Host, PathQuery: req.URL.RequestURI(), Body: authz.BodyDigest(body)}
		if k, node := c.requestKey(aud); k != nil {
			h, err = authz.MACRequest(k, r, c.clock(), authz.NewNonce(), echo)
			used = node
		} else {
			h, err = authz.SignRequest(c.cfg.Key, aud, r, c.clock(), authz.NewNonce(), echo)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("goatdb: sign the request to %s: %w", c.cfg.URL, err)
		}
		req.Host = req.URL.Host // the host signed is the one sent
		req.Header.Set(authz.AuthHeaderName, h)
	}
	resp, err = c.cfg.HTTP.Do(req)
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
func (c *Client) requestKey(aud string) (*authz.RequestKey, ed25519.PublicKey) {
	c.sign.mu.Lock()
	defer c.sign.mu.Unlock()
	node := c.sign.node
	if c.sign.v1Only || node == nil {
		return nil, nil
	}
	if k := c.sign.reqKey; k != nil && k.Audience() == aud && k.Node().Equal(node) {
		return k, node
	}
	k, err := authz.NewRequestKey(c.cfg.Key, node, aud)
	if err != nil {
		c.cfg.Logger.Debug("no request key for the server's node key; signing with v1", "server", c.cfg.URL, "err", err)
		return nil, nil
	}
	c.sign.reqKey = k
	return k, node
}

// learnNode takes the node key an answer named in its Goat-Node header,
// and reports whether a 401 to a request MACed for the node key used (nil
// if the request was signed with v1) named another key. A 401 to a MACed
// request that names none makes the client forget the node key.
func (c *Client) learnNode(resp *http.Response, used ed25519.PublicKey) (other bool) {
	named := resp.Header.Get(authz.NodeHeaderName)
	if named == "" {
		if used != nil && resp.StatusCode == http.StatusUnauthorized {
			c.sign.mu.Lock()
			c.sign.node, c.sign.reqKey = nil, nil
			c.sign.mu.Unlock()
		}
		return false
	}
	node, err := authz.ParseNodeKey(named)
	if err != nil {
		return false
	}
	c.SetNode(node)
	return used != nil && resp.StatusCode == http.StatusUnauthorized && !node.Equal(used)
}

// SetNode records the server's node key, as a login answer or a Goat-Node
// header named it. Past maxNodeChanges changes, requests are signed with
// v1 only.
func (c *Client) SetNode(node ed25519.PublicKey) {
	c.sign.mu.Lock()
	defer c.sign.mu.Unlock()
	if c.sign.node.Equal(node) {
		return
	}
	if c.sign.node != nil {
		c.sign.nodeChanges++
	}
	c.sign.node = node
	if c.sign.nodeChanges == maxNodeChanges+1 {
		c.signV1Locked("the server's node key changed too often")
	}
}

// signV1 makes every later request to the server signed with v1.
func (c *Client) signV1(why string) {
	c.sign.mu.Lock()
	defer c.sign.mu.Unlock()
	c.signV1Locked(why)
}

func (c *Client) signV1Locked(why string) {
	if !c.sign.v1Only {
		c.sign.v1Only = true
		c.cfg.Logger.Warn(why+" (nodes behind one address with keys of their own?); signing requests to it with v1, which costs it more CPU",
			"server", c.cfg.URL)
	}
}

// StatusError returns the error for a response that is not 2xx: a 401
// wraps ErrUnauthenticated with the login hint (see Unauthenticated),
// anything else is a *ServerError. It does not close the body.
func (c *Client) StatusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized {
		return Unauthenticated(resp, c.cfg.URL, "")
	}
	return ReadServerError(resp)
}

// Drain reads a little of a response that is not used and closes it, so
// its connection can be reused.
func Drain(resp *http.Response) {
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

// Call sends a request to AuthPrefix+route and decodes the JSON answer
// into out. A 401 wraps ErrUnauthenticated with hint (see
// Unauthenticated).
func (c *Client) Call(ctx context.Context, method, route string, body []byte, hint string, out any) error {
	h := http.Header{"Accept": {"application/json"}}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(ctx, method, AuthPrefix+route, body, h)
	if err != nil {
		return fmt.Errorf("goatdb: %s at %s: %w", route, c.cfg.URL, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return Unauthenticated(resp, c.cfg.URL, hint)
	case resp.StatusCode != http.StatusOK:
		return ReadServerError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAuthAnswer+1))
	switch {
	case err != nil:
		return fmt.Errorf("goatdb: %s at %s: %w: reading the answer: %v", route, c.cfg.URL, ErrUnreachable, err)
	case len(b) > maxAuthAnswer:
		return fmt.Errorf("goatdb: %s at %s: answer over %d bytes", route, c.cfg.URL, maxAuthAnswer)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(out); err != nil {
		return fmt.Errorf("goatdb: %s at %s: the answer is not the JSON expected: %v", route, c.cfg.URL, err)
	}
	return nil
}

var syncHeader = http.Header{"Content-Type": {SyncContentType}}

// RoundTrip carries a sync message as a signed POST to /v1/sync and
// returns the answer, of at most syncproto.MaxMessageSize bytes: the
// Client is a syncproto.Transport.
func (c *Client) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	resp, err := c.Do(ctx, http.MethodPost, "/v1/sync", msg, syncHeader)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.StatusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, syncproto.MaxMessageSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: reading the response: %v", ErrUnreachable, err)
	case len(body) > syncproto.MaxMessageSize:
		return nil, fmt.Errorf("%w: response over %d bytes", syncproto.ErrTooLarge, syncproto.MaxMessageSize)
	}
	return body, nil
}

var eventsHeader = http.Header{"Accept": {EventsContentType}}

// Events opens the server's event stream (GET /v1/events). The caller
// closes the reader. An answer other than 200 is StatusError's error.
func (c *Client) Events(ctx context.Context) (*EventReader, error) {
	resp, err := c.Do(ctx, http.MethodGet, "/v1/events", nil, eventsHeader)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.StatusError(resp)
	}
	return NewEventReader(resp.Body), nil
}
