package schema_test

import (
	"errors"
	"fmt"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

func ExampleRegistry_Register() {
	r := schema.NewRegistry()
	err := r.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "done", Type: item.TypeBool, Default: item.Bool(false)},
	}})
	fmt.Println(err)

	// A version can be registered once.
	err = r.Register(schema.Schema{NS: "task", Version: 1})
	fmt.Println(errors.Is(err, schema.ErrDuplicate), err)

	s, _ := r.Latest("task")
	fmt.Println(s.Ref())
	// Output:
	// <nil>
	// true schema task/1: schema: duplicate schema version
	// task/1
}

func ExampleRegistry_Upgrade() {
	r := schema.NewRegistry()
	v1 := schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "done", Type: item.TypeBool},
	}}
	v2 := schema.Schema{NS: "task", Version: 2,
		Fields: []schema.Field{
			{Name: "name", Type: item.TypeString, Required: true},
			{Name: "state", Type: item.TypeString, Default: item.String("open")},
		},
		Renames: map[string]string{"title": "name"},
		Upgrade: func(it item.Item) (item.Item, error) {
			// done: true becomes state "closed"; the default fills the rest.
			if done, _ := it.Get("done"); done.Bool() {
				it = it.With("state", item.String("closed"))
			}
			return it.Without("done"), nil
		},
	}
	// Versions may be registered in any order.
	for _, s := range []schema.Schema{v2, v1} {
		if err := r.Register(s); err != nil {
			fmt.Println(err)
		}
	}
	old := item.New(map[string]item.Value{"title": item.String("buy milk"), "done": item.Bool(true)})
	it, err := r.Upgrade(old, v1.Ref(), 2)
	fmt.Println(it, err)

	// Merges upgrade every leaf to the newest schema among them.
	fmt.Println(schema.Newest(v1.Ref(), commit.Schema{NS: "task", Version: 2}))
	// Output:
	// {name: "buy milk", state: "closed"} <nil>
	// task/2
}

func ExampleSchema_Check() {
	s := &schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "count", Type: item.TypeInt, Default: item.Int(0)},
	}}
	// Coerce converts a value without loss: the number 3 becomes the int 3.
	count, err := s.Coerce("count", item.Number(3))
	fmt.Printf("%#v %v\n", count, err)

	err = s.Check(item.New(map[string]item.Value{"count": count}))
	var fe *schema.FieldError
	if errors.As(err, &fe) {
		fmt.Printf("/data/tasks/t1: %v (field %s)\n", err, fe.Field)
	}
	// Output:
	// 3i <nil>
	// /data/tasks/t1: schema task/1: field "title": schema: missing required field (field title)
}

func ExampleParseFile() {
	schemas, err := schema.ParseFile([]byte(`{
	  "schemas": [
	    {"namespace": "task", "version": 1,
	     "fields": {"title": {"type": "string", "required": true, "maxLength": 100},
	                "state": {"type": "string", "enum": ["open", "closed"], "default": "open"}}}
	  ]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &schemas[0]
	fmt.Println(s.Ref(), len(s.Fields))
	_, err = s.Coerce("state", item.String("done"))
	fmt.Println(err)

	_, err = schema.ParseFile([]byte(`{"schemas": [{"namespace": "task", "version": 1, "fields": {"n": {"type": "int", "default": 1.5}}}]}`))
	fmt.Println(err)
	_, err = schema.ParseFile([]byte(`{"schemas": [{"namespace": "task",, "version": 1}]}`))
	fmt.Println(err)
	// Output:
	// task/1 2
	// schema task/1: field "state": schema: validation failed: "done" is not one of "open", "closed"
	// schema task/1: field "n": schema: invalid schema: default: want int, have 1.5
	// schema: bad schema file: line 1, column 35 (byte offset 34): invalid character ',' looking for beginning of object key string
}
