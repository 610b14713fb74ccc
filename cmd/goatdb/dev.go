package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/goatdb/goatdb/server"
)

var devCommand = &command{
	name:    "dev",
	args:    "cluster [--nodes N] [--dir DIR]",
	summary: "run a local cluster of server nodes on loopback ports, for trying it out",
	about: `Dev cluster starts N server nodes (default 3) of one deployment in this
process, each replicating with all the others, on free 127.0.0.1 ports,
and prints their URLs. DIR (--dir) holds the deployment's root key
(DIR/root.key, made on first use) and one data directory per node
(DIR/n1, DIR/n2, ...), so a second run serves the same data. Every node
takes the rules of --rules (default "open": everyone reads and writes,
for trying things out only) and waits for --ack-replicas other nodes to
store a client's write before acknowledging it (default 1). Sessions
that never logged in act as the anonymous user (serve --anonymous), so
a client syncs without logging in. It serves until interrupted.

Users are per deployment: 'goatdb --dir DIR/n1 user add NAME' makes a
login code that every node takes once the user has replicated.
Clients fail over across the nodes with 'goatdb sync URL1,URL2,URL3'.`,
	setup: func(fs *flag.FlagSet) runFunc {
		nodes := fs.Int("nodes", 3, "start `N` nodes (1 to 9)")
		rules := fs.String("rules", "open", "the nodes' rules: `FILE`, or \"open\"")
		ack := fs.Int("ack-replicas", 1, "acknowledge a client's write once `N` other nodes stored it")
		return func(e *env, args []string) error { return devCluster(e, args, *nodes, *rules, *ack) }
	},
}

func devCluster(e *env, args []string, nodes int, rules string, ack int) error {
	switch {
	case len(args) != 1 || args[0] != "cluster":
		return usagef("dev", "dev takes cluster")
	case nodes < 1 || nodes > 9:
		return usagef("dev", "--nodes %d: give 1 to 9", nodes)
	case ack < 0 || ack > nodes-1:
		return usagef("dev", "--ack-replicas %d: give 0 to %d (the other nodes)", ack, nodes-1)
	}
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return final(err)
	}
	rootFile := filepath.Join(e.dir, "root.key")
	aud, key, err := server.ReadRootFile(rootFile)
	if errors.Is(err, os.ErrNotExist) {
		if aud, key, err = server.NewRoot(""); err == nil {
			err = server.WriteRootFile(rootFile, aud, key)
		}
	}
	if err != nil {
		return final(err)
	}
	// The ports are chosen with every listener open, so that no two are
	// the same, and freed for the nodes' servers.
	addrs := make([]string, nodes)
	lns := make([]net.Listener, 0, nodes)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
		addrs[i] = ln.Addr().String()
	}
	for _, l := range lns {
		l.Close()
	}
	dirs := make([]string, nodes)
	for i := range dirs {
		dirs[i] = filepath.Join(e.dir, "n"+strconv.Itoa(i+1))
		if !isNodeOf(dirs[i], aud) {
			if _, err := server.InitNode(dirs[i], aud, key, "n"+strconv.Itoa(i+1), 0); err != nil {
				return final(err)
			}
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, nodes)
	for i := range nodes {
		args := []string{"--dir", dirs[i], "serve", "--addr", addrs[i], "--rules", rules, "--anonymous",
			"--ack-replicas", strconv.Itoa(ack), "--log-level", "warn"}
		for j, a := range addrs {
			if j != i {
				args = append(args, "--peer", "http://"+a)
			}
		}
		prefix := fmt.Sprintf("[n%d] ", i+1)
		out, errw := &prefixWriter{w: e.stdout, prefix: prefix}, &prefixWriter{w: e.stderr, prefix: prefix}
		wg.Go(func() { codes[i] = run(e.ctx, args, strings.NewReader(""), out, errw) })
	}
	urls := make([]string, nodes)
	for i, a := range addrs {
		urls[i] = "http://" + a
	}
	fmt.Fprintf(e.stdout, "cluster of %d nodes, deployment %s, in %s:\n", nodes, aud, e.dir)
	for i, u := range urls {
		fmt.Fprintf(e.stdout, "  n%d %s (console %s/)\n", i+1, u, u)
	}
	fmt.Fprintf(e.stdout, "sync with failover: goatdb sync %s\n", strings.Join(urls, ","))
	wg.Wait()
	for i, c := range codes {
		if c != exitOK {
			return failf("node n%d exited with %d (its messages above)", i+1, c)
		}
	}
	return nil
}

// isNodeOf reports whether dir's identity is a node of deployment aud
// that holds no root key of its own.
func isNodeOf(dir, aud string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "auth", "audience"))
	_, rerr := os.Stat(filepath.Join(dir, "auth", "root.key"))
	return err == nil && strings.TrimSpace(string(b)) == aud && errors.Is(rerr, os.ErrNotExist)
}

// prefixWriter starts every line written to w with prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool // in the middle of a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.mid {
			out.WriteString(p.prefix)
		}
		out.Write(line)
		p.mid = line[len(line)-1] != '\n'
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
