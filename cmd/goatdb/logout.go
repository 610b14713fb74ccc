package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/goatdb/goatdb"
)

var logoutCommand = &command{
	name:    "logout",
	args:    "[URL]",
	summary: "log out of a goatdb server (without URL: of every one)",
	about: `Logout tells the server at URL to revoke this directory's session, then
forgets the login kept in DIR/credentials.json, and with it the root key
pinned at the first login there. Without URL it logs out of every server
the directory is logged in to. It prints each server it logged out of, or
"not logged in".

The login is forgotten even if the server cannot be reached; logout then
exits 2 and says that the session stays valid on the server until its
certificate expires or it is revoked there ('goatdb session revoke').`,
	setup: func(*flag.FlagSet) runFunc { return logOut },
}

func logOut(e *env, args []string) error {
	if len(args) > 1 {
		return usagef("logout", "logout takes at most one URL")
	}
	var urls []string
	if len(args) == 1 {
		url, err := goatdb.NormalizeServerURL(args[0])
		if err != nil {
			return usagef("logout", "%v", err)
		}
		urls = append(urls, url)
	}
	return e.withDB(false, func(db *goatdb.DB) error {
		if len(urls) == 0 {
			for _, l := range db.Logins() {
				urls = append(urls, l.Server)
			}
		}
		if len(urls) == 0 {
			_, err := fmt.Fprintln(e.stdout, "not logged in")
			return err
		}
		var errs []error
		for _, u := range urls {
			if err := db.Logout(e.ctx, u); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(e.stdout, "logged out of %s\n", u)
		}
		return errors.Join(errs...)
	})
}
