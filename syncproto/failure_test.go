package syncproto_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// serverDir is where the failing server keeps its files: no answer may
// name it.
const serverDir = "/srv/secret-data-dir"

// pushAll is a request that brings every commit of r at path.
func pushAll(r *repo.Repo, path string) *syncproto.Request {
	cs, _ := r.CommitsSince(0)
	encs := make([][]byte, len(cs))
	ids := make([]commit.ID, len(cs))
	for i, c := range cs {
		encs[i], ids[i] = c.Encode(), c.ID()
	}
	return &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: path, Count: uint64(len(ids)),
		Digest: syncproto.DigestOf(ids), Commits: encs}}}
}

// TestStoreFailureFailsRequest: when storing a request's commits fails,
// Handle answers no response (nothing is acknowledged) but a
// *StorageError that names the repository and wraps the cause.
func TestStoreFailureFailsRequest(t *testing.T) {
	mem := vfs.NewMem()
	srv := dbtest.OpenRepo(t, serverDir+"/tasks.log", &repo.Options{FS: mem, Key: peerKey(0)})
	cli := openPeer(t, 1)
	writeItems(t, cli, "a", 3, 3)
	mem.SetHook(func(op, name string) error {
		if op == "write" {
			return syscall.ENOSPC
		}
		return nil
	})
	resp, err := serve(t, srv, nil).Handle(context.Background(), pushAll(cli, testPath))
	mem.SetHook(nil)
	var se *syncproto.StorageError
	if resp != nil || !errors.As(err, &se) || !errors.Is(err, syncproto.ErrStorage) || !errors.Is(err, repo.ErrLogFailed) {
		t.Fatalf("Handle = %v, %v; want no response and a StorageError wrapping repo.ErrLogFailed", resp, err)
	}
	if se.Path != testPath {
		t.Errorf("StorageError.Path = %q, want %q", se.Path, testPath)
	}
	if n := len(srv.IDs()); n != 0 {
		t.Errorf("the server holds %d commits of the failed request", n)
	}
}

// TestFailedRepoMessages: a section the Responder fails to serve says so
// with a known text that cites the request's id and never the error's
// (which names files); the caller hears of the error (RequestInfo.Failed);
// a refusal (ErrRefused) keeps its text; the other repositories are served.
func TestFailedRepoMessages(t *testing.T) {
	good := openPeer(t, 0)
	writeItems(t, good, "g", 2, 2)
	repos := syncproto.ReposFunc(func(_ context.Context, _ commit.SessionID, p string, _ bool) (syncproto.Repo, error) {
		switch p {
		case "/data/good":
			return good, nil
		case "/data/broken":
			return nil, fmt.Errorf("open %s/data/broken.log: %w", serverDir, repo.ErrCorrupt)
		case "/data/full":
			return nil, fmt.Errorf("%w: over the quota of new repositories", syncproto.ErrRefused)
		}
		return nil, fmt.Errorf("%w: %s", syncproto.ErrUnknownRepo, p)
	})
	rs, err := syncproto.NewResponder(repos, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	ctx := syncproto.WithRequest(context.Background(), syncproto.RequestInfo{ID: "req-42", Failed: func(path string, err error) {
		failed = append(failed, path)
		if !errors.Is(err, repo.ErrCorrupt) {
			t.Errorf("Failed got %v, want the repository's error", err)
		}
	}})
	req := &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: "/data/broken"}, {Path: "/data/full"}, {Path: "/data/good"}, {Path: "/data/none"}}}
	resp, err := rs.Handle(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status  syncproto.Status
		message string
	}{
		{syncproto.StatusError, "repository unavailable on the server (request id req-42)"},
		{syncproto.StatusError, "over the quota of new repositories"},
		{syncproto.StatusOK, ""},
		{syncproto.StatusNotFound, "/data/none does not exist on this server"},
	} {
		p := resp.Repos[0]
		resp.Repos = resp.Repos[1:]
		if p.Status != tc.status || !strings.Contains(p.Message, tc.message) || (tc.message == "") != (p.Message == "") {
			t.Errorf("%s: %v %q, want %v with %q", p.Path, p.Status, p.Message, tc.status, tc.message)
		}
		if strings.Contains(p.Message, serverDir) || strings.Contains(p.Message, ".log") {
			t.Errorf("%s: message %q names a server file", p.Path, p.Message)
		}
		if p.Path == "/data/good" && p.Count != 2 {
			t.Errorf("/data/good: count %d, want 2", p.Count)
		}
	}
	if len(failed) != 1 || failed[0] != "/data/broken" {
		t.Errorf("Failed called for %v, want [/data/broken]", failed)
	}
}
