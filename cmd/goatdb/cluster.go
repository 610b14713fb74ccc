package main

import (
	"flag"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

var rootCommand = &command{
	name:    "root",
	args:    "init --out FILE",
	summary: "make the root key of a deployment of several servers",
	about: `Root init makes a new deployment: a random audience name (or --audience)
and a root key, written to FILE (readable only by its owner; an existing
file is never replaced). The root key certifies each server node of the
deployment ('goatdb node init'); keep FILE offline, away from the nodes.
It prints the audience and the root's public key.`,
	setup: func(fs *flag.FlagSet) runFunc {
		out := fs.String("out", "", "write the root key to `FILE`")
		audience := fs.String("audience", "", "name the deployment `NAME` (default: goatdb- and 16 random hex digits)")
		return func(e *env, args []string) error {
			if len(args) != 1 || args[0] != "init" {
				return usagef("root", "root takes init")
			}
			if *out == "" {
				return usagef("root", "root init needs --out FILE")
			}
			aud, key, err := server.NewRoot(*audience)
			if err != nil {
				return final(err)
			}
			if err := server.WriteRootFile(*out, aud, key); err != nil {
				return final(err)
			}
			fmt.Fprintf(e.stdout, "deployment %s: root key in %s (keep it offline)\nroot public key %x\n", aud, *out, key.Public())
			return nil
		}
	},
}

var nodeCommand = &command{
	name:    "node",
	args:    "init --root FILE --name NAME",
	summary: "make DIR a server node of a deployment, certified by its root key",
	about: `Node init makes the data directory DIR (--dir) a node of the deployment
whose root key is in FILE ('goatdb root init'): it writes DIR/auth/ with
the deployment's audience, the root's public key, a node key of its own
(kept if it has one) and a node certificate named NAME from the root,
valid --days days. The root key is not copied: run node init again, with
the root file at hand, to renew the certificate before it expires. A
directory of another deployment, or one that made its own root key (a
'goatdb serve' that ran without node init), is refused.

Then 'goatdb --dir DIR serve --peer URL...' with the other nodes' URLs
replicates with them as a node of the deployment.`,
	setup: func(fs *flag.FlagSet) runFunc {
		root := fs.String("root", "", "the deployment's root key `FILE`")
		name := fs.String("name", "", "the node's `NAME` in its certificate")
		days := fs.Int("days", 365, "the certificate lasts `N` days")
		return func(e *env, args []string) error {
			switch {
			case len(args) != 1 || args[0] != "init":
				return usagef("node", "node takes init")
			case *root == "" || *name == "":
				return usagef("node", "node init needs --root FILE and --name NAME")
			case *days < 1:
				return usagef("node", "--days %d: give 1 or more", *days)
			}
			aud, key, err := server.ReadRootFile(*root)
			if err != nil {
				return final(err)
			}
			id, err := server.InitNode(e.dir, aud, key, *name, time.Duration(*days)*24*time.Hour)
			if err != nil {
				return final(err)
			}
			fmt.Fprintf(e.stdout, "node %s of deployment %s in %s, certified until %s\n", *name, aud, e.dir,
				id.Node.Expires().UTC().Format(time.RFC3339))
			return nil
		}
	},
}

var clusterCommand = &command{
	name:    "cluster",
	args:    "status | leave NAME [--dead]",
	summary: "show a sharded cluster's members, or make one leave",
	about: `Cluster talks to the member serving DIR (through its admin socket
DIR/auth/admin.sock) about the sharded cluster it belongs to ('goatdb serve
--cluster-raft').

cluster status prints the members (name, state, URL), how many own each
repository, the membership's epoch and the leader; --json prints it as one
JSON object.

cluster leave NAME starts NAME's departure: the members hand the
repositories it owns to their new owners, then it leaves the placement and
the raft group (stop its server afterwards). --dead says NAME is gone for
good (its machine died): its handoff is reported for it, and each of its
repositories is handed over by another of its owners.`,
	setup: func(fs *flag.FlagSet) runFunc {
		dead := fs.Bool("dead", false, "with leave: the member is gone for good")
		asJSON := fs.Bool("json", false, "with status: print one JSON object")
		return func(e *env, args []string) error { return clusterCmd(e, args, *dead, *asJSON) }
	},
}

func clusterCmd(e *env, args []string, dead, asJSON bool) error {
	if len(args) == 0 {
		return usagef("cluster", "cluster needs status or leave NAME")
	}
	c, err := server.DialAdmin(e.dir)
	if err != nil {
		// Not a data directory is said as every command says it; else
		// no server runs on it.
		if derr := e.withDB(true, func(*goatdb.DB) error { return nil }); derr != nil {
			return derr
		}
		return failf("no server answers on %s: cluster talks to a running 'goatdb serve --cluster-raft' on this directory", filepath.Join(e.dir, server.AdminSocket))
	}
	switch {
	case args[0] == "status" && len(args) == 1 && !dead:
		st, err := c.Cluster()
		if err != nil {
			return failf("%v", err)
		}
		if asJSON {
			return writeJSON(e.stdout, st)
		}
		v := st.View
		fmt.Fprintf(e.stdout, "member %s; leader %s; epoch %d; %d owners per repository\n", st.Self, orNone(st.Leader), v.Epoch, v.Replicas)
		for _, name := range slices.Sorted(maps.Keys(v.Members)) {
			m := v.Members[name]
			fmt.Fprintf(e.stdout, "  %s %s %s\n", m.Name, m.State, m.URL)
		}
		return nil
	case args[0] == "leave" && len(args) == 2 && !asJSON:
		if err := c.LeaveCluster(args[1], dead); err != nil {
			return failf("%v", err)
		}
		fmt.Fprintf(e.stdout, "%s is leaving: its repositories are handed to their new owners first ('goatdb cluster status' shows when it is gone)\n", args[1])
		return nil
	}
	return usagef("cluster", "cluster takes status [--json] or leave NAME [--dead]")
}

func orNone(s string) string {
	if s == "" {
		return "none known"
	}
	return s
}
