package csvimport

import (
	"reflect"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

func service() *catalog.Blueprint {
	one := 1.0
	three := 3.0
	return &catalog.Blueprint{
		Identifier: "service",
		Schema: catalog.Schema{
			Properties: map[string]catalog.Property{
				"language": {Type: "string", Enum: []any{"go", "python"}},
				"tier":     {Type: "integer", Minimum: &one, Maximum: &three},
				"cost":     {Type: "number"},
				"public":   {Type: "boolean"},
				"ports":    {Type: "array", Items: &catalog.Property{Type: "integer"}},
				"tags":     {Type: "array"},
				"meta":     {Type: "object"},
				"homepage": {Type: "string", Format: "url"},
			},
			Required: []string{"language"},
		},
		Relations: map[string]catalog.Relation{
			"owner":     {Target: "team"},
			"dependsOn": {Target: "service", Many: true},
		},
	}
}

func TestReadCoerces(t *testing.T) {
	in := "identifier,title,team,language,tier,cost,public,ports,tags,meta,homepage,rel:owner,rel:dependsOn\n" +
		"checkout,Checkout,payments;web,go,1,2.5,yes,80;443,a; b ,\"{\"\"k\"\": 1}\",https://x.example,payments,cart;pricing\n" +
		"\n" +
		"cart,,,python,,,false,\"[1,2]\",,,,,\n"
	res, err := Read(strings.NewReader(in), "services.csv", service(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	want := []*catalog.Entity{
		{Identifier: "checkout", Title: "Checkout", Blueprint: "service", Team: []string{"payments", "web"},
			Properties: map[string]any{"language": "go", "tier": int64(1), "cost": 2.5, "public": true,
				"ports": []any{int64(80), int64(443)}, "tags": []any{"a", "b"}, "meta": map[string]any{"k": 1.0},
				"homepage": "https://x.example"},
			Relations: map[string]any{"owner": "payments", "dependsOn": []string{"cart", "pricing"}}},
		{Identifier: "cart", Blueprint: "service",
			Properties: map[string]any{"language": "python", "public": false, "ports": []any{1.0, 2.0}},
			Relations:  map[string]any{}},
	}
	if !reflect.DeepEqual(res.Entities, want) {
		t.Fatalf("entities:\n got %#v\nwant %#v", res.Entities, want)
	}
	if !reflect.DeepEqual(res.Lines, []int{2, 4}) {
		t.Fatalf("lines %v, want [2 4]", res.Lines)
	}
	targets := res.Targets()
	if !reflect.DeepEqual(targets, map[string][]string{"team": {"payments"}, "service": {"pricing"}}) {
		t.Fatalf("targets %v", targets)
	}
}

func TestReadRowErrors(t *testing.T) {
	tests := []struct {
		name string
		rows string
		want []string
	}{
		{"not an integer", "a,go,abc,", []string{`services.csv:2: column tier: "abc" is not an integer`}},
		{"over the maximum", "a,go,7,", []string{"services.csv:2: column tier: must be ≤ 3"}},
		{"not in the enum", "a,rust,1,", []string{"services.csv:2: column language: "}},
		{"required property missing", "a,,1,", []string{"services.csv:2: column language: required property missing"}},
		{"no identifier", ",go,1,", []string{"services.csv:2: column identifier: empty: every row needs an identifier"}},
		{"bad identifier", "a b,go,1,", []string{"services.csv:2: column identifier: must match"}},
		{"bad relation id", "a,go,1,x y", []string{"services.csv:2: column rel:owner: must match"}},
		{"too few cells", "a,go", []string{"services.csv:2: 2 cells, but the header has 4 columns"}},
		{"duplicate identifier", "a,go,1,\nb,go,1,\na,go,2,", []string{`services.csv:4: column identifier: "a" already on line 2`}},
		{"several rows, each its line", "a,go,x,\nb,go,1,\nc,go,y,", []string{
			`services.csv:2: column tier: "x" is not an integer`, `services.csv:4: column tier: "y" is not an integer`}},
		{"a quoted newline counts", "\"a\",go,1,\n\"b\nc\",go,1,\nd,go,z,", []string{
			"services.csv:3: column identifier: must match", `services.csv:5: column tier: "z" is not an integer`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Read(strings.NewReader("identifier,language,tier,rel:owner\n"+tt.rows+"\n"), "services.csv", service(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %v", len(res.Errors), res.Errors, tt.want)
			}
			for i, w := range tt.want {
				if got := res.Errors[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("error %d: %q, want it to start with %q", i, got, w)
				}
			}
		})
	}
}

func TestReadHeaderErrors(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"unknown property", "identifier,colour", `services.csv:1: column colour: blueprint service has no property "colour"`},
		{"unknown relation", "identifier,rel:parent", `services.csv:1: column rel:parent: blueprint service has no relation "parent"`},
		{"no identifier column", "title,language", "services.csv:1: no identifier column"},
		{"twice", "identifier,tier,tier", `services.csv:1: column "tier" appears twice`},
		{"empty file", "", "services.csv: empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.header), "services.csv", service(), Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckTargets(t *testing.T) {
	in := "identifier,language,rel:owner,rel:dependsOn\n" +
		"a,go,payments,b\n" +
		"b,go,ghosts,\n" +
		"c,go,,zzz;a\n"
	res, err := Read(strings.NewReader(in), "s.csv", service(), Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatal(err, res.Errors)
	}
	res.CheckTargets(map[string]map[string]bool{"team": {"payments": true}})
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Error())
	}
	want := []string{`s.csv:3: column rel:owner: no team "ghosts" in the file or the portal`,
		`s.csv:4: column rel:dependsOn: no service "zzz" in the file or the portal`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if len(res.Entities) != 1 || res.Entities[0].Identifier != "a" || res.Lines[0] != 2 {
		t.Fatalf("kept %v", res.Entities)
	}
}

func TestCoerce(t *testing.T) {
	tests := []struct {
		cell string
		p    catalog.Property
		want any
		err  string
	}{
		{"42", catalog.Property{Type: "integer"}, int64(42), ""},
		{"4.2", catalog.Property{Type: "integer"}, nil, `"4.2" is not an integer`},
		{"-1.5e3", catalog.Property{Type: "number"}, -1500.0, ""},
		{"NaN", catalog.Property{Type: "number"}, nil, `"NaN" is not a number`},
		{"TRUE", catalog.Property{Type: "boolean"}, true, ""},
		{"0", catalog.Property{Type: "boolean"}, false, ""},
		{"maybe", catalog.Property{Type: "boolean"}, nil, `"maybe" is not a boolean`},
		{`{"a": [1]}`, catalog.Property{Type: "object"}, map[string]any{"a": []any{1.0}}, ""},
		{`[1]`, catalog.Property{Type: "object"}, nil, "is not a JSON object"},
		{"x; y", catalog.Property{Type: "array"}, []any{"x", "y"}, ""},
		{"1;b", catalog.Property{Type: "array", Items: &catalog.Property{Type: "number"}}, nil, `item "b" is not a number`},
		{`["a;b"]`, catalog.Property{Type: "array"}, []any{"a;b"}, ""},
		{"plain text, kept", catalog.Property{Type: "string"}, "plain text, kept", ""},
	}
	for _, tt := range tests {
		got, err := Coerce(tt.cell, tt.p, ";")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Coerce(%q, %s): err %v, want %q", tt.cell, tt.p.Type, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Coerce(%q, %s) = %#v, %v; want %#v", tt.cell, tt.p.Type, got, err, tt.want)
		}
	}
}
