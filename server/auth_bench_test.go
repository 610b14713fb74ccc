package server_test

// Server CPU per routine sync request, without and with authentication,
// in one run: a client in sync with a 1,000-commit repository sends the
// resume request it sends on every sync, straight into the server's
// handler (no network), so the difference is what checking the signed
// header, the session's certificate and the rules costs. auth=true signs
// every request (v1, an Ed25519 signature to verify); auth=mac MACs it
// with the session's request key for the node (v2, a keyed hash; the
// node derives each session's key once).
//
//	go test -run='^$' -bench='^BenchmarkAuthenticatedSync$' -count=6 ./server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

func BenchmarkAuthenticatedSync(b *testing.B) {
	for _, mode := range []string{"false", "true", "mac"} {
		b.Run("auth="+mode, func(b *testing.B) { benchSyncRequest(b, mode != "false", mode == "mac") })
	}
}

func benchSyncRequest(b *testing.B, auth, mac bool) {
	db := dbtest.OpenDB(b, &goatdb.Options{Durability: goatdb.Async})
	var opts server.Options
	opts.RateLimit = -1
	var id *server.Identity
	if auth {
		var err error
		if id, _, err = server.NewIdentity("bench"); err != nil {
			b.Fatal(err)
		}
		opts.Auth = &server.AuthOptions{Identity: id, Rules: authz.DefaultRules()}
	}
	srv, err := server.New(db, &opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	for i := range 1000 {
		if _, err := db.Put(fmt.Sprintf("/data/tasks/t%d", i), goatdb.Fields{"n": i}); err != nil {
			b.Fatal(err)
		}
	}
	// Several sessions of one user take turns: one session may make at
	// most authz.DefaultMaxNoncesPerSession requests a minute.
	const sessions = 16
	keys := make([]ed25519.PrivateKey, sessions)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
		if !auth {
			continue
		}
		var sid commit.SessionID
		copy(sid[:], keys[i].Public().(ed25519.PublicKey))
		code, _, err := srv.Accounts().AddUser("alice", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := srv.Accounts().LoginCode(sid, "alice", code); err != nil {
			b.Fatal(err)
		}
	}
	var sid commit.SessionID
	copy(sid[:], keys[0].Public().(ed25519.PublicKey))

	// The client: an empty repository synced once, then in sync.
	local := dbtest.OpenRepo(b, "local.log", &repo.Options{Name: "/data/tasks"})
	resumes := &syncproto.MemResumes{}
	var last []byte
	send := func(msg []byte, header string) []byte {
		req := httptest.NewRequest(http.MethodPost, "/v1/sync", bytes.NewReader(msg))
		req.Header.Set("Content-Type", goatdb.SyncContentType)
		if header != "" {
			req.Header.Set(authz.AuthHeaderName, header)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("sync: %d %s", w.Code, w.Body)
		}
		return w.Body.Bytes()
	}
	// Each session's request key, as its client keeps it.
	reqKeys := map[string]*authz.RequestKey{}
	sign := func(msg []byte, key ed25519.PrivateKey) string {
		if !auth {
			return ""
		}
		req := authz.Request{Method: http.MethodPost, Host: "example.com", PathQuery: "/v1/sync", Body: authz.BodyDigest(msg)}
		if !mac {
			h, err := authz.SignRequest(key, id.Audience, req, time.Now(), authz.NewNonce(), "")
			if err != nil {
				b.Fatal(err)
			}
			return h
		}
		rk := reqKeys[string(key)]
		if rk == nil {
			var err error
			if rk, err = authz.NewRequestKey(key, id.Node.Key(), id.Audience); err != nil {
				b.Fatal(err)
			}
			reqKeys[string(key)] = rk
		}
		h, err := authz.MACRequest(rk, req, time.Now(), authz.NewNonce(), "")
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	s, err := syncproto.NewSyncer(syncproto.TransportFunc(func(_ context.Context, msg []byte) ([]byte, error) {
		last = append(last[:0], msg...)
		return send(msg, sign(msg, keys[0])), nil
	}), sid, &syncproto.SyncerOptions{Resumes: resumes})
	if err != nil {
		b.Fatal(err)
	}
	for range 2 {
		if _, err := s.Sync(context.Background(), syncproto.Local{Path: "/data/tasks", Repo: local}); err != nil {
			b.Fatal(err)
		}
	}
	msg := bytes.Clone(last) // the routine in-sync request

	// Sign every request before the clock starts: signing is the
	// client's work.
	headers := make([]string, b.N)
	for i := range headers {
		headers[i] = sign(msg, keys[i%sessions])
	}
	if auth {
		b.ReportMetric(float64(len(headers[0])), "header-bytes")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		send(msg, headers[i])
	}
}
