package goatdb

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/vfs"
)

// credFile keeps this peer's logins, one per server URL, in
// DIR/credentials.json (mode 0600):
//
//	{"version": 1, "servers": {
//	  "https://db.example.com": {
//	    "audience": "example-prod",
//	    "root": "<base64 of the deployment's root public key>",
//	    "certificate": "<base64 of the session certificate>"}}}
//
// Nothing in it is secret (certificates are public records and bind
// only this peer's key, which stays in session.key), but it says who
// this device acts as. The root key is pinned at the first login to a
// server: a later login whose certificate chains to another root is
// refused until 'goatdb logout' forgets the pin. The file is read when
// first needed and written whole, atomically, at each change. A missing
// or damaged file means "not logged in": an entry that does not decode,
// does not name this peer's session or does not chain to its root is
// dropped with a warning, never an error.
type credFile struct {
	db *DB

	mu     sync.Mutex // guards m and loaded; held across writes
	m      map[string]credential
	loaded bool
}

// credential is one server's stored login.
type credential struct {
	audience string
	root     ed25519.PublicKey
	cert     *authz.SessionCertificate
}

const credFileName = "credentials.json"

type credJSON struct {
	Version int                       `json:"version"`
	Servers map[string]credServerJSON `json:"servers"`
}

type credServerJSON struct {
	Audience    string `json:"audience"`
	Root        string `json:"root"`
	Certificate string `json:"certificate"`
}

// get returns the stored login for the server URL.
func (f *credFile) get(url string) (credential, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	c, ok := f.m[url]
	return c, ok
}

// all returns every stored login, by server URL.
func (f *credFile) all() map[string]credential {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	out := make(map[string]credential, len(f.m))
	for u, c := range f.m {
		out[u] = c
	}
	return out
}

// update calls fn with the stored login for url (ok false if none) and
// stores what it returns (nothing if keep is false), then writes the file.
// fn runs with the file's lock held, so checks and the write are atomic.
func (f *credFile) update(url string, fn func(old credential, ok bool) (c credential, keep bool, err error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load()
	old, ok := f.m[url]
	c, keep, err := fn(old, ok)
	if err != nil {
		return err
	}
	m := make(map[string]credential, len(f.m)+1)
	for u, v := range f.m {
		m[u] = v
	}
	if keep {
		m[url] = c
	} else {
		delete(m, url)
	}
	if err := f.write(m); err != nil {
		return fmt.Errorf("goatdb: save %s: %w", f.db.filePath(credFileName), err)
	}
	f.m = m
	return nil
}

func (f *credFile) write(m map[string]credential) error {
	out := credJSON{Version: 1, Servers: make(map[string]credServerJSON, len(m))}
	for u, c := range m {
		out.Servers[u] = credServerJSON{
			Audience:    c.audience,
			Root:        base64.StdEncoding.EncodeToString(c.root),
			Certificate: base64.StdEncoding.EncodeToString(c.cert.Encode()),
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := f.db.saveKey(); err != nil { // the session the logins certify
		return err
	}
	return vfs.WriteFileAtomic(f.db.fs, f.db.filePath(credFileName), append(b, '\n'), 0o600)
}

// load reads the file once.
func (f *credFile) load() {
	if f.loaded {
		return
	}
	f.loaded = true
	f.m = map[string]credential{}
	name := f.db.filePath(credFileName)
	b, err := f.db.fs.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		f.db.opts.Logger.Warn("cannot read the stored logins; acting as not logged in", "file", name, "err", err)
		return
	}
	var in credJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil || in.Version != 1 {
		if err == nil {
			err = fmt.Errorf("version %d, want 1", in.Version)
		}
		f.db.opts.Logger.Warn("ignoring damaged stored logins; log in again", "file", name, "err", err)
		return
	}
	for u, s := range in.Servers {
		c, err := f.db.decodeCredential(s)
		if err != nil {
			f.db.opts.Logger.Warn("ignoring a damaged stored login; log in again", "file", name, "server", u, "err", err)
			continue
		}
		f.m[u] = c
	}
}

// decodeCredential decodes and checks one stored login: the certificate
// is canonical, names this peer's session and chains to the root for the
// audience (at any time in its interval: expired logins stay listed).
func (db *DB) decodeCredential(s credServerJSON) (credential, error) {
	root, err := base64.StdEncoding.DecodeString(s.Root)
	if err != nil || len(root) != ed25519.PublicKeySize {
		return credential{}, errors.New("root is not a base64 Ed25519 public key")
	}
	cb, err := base64.StdEncoding.DecodeString(s.Certificate)
	if err != nil {
		return credential{}, fmt.Errorf("certificate: %v", err)
	}
	cert, err := authz.DecodeSessionCertificate(cb)
	if err != nil {
		return credential{}, err
	}
	if cert.Session() != db.session {
		return credential{}, fmt.Errorf("the certificate is for session %s, not this peer's %s", cert.Session(), db.session)
	}
	if err := cert.Verify(root, s.Audience, cert.NotBefore()); err != nil {
		return credential{}, err
	}
	return credential{audience: s.Audience, root: root, cert: cert}, nil
}

// login returns the Login a stored credential describes.
func (c credential) login(server string) Login {
	return Login{Server: server, User: c.cert.User(), Roles: slices.Clone(c.cert.Roles()),
		Session: c.cert.Session(), Expires: c.cert.Expires()}
}
