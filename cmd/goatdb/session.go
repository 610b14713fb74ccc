package main

import (
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/server"
)

var sessionCommand = &command{
	name:    "session",
	args:    "list|revoke [SESSION]",
	summary: "list and revoke the logged-in sessions of a server's data directory",
	about: `Session lists and revokes the sessions (devices) logged in to 'goatdb serve'
on DIR. Like 'goatdb user', it works while the server runs (through its
admin socket DIR/auth/admin.sock) and while it is stopped.

session list prints each session that logged in: its id (the device's
public key, as 'goatdb init' prints it), its user ("-" for an anonymous
session), roles, when its certificate expires, and whether it is revoked.
--json prints one JSON object per line: {"session", "user", "roles",
"expires", "revoked"}.

session revoke SESSION voids the session from now on: its next request is
refused, and the device must log in again ('goatdb login'). A SESSION
that is not a session id, or that never logged in here, exits 2.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "with list: print JSON lines")
		return func(e *env, args []string) error { return manageSessions(e, args, *asJSON) }
	},
}

func manageSessions(e *env, args []string, asJSON bool) error {
	if len(args) == 0 {
		return usagef("session", "session needs list or revoke SESSION")
	}
	sub, args := args[0], args[1:]
	if asJSON && sub != "list" {
		return usagef("session", "--json goes with session list")
	}
	switch sub {
	case "list":
		if len(args) != 0 {
			return usagef("session", "session list takes no arguments")
		}
		return sessionList(e, asJSON)
	case "revoke":
		if len(args) != 1 {
			return usagef("session", "session revoke takes one SESSION")
		}
		return sessionRevoke(e, args[0])
	}
	return usagef("session", "unknown session command %q; want list or revoke", sub)
}

type sessionJSON struct {
	Session string   `json:"session"`
	User    string   `json:"user"`
	Roles   []string `json:"roles"`
	Expires string   `json:"expires"`
	Revoked bool     `json:"revoked"`
}

func sessionList(e *env, asJSON bool) error {
	return e.withAdmin(adminList, func(a server.Admin) error {
		var sessions []server.SessionInfo
		if a != nil {
			var err error
			if sessions, err = a.Sessions(); err != nil {
				return adminError(err, "")
			}
		}
		if asJSON {
			for _, s := range sessions {
				out := sessionJSON{s.Session.String(), s.User, nonNil(s.Roles), s.Expires.UTC().Format(time.RFC3339), s.Revoked}
				if err := writeJSON(e.stdout, out); err != nil {
					return err
				}
			}
			return nil
		}
		if len(sessions) == 0 {
			_, err := fmt.Fprintln(e.stdout, "no sessions; a client logs in with 'goatdb login URL NAME --code CODE'")
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tUSER\tROLES\tEXPIRES\tREVOKED")
		for _, s := range sessions {
			u := s.User
			if u == "" {
				u = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Session, u, roleList(s.Roles), s.Expires.UTC().Format(time.RFC3339), yesNo(s.Revoked))
		}
		return tw.Flush()
	})
}

func sessionRevoke(e *env, arg string) error {
	sid, err := commit.ParseSessionID(arg)
	if err != nil {
		return final(fmt.Errorf("invalid session %q: want a session id, 52 characters of A-Z 2-7 ('goatdb session list' lists them)", arg))
	}
	return e.withAdmin(adminChange, func(a server.Admin) error {
		if a == nil {
			return adminError(server.ErrNoSession, sid.String())
		}
		if err := a.RevokeSession(sid); err != nil {
			return adminError(err, sid.String())
		}
		_, err := fmt.Fprintf(e.stdout, "revoked session %s: its device must log in again to sync\n", sid)
		return err
	})
}
