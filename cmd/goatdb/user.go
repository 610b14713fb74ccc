package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/server"
)

var userCommand = &command{
	name:    "user",
	args:    "add|list|revoke [NAME]",
	summary: "add, list and revoke the users of a server's data directory",
	about: `User manages who may log in to 'goatdb serve' on DIR. It works while the
server runs (through its admin socket DIR/auth/admin.sock) and while it is
stopped (on the data directory itself).

user add NAME [--role ROLE]... creates the user, or gives an existing one
these roles and enables it again, and prints a one-time login code as the
last line of standard output, after a line saying for whom it is and when
it expires (24 hours). On the client, 'goatdb login URL NAME --code CODE'
uses it up. Running user add again makes a new code (one per device).
Roles (repeatable --role) are what rules files test with hasRole.

user list prints the users: name, roles, and whether they are disabled.
--json prints one JSON object per line: {"name", "roles", "disabled"}.

user revoke NAME disables the user and voids every session it logged in;
a later 'goatdb user add NAME' enables it again with a new code.

NAME and ROLE are 1-128 (roles 1-64) characters of A-Z a-z 0-9 . _ -. An
invalid name, or one that is not a user, exits 2.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var roles listFlag
		fs.Var(&roles, "role", "with add: give the user `ROLE` (repeatable)")
		asJSON := fs.Bool("json", false, "with list: print JSON lines")
		return func(e *env, args []string) error { return manageUsers(e, args, roles, *asJSON) }
	},
}

func manageUsers(e *env, args []string, roles []string, asJSON bool) error {
	if len(args) == 0 {
		return usagef("user", "user needs add NAME, list or revoke NAME")
	}
	sub, args := args[0], args[1:]
	if len(roles) > 0 && sub != "add" {
		return usagef("user", "--role goes with user add")
	}
	if asJSON && sub != "list" {
		return usagef("user", "--json goes with user list")
	}
	switch sub {
	case "add":
		if len(args) != 1 {
			return usagef("user", "user add takes one NAME")
		}
		return userAdd(e, args[0], roles)
	case "list":
		if len(args) != 0 {
			return usagef("user", "user list takes no arguments")
		}
		return userList(e, asJSON)
	case "revoke":
		if len(args) != 1 {
			return usagef("user", "user revoke takes one NAME")
		}
		return userRevoke(e, args[0])
	}
	return usagef("user", "unknown user command %q; want add, list or revoke", sub)
}

func userAdd(e *env, name string, roles []string) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if len(roles) > authz.MaxRoles {
		return final(fmt.Errorf("%d roles: a user has at most %d", len(roles), authz.MaxRoles))
	}
	for _, r := range roles {
		if commit.ValidKey(r) != nil || len(r) > authz.MaxRoleLen {
			return final(fmt.Errorf("invalid role %q: use 1-%d characters of A-Z a-z 0-9 . _ - (not . or ..)", r, authz.MaxRoleLen))
		}
	}
	return e.withAdmin(adminAdd, func(a server.Admin) error {
		code, expires, err := a.AddUser(name, roles)
		if err != nil {
			return adminError(err, name)
		}
		who := name
		if len(roles) > 0 {
			who += " (roles " + strings.Join(slices.Compact(slices.Sorted(slices.Values(roles))), ", ") + ")"
		}
		_, err = fmt.Fprintf(e.stdout, "one-time login code for %s, expires %s:\n%s\n",
			who, expires.UTC().Format(time.RFC3339), code)
		return err
	})
}

// checkUserName checks a user name as the server will: a path part.
func checkUserName(name string) error {
	if commit.ValidKey(name) != nil || len(name) > authz.MaxUserLen {
		return final(fmt.Errorf("invalid user name %q: use 1-%d characters of A-Z a-z 0-9 . _ - (not . or ..)", name, authz.MaxUserLen))
	}
	return nil
}

type userJSON struct {
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled"`
}

