package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/pdk"
)

const incident = `{"id": "P123", "number": 42, "title": "Disk full", "status": "triggered",
 "service": {"id": "S1", "summary": "checkout"}, "teams": [{"id": "T1"}, {"id": "T2"}],
 "urgency": "high", "assignments": [], "priority": null}`

func TestMap(t *testing.T) {
	base := pdk.EntityMapping{Identifier: ".id", Blueprint: `"incident"`}
	tests := []struct {
		name     string
		selector string
		entity   pdk.EntityMapping
		want     *catalog.Entity // nil: not selected
		wantErr  string
	}{
		{name: "paths and literals", entity: pdk.EntityMapping{
			Identifier: ".id", Title: ".title", Blueprint: `"incident"`,
			Properties: map[string]string{"status": ".status", "service": ".service.summary", "missing": ".nope.deeper"},
			Relations:  map[string]string{"service": ".service.id"},
		}, want: &catalog.Entity{Identifier: "P123", Title: "Disk full", Blueprint: "incident",
			Properties: map[string]any{"status": "triggered", "service": "checkout"},
			Relations:  map[string]any{"service": "S1"}}},
		{name: "jq expressions", entity: pdk.EntityMapping{
			Identifier: `"pd-" + .id`, Blueprint: `if .urgency == "high" then "incident" else "alert" end`,
			Team:       "[.teams[].id]",
			Properties: map[string]string{"number": ".number + 1", "assigned": ".assignments | length > 0"},
			Relations:  map[string]string{"teams": "[.teams[].id]"},
		}, want: &catalog.Entity{Identifier: "pd-P123", Blueprint: "incident", Team: []string{"T1", "T2"},
			Properties: map[string]any{"number": 43.0, "assigned": false},
			Relations:  map[string]any{"teams": []string{"T1", "T2"}}}},
		{name: "numeric identifier", entity: pdk.EntityMapping{Identifier: ".number", Blueprint: `"incident"`},
			want: &catalog.Entity{Identifier: "42", Blueprint: "incident", Properties: map[string]any{}, Relations: map[string]any{}}},
		{name: "null property left out", entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"incident"`,
			Properties: map[string]string{"priority": ".priority"}},
			want: &catalog.Entity{Identifier: "P123", Blueprint: "incident", Properties: map[string]any{}, Relations: map[string]any{}}},
		{name: "selector true", selector: `.status == "triggered"`, entity: base,
			want: &catalog.Entity{Identifier: "P123", Blueprint: "incident", Properties: map[string]any{}, Relations: map[string]any{}}},
		{name: "selector false", selector: `.status == "resolved"`, entity: base},
		{name: "empty identifier", entity: pdk.EntityMapping{Identifier: ".nope", Blueprint: `"incident"`}, wantErr: "identifier: expression gave null"},
		{name: "object title", entity: pdk.EntityMapping{Identifier: ".id", Title: ".service", Blueprint: `"incident"`}, wantErr: "title: want a string, got object"},
		{name: "index a string", entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"incident"`,
			Properties: map[string]string{"x": ".title.foo"}}, wantErr: `cannot index string with "foo"`},
		{name: "jq runtime error", entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"incident"`,
			Properties: map[string]string{"x": ".title + 1"}}, wantErr: "property x:"},
	}
	var item any
	if err := json.Unmarshal([]byte(incident), &item); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile([]pdk.ResourceMapping{{Kind: "incidents", Selector: tt.selector, Entity: tt.entity}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map("incidents", item)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("got %d entities, want none", len(got))
				}
				return
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tt.want)
				t.Fatalf("got  %s\nwant [%s]", g, w)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile([]pdk.ResourceMapping{
		{Kind: "a", Entity: pdk.EntityMapping{Identifier: ".id | ", Blueprint: `"x"`}},
		{Kind: "", Entity: pdk.EntityMapping{Blueprint: `"x"`, Properties: map[string]string{"p": "undefined_fn(1)"}}},
	})
	var verr *catalog.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	var paths []string
	for _, v := range verr.Violations {
		paths = append(paths, v.Path)
	}
	want := []string{"/resources/0/entity/identifier", "/resources/1/kind", "/resources/1/entity/identifier", "/resources/1/entity/properties/p"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
}

func TestRefs(t *testing.T) {
	m, err := Compile([]pdk.ResourceMapping{
		{Kind: "item", Entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"exampleItem"`, Title: ".name"}},
		{Kind: "item", Selector: ".mirror", Entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"mirror"`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Refs("item", map[string]any{"id": "a"}) // a partial item: no name
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Ref{{Blueprint: "exampleItem", Identifier: "a"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("refs = %v, want %v", got, want)
	}
}

func BenchmarkMap(b *testing.B) {
	m, err := Compile([]pdk.ResourceMapping{{Kind: "item", Selector: "true", Entity: pdk.EntityMapping{
		Identifier: ".id", Title: ".name", Blueprint: `"exampleItem"`,
		Properties: map[string]string{"name": ".name", "status": ".status", "size": ".size"},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	item := map[string]any{"id": "item-1", "name": "Item 1", "status": "ok", "size": 1.0}
	for b.Loop() {
		if _, err := m.Map("item", item); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapJQ maps with expressions off the fast paths, through the jq
// interpreter.
func BenchmarkMapJQ(b *testing.B) {
	m, err := Compile([]pdk.ResourceMapping{{Kind: "item", Selector: `.status == "ok"`, Entity: pdk.EntityMapping{
		Identifier: ".id", Title: `.name + " (" + .status + ")"`, Blueprint: `"exampleItem"`,
		Properties: map[string]string{"name": ".name | ascii_downcase", "status": `.status // "unknown"`, "size": ".size * 2"},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	item := map[string]any{"id": "item-1", "name": "Item 1", "status": "ok", "size": 1.0}
	for b.Loop() {
		if _, err := m.Map("item", item); err != nil {
			b.Fatal(err)
		}
	}
}
