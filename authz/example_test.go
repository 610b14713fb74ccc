package authz_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// An app's rules: in /data/<repo>, users read and write the items they
// own (the owner field), which they may not give away; everyone with the
// role "team" shares /data/team; the role "admin" reads and writes all of
// /data. /user/<uid> and /sys are protected by the built-in rules.
func Example() {
	isAdmin := func(p authz.Principal) bool { return p.HasRole("admin") }
	var b authz.Builder
	b.Handle("/data/{repo}/{item}", authz.Rule{
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, it item.Item) bool {
			owner, _ := it.Get("owner")
			return isAdmin(p) || p.User != "" && owner.Str() == p.User
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, before, after item.Item) error {
			if isAdmin(p) {
				return nil
			}
			was, existed := before.Get("owner")
			is, _ := after.Get("owner")
			switch {
			case p.User == "":
				return errors.New("log in to write")
			case existed && was.Str() != p.User:
				return errors.New("not your item")
			case is.Str() != p.User:
				return errors.New("the owner must be you")
			}
			return nil
		},
		Scope: authz.ByItem, // Read looks at the item's owner
	})
	b.Handle("/data/team/{item}", authz.Rule{
		Read: func(_ context.Context, p authz.Principal, _ authz.Ref, _ item.Item) bool {
			return p.HasRole("team") || isAdmin(p)
		},
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, _, _ item.Item) error {
			if p.HasRole("team") || isAdmin(p) {
				return nil
			}
			return errors.New("team members only")
		},
		Scope: authz.ByRepo,
	})
	rules, err := b.Compile()
	if err != nil {
		fmt.Println(err)
		return
	}

	alice := authz.Principal{User: "alice", Roles: []string{"team"}}
	bob := authz.Principal{User: "bob"}
	admin := authz.Principal{User: "carol", Roles: []string{"admin"}}
	task := func(owner string) item.Item {
		return item.New(map[string]item.Value{"owner": item.String(owner), "title": item.String("Write docs")})
	}
	show := func(err error) string {
		if err != nil {
			return err.Error()
		}
		return "allowed"
	}
	fmt.Println(show(authz.Check(rules, alice, "/data/tasks/t1", item.Item{}, task("alice"))))
	fmt.Println(show(authz.Check(rules, alice, "/data/tasks/t1", task("alice"), task("bob"))))
	fmt.Println(show(authz.CheckRead(rules, bob, "/data/tasks/t1", task("alice"))))
	fmt.Println(show(authz.Check(rules, bob, "/data/team/plan", item.Item{}, task("bob"))))
	fmt.Println(show(authz.Check(rules, alice, "/data/team/plan", task("bob"), task("bob"))))
	fmt.Println(show(authz.Check(rules, admin, "/data/tasks/t1", task("alice"), task("bob"))))
	fmt.Println(show(authz.CheckRead(rules, admin, "/user/alice/diary", item.Item{})))
	fmt.Println(show(authz.Check(rules, admin, "/sys/users/alice", item.Item{}, item.Item{})))
	// Output:
	// allowed
	// authz: denied: write /data/tasks/t1: rule /data/{repo}/{item}: the owner must be you
	// authz: denied: read /data/tasks/t1: refused by rule /data/{repo}/{item}
	// authz: denied: write /data/team/plan: rule /data/team/{item}: team members only
	// allowed
	// allowed
	// authz: denied: read /user/alice/diary: only user alice may read under /user/alice
	// authz: denied: write /sys/users/alice: only root and node principals write under /sys (a session reads its own /sys/sessions/<session>)
}

