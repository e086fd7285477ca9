package catalog

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzMarshalEntity checks that MarshalEntity writes exactly the bytes
// encoding/json writes, for any decoded properties and any strings.
func FuzzMarshalEntity(f *testing.F) {
	f.Add(`{"a":1,"b":[1.5e-7,2e21,-0.0,123456789,true,null,{"x":"<&>"}],"c":"\u2028\b\f\u0001\t\"\\"}`, "id", "tïtle\xff", "team")
	f.Add(`{"n":1e-6,"m":1e20,"s":"","o":{},"l":[]}`, "", "", "")
	f.Add(schemaBenchEntity, "x", "y", "z")
	f.Fuzz(func(t *testing.T, props, id, title, team string) {
		var p map[string]any
		if json.Unmarshal([]byte(props), &p) != nil {
			return
		}
		e := &Entity{
			Identifier: id, Title: title, Blueprint: "svc", Icon: team, Properties: p,
			Relations: map[string]any{"one": title, "many": []string{id, team}, "none": []string(nil), "raw": []any{"a"}},
			CreatedAt: time.Unix(1700000000, 123456789).UTC(), UpdatedAt: time.Unix(1700000001, 0).In(time.FixedZone("x", 3600)),
			CreatedBy: id, Datasource: team,
		}
		if team != "" {
			e.Team = []string{team, title}
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := MarshalEntity(e); string(got) != string(want) {
			t.Fatalf("MarshalEntity:\n%s\nencoding/json:\n%s", got, want)
		}
	})
}

func TestSameContent(t *testing.T) {
	base := func() *Entity {
		return &Entity{Identifier: "a", Blueprint: "b", Title: "T", Team: []string{"x"},
			Properties: map[string]any{"n": 1.0, "l": []any{"p", 2.0}}, Relations: map[string]any{"r": []string{"c"}},
			CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0), Datasource: "api"}
	}
	for _, tc := range []struct {
		name   string
		change func(e *Entity)
		same   bool
	}{
		{"identical", func(*Entity) {}, true},
		{"meta fields only", func(e *Entity) { e.UpdatedAt, e.UpdatedBy, e.CreatedBy = time.Unix(9, 0), "u", "c" }, true},
		{"relation decoded as []any", func(e *Entity) { e.Relations["r"] = []any{"c"} }, true},
		{"team removed", func(e *Entity) { e.Team = nil }, false},
		{"title", func(e *Entity) { e.Title = "U" }, false},
		{"property value", func(e *Entity) { e.Properties["n"] = 2.0 }, false},
		{"property type", func(e *Entity) { e.Properties["n"] = "1" }, false},
		{"array order", func(e *Entity) { e.Properties["l"] = []any{2.0, "p"} }, false},
		{"relation target", func(e *Entity) { e.Relations["r"] = []string{"d"} }, false},
		{"datasource", func(e *Entity) { e.Datasource = "plugin" }, false},
	} {
		b := base()
		tc.change(b)
		if got := sameContent(base(), b); got != tc.same {
			t.Errorf("%s: sameContent = %v, want %v", tc.name, got, tc.same)
		}
	}
}

// TestSameValue: sameValue agrees with comparing encodings.
func TestSameValue(t *testing.T) {
	values := []any{nil, "a", "b", true, false, 1.0, 2, float64(2), []any{}, []any{"a"}, []any{"a", 1.0},
		map[string]any{}, map[string]any{"a": 1.0}, map[string]any{"a": 1}, map[string]any{"a": []any{true}},
		map[string]any{"b": 1.0}, []string{"a"}}
	for _, a := range values {
		for _, b := range values {
			want := string(appendValue(nil, a)) == string(appendValue(nil, b))
			if got := sameValue(a, b); got != want {
				t.Errorf("sameValue(%#v, %#v) = %v, want %v", a, b, got, want)
			}
		}
	}
}
