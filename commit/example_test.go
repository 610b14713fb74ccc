package commit_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// A session signs a commit with its key; anyone holding the bytes can
// decode the commit and check who wrote it, without a lookup.
func ExampleNew() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	var session commit.SessionID
	copy(session[:], pub)

	c, err := commit.New(commit.Fields{
		Key:     "task-1",
		Time:    1_795_000_000_000,
		Session: session,
		Full:    true,
		Schema:  commit.Schema{NS: "tasks", Version: 1},
		Value:   item.New(map[string]item.Value{"title": item.String("Buy milk")}),
	}, priv)
	if err != nil {
		panic(err)
	}

	d, err := commit.Decode(c.Encode())
	if err != nil {
		panic(err)
	}
	fmt.Println(d.ID() == c.ID(), d.Session() == session, d.VerifySignature(true))
	fmt.Println(d.Schema(), d.Timestamp().Format("2006-01-02"))
	// Output:
	// true true <nil>
	// tasks/1 2026-11-18
}

// Two peers that merge the same leaves write the same merge commit.
func ExampleNewMerge() {
	var session commit.SessionID
	session[0] = 1 // trusted mode: unsigned, but a session is still named
	leaf := func(title string, t int64) *commit.Commit {
		c, err := commit.New(commit.Fields{
			Key: "task-1", Time: t, Session: session, Full: true,
			Value: item.New(map[string]item.Value{"title": item.String(title)}),
		}, nil)
		if err != nil {
			panic(err)
		}
		return c
	}
	a, b := leaf("a", 1000), leaf("b", 2000)
	contents := commit.Fields{Full: true, Value: b.Value()}
	m1, _ := commit.NewMerge("task-1", []*commit.Commit{a, b}, contents)
	m2, _ := commit.NewMerge("task-1", []*commit.Commit{b, a}, contents)
	fmt.Println(m1.ID() == m2.ID(), m1.IsMerge(), m1.Time(), m1.Session().IsZero())
	// Output: true true 2000 true
}
