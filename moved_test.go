package goatdb_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/syncproto"
)

// TestSyncMovedOnlyToGivenNodes: a server that answers every repository
// as moved to a URL the caller did not give (a lie, or a member of
// another cluster) gets no commit sent there: DB.Sync with a list of
// nodes reports the repository as living elsewhere, and the named URL
// is never contacted.
func TestSyncMovedOnlyToGivenNodes(t *testing.T) {
	var elsewhere atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer trap.Close()
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := syncproto.DecodeRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := &syncproto.Response{}
		for _, q := range req.Repos {
			resp.Repos = append(resp.Repos, syncproto.RepoResponse{Path: q.Path, Status: syncproto.StatusError,
				Message: syncproto.MovedPrefix + trap.URL})
		}
		out, _ := syncproto.EncodeResponse(resp)
		w.Header().Set("Content-Type", goatdb.SyncContentType)
		w.Write(out)
	}))
	defer liar.Close()
	down := "http://127.0.0.1:1"

	db, err := goatdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Put("/data/moved/k", goatdb.Fields{"v": 1}); err != nil {
		t.Fatal(err)
	}
	_, err = db.Sync(context.Background(), liar.URL+","+down, "/data/moved")
	if err == nil || !strings.Contains(err.Error(), "none of the nodes given") {
		t.Fatalf("sync answered as moved elsewhere: %v, want an error saying where it lives", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the URL named by the moved answer was contacted %d times", n)
	}
}
