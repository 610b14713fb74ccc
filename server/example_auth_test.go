package server_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
)

// appRules are a notes app's rules: each note belongs to the user who
// wrote it, who alone may change it; admins read every note; members of a
// team (role "team-NAME") read and write the team's shared repository
// /team/NAME.
func appRules() (*authz.Rules, error) {
	owner := func(it item.Item) string {
		if v, ok := it.Get("owner"); ok && v.Type() == item.TypeString {
			return v.Str()
		}
		return ""
	}
	var b authz.Builder
	b.Handle("/notes/{repo}/{id}", authz.Rule{
		Scope: authz.ByItem,
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, it item.Item) bool {
			return p.User != "" && (owner(it) == p.User || p.HasRole("admin"))
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, before, after item.Item) error {
			switch {
			case p.User == "":
				return errors.New("log in to write notes")
			case before.Len() > 0 && owner(before) != p.User:
				return fmt.Errorf("this note is %s's", owner(before))
			case owner(after) != p.User:
				return errors.New("a note's owner is its writer")
			}
			return nil
		},
	})
	member := func(p authz.Principal, ref authz.Ref) bool { return p.HasRole("team-" + ref.Vars["team"]) }
	b.Handle("/team/{team}/{id}", authz.Rule{
		Scope: authz.ByRepo,
		Read:  func(_ context.Context, p authz.Principal, ref authz.Ref, _ item.Item) bool { return member(p, ref) },
		Write: func(_ context.Context, p authz.Principal, ref authz.Ref, _, _ item.Item) error {
			if !member(p, ref) {
				return fmt.Errorf("only team %s writes here", ref.Vars["team"])
			}
			return nil
		},
	})
	return b.Compile()
}

// Example_rules runs a server with an app's rules and one-time login
// codes, logs a client in, and shows a write the rules refuse. authz.Check
// gives the rules' answers without a server, for unit tests.
func Example_rules() {
	rules, err := appRules()
	if err != nil {
		log.Fatal(err)
	}
	// authz.Check: alice may write her note, bob may not take it over.
	alice := authz.Principal{User: "alice"}
	note := item.Item{}.With("owner", item.String("alice")).With("text", item.String("hi"))
	fmt.Println("alice writes her note:", authz.Check(rules, alice, "/notes/n/1", item.Item{}, note) == nil)
	fmt.Println("bob changes it:", authz.Check(rules, authz.Principal{User: "bob"}, "/notes/n/1", note, note.With("text", item.String("mine"))))

	// A server with those rules.
	dir, _ := os.MkdirTemp("", "goatdb-example")
	defer os.RemoveAll(dir)
	sdb, err := goatdb.Open(dir+"/server", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sdb.Close()
	id, _, err := server.NewIdentity("example")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(sdb, &server.Options{Auth: &server.AuthOptions{Identity: id, Rules: rules}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { stop(); <-done }()
	url := "http://" + ln.Addr().String()

	// The operator makes a user (goatdb user add bob --role team-blue).
	code, _, err := srv.Accounts().AddUser("bob", []string{"team-blue"})
	if err != nil {
		log.Fatal(err)
	}

	// Bob's device logs in with the code and writes.
	cdb, err := goatdb.Open(dir+"/client", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cdb.Close()
	if _, err := cdb.LoginCode(ctx, url, "bob", code); err != nil {
		log.Fatal(err)
	}
	cdb.Put("/team/blue/plan", goatdb.Fields{"text": "ship it"})
	cdb.Put("/notes/n/2", goatdb.Fields{"owner": "alice", "text": "forged"})
	st, err := cdb.Sync(ctx, url, "/team/blue", "/notes/n")
	fmt.Println("sync:", errors.Is(err, goatdb.ErrRejected), len(st.Rejected), "refused:", st.Rejected[0].Reason)
	plan, _ := sdb.Get("/team/blue/plan")
	fmt.Println("the server holds:", plan.Get("text"))
	// Output:
	// alice writes her note: true
	// bob changes it: authz: denied: write /notes/n/1: rule /notes/{repo}/{id}: this note is alice's
	// sync: true 1 refused: not allowed: authz: denied: write /notes/n/2: rule /notes/{repo}/{id}: a note's owner is its writer
	// the server holds: ship it
}
