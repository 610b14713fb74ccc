package syncproto_test

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// A server serves its repositories with a Responder; a client syncs its
// own copies with a Syncer over a Transport (here in memory).
func Example() {
	_, serverKey, _ := ed25519.GenerateKey(nil)
	_, clientKey, _ := ed25519.GenerateKey(nil)
	server, _ := repo.Open("/server/tasks.log", &repo.Options{FS: vfs.NewMem(), Key: serverKey})
	defer server.Close()
	client, _ := repo.Open("/client/tasks.log", &repo.Options{FS: vfs.NewMem(), Key: clientKey})
	defer client.Close()

	set := func(r *repo.Repo, key, title string) {
		r.Write(repo.Update{Key: key, Fn: func(repo.Current) (item.Item, commit.Schema, error) {
			return item.New(map[string]item.Value{"title": item.String(title)}), commit.Schema{NS: "task", Version: 1}, nil
		}})
	}
	set(server, "t1", "written on the server")
	set(client, "t2", "written on the client")

	responder, _ := syncproto.NewResponder(syncproto.ReposFunc(
		func(_ context.Context, _ commit.SessionID, path string, _ bool) (syncproto.Repo, error) {
			if path != "/data/tasks" {
				return nil, syncproto.ErrUnknownRepo
			}
			return server, nil
		}), nil)
	syncer, _ := syncproto.NewSyncer(syncproto.Loopback(responder), client.Session(), nil)

	local := syncproto.Local{Path: "/data/tasks", Repo: client}
	st, err := syncer.Sync(context.Background(), local)
	fmt.Println("first sync:", st.Rounds, "round trips, sent", st.CommitsSent, "received", st.CommitsReceived, err)
	v, _, _ := client.Get("t1")
	fmt.Println("client has t1:", v)

	set(server, "t1", "changed on the server")
	st, err = syncer.Sync(context.Background(), local) // resumes: sends only what changed
	fmt.Println("second sync:", st.Rounds, "round trip, received", st.CommitsReceived, err)
	// Output:
	// first sync: 2 round trips, sent 1 received 1 <nil>
	// client has t1: {title: "written on the server"}
	// second sync: 1 round trip, received 1 <nil>
}