func userList(e *env, asJSON bool) error {
	return e.withAdmin(adminList, func(a server.Admin) error {
		var users []server.User
		if a != nil {
			var err error
			if users, err = a.Users(); err != nil {
				return adminError(err, "")
			}
		}
		if asJSON {
			for _, u := range users {
				if err := writeJSON(e.stdout, userJSON{u.Name, nonNil(u.Roles), u.Disabled}); err != nil {
					return err
				}
			}
			return nil
		}
		if len(users) == 0 {
			_, err := fmt.Fprintln(e.stdout, "no users; 'goatdb user add NAME' adds one")
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLES\tDISABLED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, roleList(u.Roles), yesNo(u.Disabled))
		}
		return tw.Flush()
	})
}

func userRevoke(e *env, name string) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	return e.withAdmin(adminChange, func(a server.Admin) error {
		if a == nil {
			return adminError(server.ErrNoUser, name)
		}
		if err := a.RevokeUser(name); err != nil {
			return adminError(err, name)
		}
		_, err := fmt.Fprintf(e.stdout, "revoked user %s: it is disabled and its sessions are void; 'goatdb user add %s' enables it again\n", name, name)
		return err
	})
}

// adminAccess is what an account command does to the data directory
// when no server runs on it.
type adminAccess int

const (
	adminList   adminAccess = iota // read it only: nothing is created
	adminChange                    // change existing accounts: nothing is created
	adminAdd                       // add to them, creating DIR's identity if need be
)

// withAdmin runs fn on the accounts of the data directory: through the
// admin socket of the 'goatdb serve' running on it, or, when none runs,
// on the directory opened here. A directory that is not a data directory
// exits 1; fn gets a nil Admin (no accounts) for adminList and
// adminChange if the directory has no deployment identity yet.
func (e *env) withAdmin(access adminAccess, fn func(server.Admin) error) error {
	c, err := server.DialAdmin(e.dir)
	switch {
	case err == nil:
		return fn(c)
	case !errors.Is(err, os.ErrNotExist):
		return final(err)
	}
	logger := slog.New(&warnHandler{mu: new(sync.Mutex), w: e.stderr})
	db, err := goatdb.Open(e.dir, &goatdb.Options{ReadOnly: access == adminList, Logger: logger, MustExist: true})
	if err != nil {
		return e.openError(err, fmt.Sprintf("in use by a goatdb process that does not answer on its admin socket %s (is its path too long for a Unix socket?); stop that process and run this again, or run 'goatdb serve' from a shorter --dir path",
			filepath.Join(e.dir, server.AdminSocket)))
	}
	err = e.withAccounts(db, access, logger, fn)
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", e.dir, cerr))
	}
	return err
}

// noAdminSocket says what to do about a data directory held by a process
// that does not answer on its admin socket, for openError.
func noAdminSocket(dir string) string {
	return fmt.Sprintf("in use by a goatdb process that does not answer on its admin socket %s; stop it and run this again",
		filepath.Join(dir, server.AdminSocket))
}

// withAccounts opens the accounts kept in db and runs fn on them.
func (e *env) withAccounts(db *goatdb.DB, access adminAccess, logger *slog.Logger, fn func(server.Admin) error) error {
	if access != adminAdd && !fileExists(filepath.Join(e.dir, "auth")) {
		return fn(nil)
	}
	id, err := server.OpenIdentity(e.dir)
	if err != nil {
		return final(err)
	}
	acc, err := server.OpenAccounts(db, id, &server.AccountOptions{Logger: logger})
	if err != nil {
		return final(err)
	}
	return fn(acc)
}

// adminError turns the error of an account operation on a user or
// session named target into the command's.
func adminError(err error, target string) error {
	switch {
	case errors.Is(err, server.ErrNoUser):
		return final(fmt.Errorf("no user %s; 'goatdb user list' lists the users", target))
	case errors.Is(err, server.ErrNoSession):
		return final(fmt.Errorf("no session %s was ever logged in here; 'goatdb session list' lists the sessions", target))
	}
	return final(err)
}

func roleList(roles []string) string {
	if len(roles) == 0 {
		return "-"
	}
	return strings.Join(roles, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
