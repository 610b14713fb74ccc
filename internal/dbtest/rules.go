package dbtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/item"
)

// OwnerRules are the rules the authorization tests share: items of
// /data/tasks are readable by logged-in users, and writable by their
// owner (the "owner" field), who may not hand them to someone else. The
// reasons they give are "only OWNER may change this task" and "the owner
// of a task is its writer".
func OwnerRules(t testing.TB) *authz.Rules {
	t.Helper()
	owner := func(it item.Item) string {
		if v, ok := it.Get("owner"); ok && v.Type() == item.TypeString {
			return v.Str()
		}
		return ""
	}
	var b authz.Builder
	b.Handle("/data/tasks/{id}", authz.Rule{
		Scope: authz.ByRepo,
		Read:  func(_ context.Context, p authz.Principal, _ authz.Ref, _ item.Item) bool { return p.User != "" },
		Write: func(_ context.Context, p authz.Principal, _ authz.Ref, before, after item.Item) error {
			switch {
			case before.Len() > 0 && owner(before) != p.User:
				return fmt.Errorf("only %s may change this task", owner(before))
			case owner(after) != p.User:
				return errors.New("the owner of a task is its writer")
			}
			return nil
		},
	})
	r, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
