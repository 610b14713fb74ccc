package main

import (
	"flag"
	"fmt"

	"github.com/goatdb/goatdb"
)

var whoamiCommand = &command{
	name:    "whoami",
	args:    "",
	summary: "print the servers this directory is logged in to, as whom, until when",
	about: `Whoami prints, for each server the data directory is logged in to
('goatdb login'), the user, its roles, the server and when the login
expires, from DIR/credentials.json; it asks no server. With no login it
prints "not logged in". --json prints one JSON object per login:
{"server", "user", "roles", "session", "expires"}.

Whoami only reads: it creates nothing and works beside a running goatdb.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print one JSON object per login")
		return func(e *env, args []string) error { return whoAmI(e, args, *asJSON) }
	},
}

type loginJSON struct {
	Server  string   `json:"server"`
	User    string   `json:"user"`
	Roles   []string `json:"roles"`
	Session string   `json:"session"`
	Expires string   `json:"expires"`
}

func whoAmI(e *env, args []string, asJSON bool) error {
	if len(args) != 0 {
		return usagef("whoami", "whoami takes no arguments")
	}
	return e.withDB(true, func(db *goatdb.DB) error {
		ls := db.Logins()
		if len(ls) == 0 && !asJSON {
			_, err := fmt.Fprintln(e.stdout, "not logged in")
			return err
		}
		for i, l := range ls {
			var err error
			switch {
			case asJSON:
				roles := l.Roles
				if roles == nil {
					roles = []string{}
				}
				err = writeJSON(e.stdout, loginJSON{Server: l.Server, User: l.User, Roles: roles,
					Session: l.Session.String(), Expires: formatExpiry(l.Expires)})
			default:
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				err = printLogin(e.stdout, l)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}
