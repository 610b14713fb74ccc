package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

func registry(t *testing.T, title item.Type) *schema.Registry {
	t.Helper()
	reg := schema.NewRegistry()
	if err := reg.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: title, Required: true},
	}}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestSchemaBypassRefused: a client that registers its own, laxer version
// of a schema the server holds writes an item that breaks the server's;
// the server refuses the commit with the reason, keeps nothing of it, and
// its own writes to the item still work.
func TestSchemaBypassRefused(t *testing.T) {
	sdb := dbtest.OpenDB(t, &goatdb.Options{Schemas: registry(t, item.TypeString)})
	srv := serve(t, sdb, nil, "")
	cli := dbtest.OpenDB(t, &goatdb.Options{Schemas: registry(t, item.TypeInt)})
	if _, err := cli.Put("/data/t/x", goatdb.Fields{"title": 5}, goatdb.WithSchema("task")); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Sync(context.Background(), srv.url, "/data/t")
	if !errors.Is(err, goatdb.ErrRejected) || len(st.Rejected) != 1 || !strings.Contains(st.Rejected[0].Reason, "schema") {
		t.Fatalf("sync: %v, rejected %v", err, st.Rejected)
	}
	if _, err := sdb.Get("/data/t/x"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("the server holds the item: %v", err)
	}
	if _, err := sdb.Put("/data/t/x", goatdb.Fields{"title": "mine"}, goatdb.WithSchema("task")); err != nil {
		t.Fatalf("the owner cannot write the item: %v", err)
	}
}
