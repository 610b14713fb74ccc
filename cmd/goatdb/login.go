package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goatdb/goatdb"
)

var loginCommand = &command{
	name:    "login",
	args:    "URL NAME --code CODE",
	summary: "log this directory's session in to a goatdb server as user NAME",
	about: `Login logs the data directory's session (its key, DIR/session.key) in to
the goatdb server at URL as user NAME, with a one-time login code made on
the server by 'goatdb user add NAME'. The server answers with a session
certificate, which login checks before it keeps it in DIR/credentials.json
(mode 0600): it must name this session and chain to the deployment's root
key, which is pinned at the first login to URL; a later login to URL whose
root key differs is refused until 'goatdb logout URL'. From then on sync
signs every request to URL for that deployment, and renews the certificate
once less than half of its lifetime is left.

Login prints the user, its roles, the server and when the login expires.
A wrong, used or expired code exits 2.`,
	setup: func(fs *flag.FlagSet) runFunc {
		code := fs.String("code", "", "the one-time login `CODE` from 'goatdb user add'")
		return func(e *env, args []string) error { return logIn(e, args, *code) }
	},
}

func logIn(e *env, args []string, code string) error {
	if len(args) != 2 {
		return usagef("login", "login needs the server URL and the user NAME")
	}
	if code == "" {
		return usagef("login", "login needs --code CODE, the one-time code from 'goatdb user add %s' on the server", args[1])
	}
	url, err := goatdb.NormalizeServerURL(args[0])
	if err != nil {
		return usagef("login", "%v", err)
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		l, err := db.LoginCode(e.ctx, url, args[1], code)
		if err != nil {
			return err
		}
		return printLogin(e.stdout, l)
	})
}

// printLogin prints a login as lines of "name: value".
func printLogin(w io.Writer, l goatdb.Login) error {
	user := l.User
	if user == "" {
		user = "(anonymous)"
	}
	roles := strings.Join(l.Roles, " ")
	if roles == "" {
		roles = "-"
	}
	expires := formatExpiry(l.Expires)
	if !l.Expires.IsZero() && !time.Now().Before(l.Expires) {
		expires += " (expired)"
	}
	_, err := fmt.Fprintf(w, "user:    %s\nroles:   %s\nserver:  %s\nexpires: %s\n", user, roles, l.Server, expires)
	return err
}

func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
