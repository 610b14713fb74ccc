package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/goatdb/goatdb/cluster"
	"github.com/goatdb/goatdb/cluster/raftstore"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/vfs"
	"github.com/hashicorp/raft"
)

// clusterFlags are serve's flags of a sharded cluster: the member's raft
// address, and whether it starts the cluster or joins one.
type clusterFlags struct {
	raft      string // --cluster-raft HOST:PORT
	init      bool   // --cluster-init
	join      string // --cluster-join URL
	replicas  int    // --replicas
	advertise string // --advertise URL
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.raft, "cluster-raft", "", "be a member of a sharded cluster, its raft group on `HOST:PORT` (state in DIR/raft/)")
	fs.BoolVar(&c.init, "cluster-init", false, "with --cluster-raft: start a new cluster of this member alone")
	fs.StringVar(&c.join, "cluster-join", "", "with --cluster-raft: join the cluster through the member at `URL`")
	fs.IntVar(&c.replicas, "replicas", 2, "with --cluster-init: `N` members own each repository")
	fs.StringVar(&c.advertise, "advertise", "", "with --cluster-raft: the `URL` other members and clients reach this one at (default: from --addr)")
}

// check validates the flags against serve's; it returns the URL to
// advertise.
func (c *clusterFlags) check(o *serveOptions, tls bool) (string, error) {
	switch {
	case c.raft == "" && (c.init || c.join != "" || c.advertise != ""):
		return "", usagef("serve", "--cluster-init, --cluster-join and --advertise go with --cluster-raft")
	case c.raft == "":
		return "", nil
	case c.init && c.join != "":
		return "", usagef("serve", "--cluster-init starts a cluster and --cluster-join joins one: give one")
	case len(o.peers) > 0:
		return "", usagef("serve", "--peer and --cluster-raft: in a cluster, each repository replicates among its owners; drop --peer")
	case c.replicas < 1 || c.replicas > 9:
		return "", usagef("serve", "--replicas %d: give 1 to 9", c.replicas)
	}
	if _, _, err := net.SplitHostPort(c.raft); err != nil {
		return "", usagef("serve", "--cluster-raft %q: want HOST:PORT", c.raft)
	}
	if c.advertise != "" {
		return c.advertise, nil
	}
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil || port == "0" {
		return "", usagef("serve", "--cluster-raft needs a fixed --addr port (or --advertise URL): members find each other by it")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// startCluster starts this member's raft node: its log and stable store
// in DIR/raft/, snapshots beside them, and a TCP transport on
// --cluster-raft. close stops it.
func startCluster(dir string, c *clusterFlags, id *server.Identity, url string, logger *slog.Logger) (*cluster.Node, func() error, error) {
	rdir := filepath.Join(dir, "raft")
	store, err := raftstore.Open(vfs.OS, rdir)
	if err != nil {
		return nil, nil, final(err)
	}
	snaps, err := raft.NewFileSnapshotStore(rdir, 2, io.Discard)
	if err != nil {
		return nil, nil, errors.Join(err, store.Close())
	}
	trans, err := raft.NewTCPTransport(c.raft, nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		return nil, nil, errors.Join(final(fmt.Errorf("--cluster-raft %s: %v", c.raft, err)), store.Close())
	}
	node, err := cluster.Start(cluster.Config{Member: cluster.Member{Name: id.Node.Node(), URL: url, Raft: c.raft},
		Bootstrap: c.init, Replicas: c.replicas, Logs: store, Stable: store, Snapshots: snaps, Transport: trans, Logger: logger})
	if err != nil {
		return nil, nil, errors.Join(err, trans.Close(), store.Close())
	}
	return node, func() error { return errors.Join(node.Close(), trans.Close(), store.Close()) }, nil
}

// enterCluster initialises the cluster or joins it once this server
// answers, retrying until ctx ends.
func enterCluster(ctx context.Context, c *clusterFlags, node *cluster.Node, srv *server.Server, url string, logger *slog.Logger) {
	for {
		var err error
		switch {
		case c.init:
			err = node.Init(ctx)
		case c.join != "":
			err = srv.JoinCluster(ctx, c.join, url, c.raft)
		default:
			return // a restart: the raft state says who we are
		}
		if err == nil {
			logger.Info("cluster: member", "name", srv.NodeName(), "init", c.init, "joined", c.join)
			return
		}
		logger.Warn("cluster: not in the cluster yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
