package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// TestEditSchemaInvalid saves values an item's schema refuses: the server
// answers 422, the console shows its reason next to the editor, and the
// item stays as it was until a valid save.
func TestEditSchemaInvalid(t *testing.T) {
	deadline := time.Now().Add(15 * time.Second)
	reg := schema.NewRegistry()
	if err := reg.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "count", Type: item.TypeInt, Default: item.Int(0)},
	}}); err != nil {
		t.Fatal(err)
	}
	s := newSiteWith(t, nil, &goatdb.Options{Schemas: reg})
	tab, cancel := context.WithDeadline(s.tab, deadline)
	defer cancel()
	s.tab = tab
	const path = "/data/tasks/t1"
	if _, err := s.db.Put(path, goatdb.Fields{"title": "write the docs", "count": 1}, goatdb.WithSchema("task")); err != nil {
		t.Fatal(err)
	}
	before, err := s.db.Get(path)
	if err != nil {
		t.Fatal(err)
	}

	s.open("#/item" + path)
	s.wait("the editor", `document.querySelector('#editor')?.value.includes('write the docs')`)
	if meta := s.text("#item-meta"); !strings.Contains(meta, "schema task/1") {
		t.Errorf("item meta %q, want the schema task/1", meta)
	}

	refused := []struct{ fields, reason string }{
		{`{"title": "write the docs", "count": "three"}`, `field "count": schema: wrong type: want int, have string "three"`},
		{`{"count": 2}`, `field "title": schema: missing required field`},
	}
	for i, r := range refused {
		s.setValue("#editor", r.fields)
		s.click("#save")
		s.wait("the refusal of "+r.fields, `document.querySelector('#editor-error')?.textContent.startsWith('422')`)
		msg := s.text("#editor-error")
		if !strings.Contains(msg, "422 invalid") || !strings.Contains(msg, r.reason) {
			t.Errorf("saving %s: editor error %q, want 422 invalid and %q", r.fields, msg, r.reason)
		}
		// Inline: in the editor's form, shown, and named by the editor.
		inline, err := chromedp.Run(s.tab, chromedp.Evaluate[bool](`(() => {
			const ed = document.querySelector('#editor'), box = document.querySelector('#editor-error');
			return ed.form.contains(box) && box.getBoundingClientRect().height > 0
				&& ed.getAttribute('aria-invalid') === 'true'
				&& ed.getAttribute('aria-describedby').split(' ').includes('editor-error');
		})()`))
		if err != nil {
			s.fail("check the error's place", err)
		}
		if !inline {
			t.Errorf("saving %s: the error is not shown next to the editor", r.fields)
		}
		if got := s.text("#editor-note"); got != "" {
			t.Errorf("saving %s: note %q after a refusal", r.fields, got)
		}
		if i == 0 {
			s.screenshot("editor-error")
		}
		after, err := s.db.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		if after.Head() != before.Head() || fmt.Sprint(after.Fields()) != fmt.Sprint(before.Fields()) {
			t.Errorf("after a refused save the server holds %v (head %v), want %v (head %v)", after.Fields(), after.Head(), before.Fields(), before.Head())
		}
	}

	s.setValue("#editor", `{"title": "write the docs", "count": 3}`)
	s.click("#save")
	s.wait("saved", `document.querySelector('#editor-note')?.textContent.includes('Saved')`)
	if msg := s.text("#editor-error"); msg != "" {
		t.Errorf("after a valid save the editor still shows %q", msg)
	}
	it, err := s.db.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	if it.Head() == before.Head() || it.Get("title") != "write the docs" || it.Get("count") != int64(3) || it.Schema().String() != "task/1" {
		t.Errorf("after a valid save the server holds %v (schema %v), want count 3 with schema task/1", it.Fields(), it.Schema())
	}
	if s.errs.String() != "" {
		t.Errorf("page errors: %s", s.errs)
	}
}
