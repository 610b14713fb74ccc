package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
)

var devNodeLine = regexp.MustCompile(`(?m)^  n(\d) (http://127\.0\.0\.1:\d+) `)

// TestDevCluster: dev cluster starts three replicating nodes and prints
// their URLs; a write synced to the first (acknowledged once another node
// stored it) is read from the third; the nodes stop when it is
// interrupted.
func TestDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := new(outBuffer), new(outBuffer)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--dir", dir, "dev", "cluster", "--nodes", "3"}, strings.NewReader(""), out, errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("dev cluster exited %d: %s", code, errb)
		}
	}()
	var urls []string
	for deadline := time.Now().Add(15 * time.Second); len(urls) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs: stdout %q stderr %q", out, errb)
		}
		urls = urls[:0]
		for _, m := range devNodeLine.FindAllStringSubmatch(out.String(), -1) {
			urls = append(urls, m[2])
		}
	}
	if !strings.Contains(out.String(), "goatdb sync "+strings.Join(urls, ",")) {
		t.Errorf("no failover sync line in %q", out)
	}
	a := dbtest.OpenDB(t, nil)
	if _, err := a.Put("/data/dev/k", goatdb.Fields{"v": 1}); err != nil {
		t.Fatal(err)
	}
	syncCtx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	for {
		_, err := a.Sync(syncCtx, urls[0], "/data/dev")
		if err == nil {
			break
		}
		if syncCtx.Err() != nil {
			t.Fatalf("sync with n1: %v (stderr %q)", err, errb)
		}
		time.Sleep(50 * time.Millisecond) // the nodes may still be starting
	}
	b := dbtest.OpenDB(t, nil)
	for {
		if _, err := b.Sync(syncCtx, urls[2], "/data/dev"); err == nil {
			if _, err := b.Get("/data/dev/k"); err == nil {
				break
			}
		}
		if syncCtx.Err() != nil {
			t.Fatalf("the write never reached n3 (stderr %q)", errb)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeAckFlags: --ack-replicas above the number of --peer, and a
// non-positive --ack-timeout, are usage errors.
func TestServeAckFlags(t *testing.T) {
	dir := t.TempDir()
	failure(t, cli(t, dir, "", "serve", "--addr", "127.0.0.1:0", "--ack-replicas", "1"), exitUsage, "--ack-replicas 1")
	failure(t, cli(t, dir, "", "serve", "--addr", "127.0.0.1:0", "--peer", "http://127.0.0.1:1", "--ack-timeout", "0s"), exitUsage, "--ack-timeout")
	failure(t, cli(t, dir, "", "dev", "cluster", "--nodes", "2", "--ack-replicas", "2"), exitUsage, "--ack-replicas 2")
}

// TestSyncURLList: sync takes a comma-separated list of nodes and moves
// past one that does not answer; a bad URL in the list is a usage error.
func TestSyncURLList(t *testing.T) {
	srvDir, cliDir, other := t.TempDir(), newDir(t), newDir(t)
	srv := startServe(t, srvDir, "--rules", "open", "--anonymous")
	mustPut(t, cliDir, "/data/list/a", `{"v": 1}`)
	if r := cli(t, cliDir, "", "sync", "http://127.0.0.1:1,"+srv.url, "/data/list"); r.code != exitOK || !strings.Contains(r.stderr, "trying the next") {
		t.Fatalf("sync past a dead node: exit %d, stderr %q", r.code, r.stderr)
	}
	ok(t, other, "sync", srv.url, "/data/list")
	if out := ok(t, other, "get", "/data/list/a"); !strings.Contains(out, "1") {
		t.Fatalf("the write synced through the list's second node reads %q", out)
	}
	failure(t, cli(t, cliDir, "", "sync", srv.url+",ftp://x"), exitUsage, "http")
}
