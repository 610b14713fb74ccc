package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// clock is a settable clock shared by a server and its test clients.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// authRig is a server with authentication on 127.0.0.1 and a clock the
// test moves.
type authRig struct {
	t     *testing.T
	db    *goatdb.DB
	run   *running
	id    *server.Identity
	root  ed25519.PrivateKey
	acc   *server.Accounts
	clock *clock
}

func newAuthRig(t *testing.T, rules *authz.Rules, tweak func(*server.AuthOptions)) *authRig {
	t.Helper()
	return newAuthRigWith(t, rules, tweak, &server.Options{RateLimit: -1})
}

// newAuthRigWith is newAuthRig with server options (Auth is set from
// rules and tweak).
func newAuthRigWith(t *testing.T, rules *authz.Rules, tweak func(*server.AuthOptions), opts *server.Options) *authRig {
	t.Helper()
	id, root, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	ao := &server.AuthOptions{Identity: id, Rules: rules, Accounts: server.AccountOptions{Now: c.Now}}
	if tweak != nil {
		tweak(ao)
	}
	db := dbtest.OpenDB(t, nil)
	o := *opts
	o.Auth = ao
	run := serve(t, db, &o, "")
	if ao.Identity != id {
		root = nil // the test's own identity: it holds the root key
	}
	return &authRig{t: t, db: db, run: run, id: ao.Identity, root: root, acc: run.srv.Accounts(), clock: c}
}

// client is a test peer that signs its requests: a session key and its
// repositories.
type client struct {
	rig   *authRig
	key   ed25519.PrivateKey
	sid   commit.SessionID
	now   func() time.Time // the client's clock; the rig's by default
	repos map[string]*repo.Repo
	echo  string // a server nonce to echo in the next request
	url   string // the server it talks to: the rig's, or another node's
}

// on returns the client talking to another node of the rig's deployment.
func (c *client) on(n *running) *client {
	d := *c
	d.url = n.url
	return &d
}

// base returns the URL of the server the client talks to.
func (c *client) base() string {
	if c.url != "" {
		return c.url
	}
	return c.rig.run.url
}

func (r *authRig) client() *client {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var sid commit.SessionID
	copy(sid[:], key.Public().(ed25519.PublicKey))
	return &client{rig: r, key: key, sid: sid, now: r.clock.Now, repos: map[string]*repo.Repo{}}
}

// login makes a user with roles and logs the client in as it.
func (c *client) login(user string, roles ...string) *client {
	t := c.rig.t
	t.Helper()
	code, _, err := c.rig.acc.AddUser(user, roles)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"user": user, "code": code})
	if st, b, _ := c.do(http.MethodPost, "/v1/auth/login", body); st != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, st, b)
	}
	return c
}

// header signs a request.
func (c *client) header(method, pathQuery string, body []byte) string {
	u, _ := url.Parse(c.base())
	h, err := authz.SignRequest(c.key, c.rig.id.Audience, authz.Request{Method: method, Host: u.Host, PathQuery: pathQuery,
		Body: authz.BodyDigest(body)}, c.now(), authz.NewNonce(), c.echo)
	if err != nil {
		c.rig.t.Fatal(err)
	}
	c.echo = ""
	return h
}

// do sends one signed request and returns the status, body and headers.
func (c *client) do(method, pathQuery string, body []byte) (int, string, http.Header) {
	return c.send(method, pathQuery, body, c.header(method, pathQuery, body))
}

// send sends a request with the given Goat-Auth header ("" for none).
func (c *client) send(method, pathQuery string, body []byte, header string) (int, string, http.Header) {
	t := c.rig.t
	t.Helper()
	req, err := http.NewRequest(method, c.base()+pathQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(authz.AuthHeaderName, header)
	}
	if pathQuery == "/v1/sync" {
		req.Header.Set("Content-Type", goatdb.SyncContentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Close {
		resp.Header.Set("Connection", "close") // the client took it out
	}
	return resp.StatusCode, string(b), resp.Header
}

// repo returns the client's copy of a repository.
func (c *client) repo(path string) *repo.Repo {
	if r := c.repos[path]; r != nil {
		return r
	}
	r := dbtest.OpenRepo(c.rig.t, path[1:]+".log", &repo.Options{Key: c.key, Name: path})
	c.repos[path] = r
	return r
}

// put writes fields into an item of the client's copy.
func (c *client) put(path, key string, fields map[string]item.Value) *commit.Commit {
	t := c.rig.t
	t.Helper()
	cs, err := c.repo(path).Write(repo.Update{Key: key, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
		v := cur.Value
		for f, x := range fields {
			v = v.With(f, x)
		}
		return v, cur.Schema, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cs[len(cs)-1]
}

// sync syncs the client's copies of paths with the server, signing each
// round.
func (c *client) sync(paths ...string) (syncproto.Stats, error) {
	s, err := syncproto.NewSyncer(syncproto.TransportFunc(func(ctx context.Context, msg []byte) ([]byte, error) {
		st, body, _ := c.do(http.MethodPost, "/v1/sync", msg)
		if st != http.StatusOK {
			return nil, &goatdb.ServerError{Status: st, Message: body}
		}
		return []byte(body), nil
	}), c.sid, nil)
	if err != nil {
		c.rig.t.Fatal(err)
	}
	locals := make([]syncproto.Local, len(paths))
	for i, p := range paths {
		locals[i] = syncproto.Local{Path: p, Repo: c.repo(p)}
	}
	return s.Sync(context.Background(), locals...)
}

// str is a string item value.
func str(s string) item.Value { return item.String(s) }

// signWith signs msg with a client's key.
func signWith(c *client, msg []byte) []byte { return ed25519.Sign(c.key, msg) }