// The same app's rules as a rules file, for goatdb serve --rules FILE.
func ExampleParseRulesFile() {
	rules, err := authz.ParseRulesFile([]byte(`{"rules": [
	  {"path": "/data/{repo}/{item}",
	   "read":  "hasRole('admin') || (user != '' && item.owner == user)",
	   "write": "hasRole('admin') || (user != '' && after.owner == user && (before.owner == nil || before.owner == user))"},
	  {"path": "/data/team/{item}",
	   "read":  "hasRole('team') || hasRole('admin')",
	   "write": "hasRole('team') || hasRole('admin')"}
	]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	alice := authz.Principal{User: "alice", Roles: []string{"team"}}
	mine := item.New(map[string]item.Value{"owner": item.String("alice")})
	fmt.Println(authz.Check(rules, alice, "/data/tasks/t1", item.Item{}, mine))
	fmt.Println(authz.Check(rules, alice, "/data/tasks/t1", mine, mine.With("owner", item.String("bob"))))
	fmt.Println(rules.RepoScope("/data/team"), rules.RepoScope("/data/tasks"))
	// Output:
	// <nil>
	// authz: denied: write /data/tasks/t1: rule /data/{repo}/{item}: refused by the write expression of rules file entry 0
	// ByRepo ByItem
}

// A deployment's root key certifies a node, the node certifies a session,
// and anyone holding the root's public key verifies the session offline.
func ExampleIssue() {
	rootPub, rootKey, _ := ed25519.GenerateKey(nil)
	nodePub, nodeKey, _ := ed25519.GenerateKey(nil)
	sessionPub, _, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	node, err := authz.IssueNode(rootKey, authz.NodeFields{
		Node: "eu-1", Key: nodePub, NotBefore: now, Expires: now.AddDate(1, 0, 0),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var f authz.SessionFields
	copy(f.Session[:], sessionPub)
	f.User, f.Roles, f.Audience = "alice", []string{"team"}, "example.com"
	f.NotBefore, f.Expires = now, now.AddDate(0, 0, 30)
	cert, err := authz.Issue(nodeKey, node, f)
	if err != nil {
		fmt.Println(err)
		return
	}

	// What a peer receives is bytes; it decodes and verifies them.
	got, err := authz.DecodeSessionCertificate(cert.Encode())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Verify(rootPub, "example.com", now.Add(time.Hour)))
	fmt.Println(got.Principal().User, got.Principal().Roles)
	fmt.Println(errors.Is(got.Verify(rootPub, "example.com", now.AddDate(0, 2, 0)), authz.ErrExpired))
	// Output:
	// <nil>
	// alice [team]
	// true
}

// A client signs each request with its session key; the server verifies
// the header against the request it received.
func ExampleSignRequest() {
	_, sessionKey, _ := ed25519.GenerateKey(nil)
	body := []byte(`{"repos": []}`)
	req := authz.Request{Method: "POST", Host: "db.example.com", PathQuery: "/v1/sync", Body: authz.BodyDigest(body)}

	// Client.
	header, err := authz.SignRequest(sessionKey, "example.com", req, time.Now(), authz.NewNonce(), "")
	if err != nil {
		fmt.Println(err)
		return
	}

	// Server: http.Request's Method, Host and RequestURI, and the digest
	// of the body it read.
	v, err := authz.NewVerifier("example.com", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	session, err := v.Verify(header, req)
	var signer commit.SessionID
	copy(signer[:], sessionKey.Public().(ed25519.PublicKey))
	fmt.Println(err, session == signer)
	_, err = v.Verify(header, req)
	fmt.Println(errors.Is(err, authz.ErrReplay), errors.Is(err, authz.ErrUnauthenticated))
	// Output:
	// <nil> true
	// true true
}

// A client whose clock is wrong is refused with a server nonce; it signs
// the request again, echoing the nonce, and is accepted.
func ExampleChallengeError() {
	_, sessionKey, _ := ed25519.GenerateKey(nil)
	req := authz.Request{Method: "GET", Host: "db.example.com", PathQuery: "/v1/events", Body: authz.BodyDigest(nil)}
	v, _ := authz.NewVerifier("example.com", nil)

	wrongClock := time.Now().Add(-15 * time.Minute)
	header, _ := authz.SignRequest(sessionKey, "example.com", req, wrongClock, authz.NewNonce(), "")
	_, err := v.Verify(header, req)
	var challenge *authz.ChallengeError
	if !errors.As(err, &challenge) {
		fmt.Println(err)
		return
	}
	fmt.Println("401 with", authz.NonceHeaderName, "set:", errors.Is(err, authz.ErrStale))

	header, _ = authz.SignRequest(sessionKey, "example.com", req, wrongClock, authz.NewNonce(), challenge.Nonce)
	_, err = v.Verify(header, req)
	fmt.Println(err)
	// Output:
	// 401 with Goat-Nonce set: true
	// <nil>
}
