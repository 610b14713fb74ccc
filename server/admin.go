package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goatdb/goatdb/commit"
)

// AdminSocket is the path of the admin socket in a data directory: in
// the identity's folder auth/ (mode 0700), so that only the data
// directory's owner reaches it from the moment it exists.
const AdminSocket = "auth/admin.sock"

// Admin is what an operator does to a deployment's accounts. *Accounts
// does it in process (a server that is not running); *AdminClient does it
// through a running server's admin socket.
type Admin interface {
	AddUser(name string, roles []string) (code string, expires time.Time, err error)
	Users() ([]User, error)
	RevokeUser(name string) error
	Sessions() ([]SessionInfo, error)
	RevokeSession(session commit.SessionID) error
}

var (
	_ Admin = (*Accounts)(nil)
	_ Admin = (*AdminClient)(nil)
)

// ServeAdmin serves account administration on a Unix socket at path
// (created with mode 0600 in a folder of mode 0700, replacing a stale
// one) until ctx ends. Whoever
// can connect acts as the deployment's root: the socket lives in the data
// directory, and access to the data directory is root access anyway.
func (s *Server) ServeAdmin(ctx context.Context, path string) error {
	if s.accounts == nil {
		return errors.New("server: no accounts to administer: authentication is off")
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("server: admin socket %s is in use by another server", path)
	}
	// The socket's folder is the owner's alone, so the socket cannot be
	// reached in the moment before its own mode is set.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("server: admin socket: %w", err)
	}
	hs := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-errc
	}
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

type adminUser struct {
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled,omitempty"`
	Code     string   `json:"code,omitempty"`
	Expires  string   `json:"expires,omitempty"`
}

type adminSession struct {
	Session   string   `json:"session"`
	User      string   `json:"user"`
	Roles     []string `json:"roles"`
	NotBefore string   `json:"not_before"`
	Expires   string   `json:"expires"`
	Revoked   bool     `json:"revoked,omitempty"`
}

// AdminHandler is the admin API over accounts: POST /users
// {"name","roles"} answers the new login code; GET /users; POST
// /users/revoke {"name"}; GET /sessions; POST /sessions/revoke
// {"session"}. Errors are one line of text with a 4xx or 5xx status.
func AdminHandler(acc *Accounts) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNoUser), errors.Is(err, ErrNoSession):
			code = http.StatusNotFound
		case errors.Is(err, errAdminInput):
			code = http.StatusBadRequest
		}
		httpError(w, code, "%v", err)
	}
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var in adminUser
		if err := readJSON(r, &in); err != nil {
			fail(w, fmt.Errorf("%w: %v", errAdminInput, err))
			return
		}
		code, exp, err := acc.AddUser(in.Name, in.Roles)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, adminUser{Name: in.Name, Roles: in.Roles, Code: code, Expires: exp.UTC().Format(time.RFC3339)})
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		us, err := acc.Users()
		if err != nil {
			fail(w, err)
			return
		}
		out := make([]adminUser, len(us))
		for i, u := range us {
			out[i] = adminUser{Name: u.Name, Roles: u.Roles, Disabled: u.Disabled}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("POST /users/revoke", func(w http.ResponseWriter, r *http.Request) {
		var in adminUser
		if err := readJSON(r, &in); err != nil {
			fail(w, fmt.Errorf("%w: %v", errAdminInput, err))
			return
		}
		if err := acc.RevokeUser(in.Name); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, struct{}{})
	})
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		ss, err := acc.Sessions()
		if err != nil {
			fail(w, err)
			return
		}
		out := make([]adminSession, len(ss))
		for i, s := range ss {
			out[i] = adminSession{Session: s.Session.String(), User: s.User, Roles: s.Roles,
				NotBefore: s.NotBefore.UTC().Format(time.RFC3339), Expires: s.Expires.UTC().Format(time.RFC3339), Revoked: s.Revoked}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("POST /sessions/revoke", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Session string `json:"session"`
		}
		if err := readJSON(r, &in); err != nil {
			fail(w, fmt.Errorf("%w: %v", errAdminInput, err))
			return
		}
		sid, err := commit.ParseSessionID(in.Session)
		if err != nil {
			fail(w, fmt.Errorf("%w: session %q: %v", errAdminInput, in.Session, err))
			return
		}
		if err := acc.RevokeSession(sid); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, struct{}{})
	})
	return mux
}

var errAdminInput = errors.New("server: bad admin request")

// AdminClient administers a running server through its admin socket.
type AdminClient struct {
	client *http.Client
}

// DialAdmin returns a client of the admin socket in data directory dir,
// or an error wrapping os.ErrNotExist if no server answers there (none is
// running: administer the accounts in process then).
func DialAdmin(dir string) (*AdminClient, error) {
	path := filepath.Join(dir, AdminSocket)
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("server: no server answers on %s: %w", path, os.ErrNotExist)
	}
	c.Close()
	return &AdminClient{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}}, nil
}

// call makes one admin request; out, if not nil, receives the JSON
// answer.
func (c *AdminClient) call(method, route string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://admin"+route, body)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("server: admin socket: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		switch resp.StatusCode {
		case http.StatusNotFound:
			if strings.Contains(msg, "session") {
				return fmt.Errorf("%w: %s", ErrNoSession, msg)
			}
			return fmt.Errorf("%w: %s", ErrNoUser, msg)
		case http.StatusBadRequest:
			return fmt.Errorf("%w: %s", errAdminInput, msg)
		}
		return errors.New(msg)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// AddUser creates or re-enables a user and returns a new login code.
func (c *AdminClient) AddUser(name string, roles []string) (string, time.Time, error) {
	var out adminUser
	if err := c.call(http.MethodPost, "/users", adminUser{Name: name, Roles: roles}, &out); err != nil {
		return "", time.Time{}, err
	}
	exp, err := time.Parse(time.RFC3339, out.Expires)
	return out.Code, exp, err
}

// Users lists the users.
func (c *AdminClient) Users() ([]User, error) {
	var out []adminUser
	if err := c.call(http.MethodGet, "/users", nil, &out); err != nil {
		return nil, err
	}
	us := make([]User, len(out))
	for i, u := range out {
		us[i] = User{Name: u.Name, Roles: u.Roles, Disabled: u.Disabled}
	}
	return us, nil
}

// RevokeUser disables a user and revokes its sessions.
func (c *AdminClient) RevokeUser(name string) error {
	return c.call(http.MethodPost, "/users/revoke", adminUser{Name: name}, nil)
}

// Sessions lists the certified sessions.
func (c *AdminClient) Sessions() ([]SessionInfo, error) {
	var out []adminSession
	if err := c.call(http.MethodGet, "/sessions", nil, &out); err != nil {
		return nil, err
	}
	ss := make([]SessionInfo, len(out))
	for i, s := range out {
		sid, err := commit.ParseSessionID(s.Session)
		if err != nil {
			return nil, err
		}
		nb, _ := time.Parse(time.RFC3339, s.NotBefore)
		exp, _ := time.Parse(time.RFC3339, s.Expires)
		ss[i] = SessionInfo{Session: sid, User: s.User, Roles: s.Roles, NotBefore: nb, Expires: exp, Revoked: s.Revoked}
	}
	return ss, nil
}

// RevokeSession revokes one session.
func (c *AdminClient) RevokeSession(session commit.SessionID) error {
	return c.call(http.MethodPost, "/sessions/revoke", map[string]string{"session": session.String()}, nil)
}
