package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// schemaTestBlueprintJSON exercises every keyword of the schema subset.
const schemaTestBlueprintJSON = `{
  "identifier": "service",
  "title": "Service",
  "schema": {
    "properties": {
      "language":  {"type": "string", "enum": ["go", "python"]},
      "tier":      {"type": "integer", "minimum": 1, "maximum": 3},
      "ratio":     {"type": "number", "minimum": 0, "maximum": 1},
      "port":      {"type": "integer"},
      "name":      {"type": "string", "minLength": 2, "maxLength": 5},
      "slug":      {"type": "string", "pattern": "^[a-z]+$"},
      "homepage":  {"type": "string", "format": "url"},
      "contact":   {"type": "string", "format": "email"},
      "since":     {"type": "string", "format": "date-time"},
      "expiresAt": {"type": "string", "format": "timer"},
      "squad":     {"type": "string", "format": "team"},
      "lead":      {"type": "string", "format": "user"},
      "active":    {"type": "boolean"},
      "pinned":    {"type": "boolean", "enum": [true]},
      "size":      {"type": "number", "enum": [0.5, 1]},
      "meta":      {"type": "object"},
      "anything":  {"type": "array"},
      "tags":      {"type": "array", "items": {"type": "string", "maxLength": 3}},
      "ports":     {"type": "array", "items": {"type": "integer", "minimum": 1}},
      "emails":    {"type": "array", "items": {"type": "string", "format": "email"}}
    },
    "required": ["language"]
  },
  "relations": {
    "owner":     {"title": "Owner", "target": "team", "many": false},
    "dependsOn": {"target": "service", "many": true}
  },
  "calculationProperties": {
    "url":      {"type": "string", "jq": "\"https://svc/\" + .identifier"},
    "tierName": {"jq": "if .properties.tier == 1 then \"critical\" else \"normal\" end"}
  },
  "mirrorProperties": {
    "ownerSlack": {"path": "owner.slackChannel"},
    "ownerName":  {"path": "owner.$title"}
  }
}`

func schemaTestCompiled(t testing.TB) *CompiledBlueprint {
	t.Helper()
	bp, err := DecodeBlueprint([]byte(schemaTestBlueprintJSON))
	if err != nil {
		t.Fatalf("DecodeBlueprint: %v", err)
	}
	c, err := CompileBlueprint(bp)
	if err != nil {
		t.Fatalf("CompileBlueprint: %v", err)
	}
	return c
}

// schemaViolations returns the violations of err (which must be a
// *ValidationError or nil).
func schemaViolations(t *testing.T, err error) []Violation {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Violations
}

func schemaPaths(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Path)
	}
	return out
}

// schemaMutateBlueprint decodes the sample blueprint as generic JSON, lets
// mut change it and decodes the result as a Blueprint.
func schemaMutateBlueprint(t *testing.T, mut func(m map[string]any)) *Blueprint {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(schemaTestBlueprintJSON), &m); err != nil {
		t.Fatal(err)
	}
	mut(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := DecodeBlueprint(data)
	if err != nil {
		t.Fatalf("DecodeBlueprint: %v", err)
	}
	return bp
}

func schemaProps(m map[string]any) map[string]any {
	return m["schema"].(map[string]any)["properties"].(map[string]any)
}

func schemaJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

func TestCompileBlueprintSample(t *testing.T) {
	c := schemaTestCompiled(t)
	if c.Blueprint.Identifier != "service" {
		t.Fatalf("identifier %q", c.Blueprint.Identifier)
	}
	want := []Mirror{
		{Name: "ownerName", Relation: "owner", Property: "$title"},
		{Name: "ownerSlack", Relation: "owner", Property: "slackChannel"},
	}
	if got := c.Mirrors(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Mirrors() = %+v, want %+v", got, want)
	}
	if !c.HasProperty("tier") || c.HasProperty("url") || !c.IsComputed("url") || !c.IsComputed("ownerSlack") {
		t.Fatal("HasProperty/IsComputed disagree with the blueprint")
	}
}

func TestCompileBlueprintRules(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(m map[string]any)
		paths []string
		msg   string // substring of the first violation's message
	}{
		{"bad identifier", func(m map[string]any) { m["identifier"] = "-svc" }, []string{"/identifier"}, "must match"},
		{"missing identifier", func(m map[string]any) { delete(m, "identifier") }, []string{"/identifier"}, "required"},
		{"bad property name", func(m map[string]any) {
			schemaProps(m)["bad name"] = map[string]any{"type": "string"}
		}, []string{"/schema/properties/bad name"}, "name must match"},
		{"property name with slash is escaped", func(m map[string]any) {
			schemaProps(m)["a/b"] = map[string]any{"type": "nope"}
		}, []string{"/schema/properties/a~1b/type"}, "must be one of"},
		{"unknown type", func(m map[string]any) {
			schemaProps(m)["tier"] = map[string]any{"type": "int"}
		}, []string{"/schema/properties/tier/type"}, "must be one of string, number"},
		{"missing type", func(m map[string]any) {
			schemaProps(m)["tier"] = map[string]any{"title": "Tier"}
		}, []string{"/schema/properties/tier/type"}, "required"},
		{"unknown format", func(m map[string]any) {
			schemaProps(m)["homepage"] = map[string]any{"type": "string", "format": "uri"}
		}, []string{"/schema/properties/homepage/format"}, "must be one of url, email"},
		{"format on number", func(m map[string]any) {
			schemaProps(m)["port"] = map[string]any{"type": "integer", "format": "url"}
		}, []string{"/schema/properties/port/format"}, "only allowed on string"},
		{"format on array", func(m map[string]any) {
			schemaProps(m)["tags"] = map[string]any{"type": "array", "format": "email"}
		}, []string{"/schema/properties/tags/format"}, "items.format"},
		{"enum value of wrong type", func(m map[string]any) {
			schemaProps(m)["language"] = map[string]any{"type": "string", "enum": []any{"go", 3, "rust", true}}
		}, []string{"/schema/properties/language/enum/1", "/schema/properties/language/enum/3"}, "expected string, got number"},
		{"integer enum with fraction", func(m map[string]any) {
			schemaProps(m)["tier"] = map[string]any{"type": "integer", "enum": []any{1, 2.5}}
		}, []string{"/schema/properties/tier/enum/1"}, "expected integer, got number"},
		{"enum on object", func(m map[string]any) {
			schemaProps(m)["meta"] = map[string]any{"type": "object", "enum": []any{map[string]any{}}}
		}, []string{"/schema/properties/meta/enum"}, "only allowed on"},
		{"minimum on string", func(m map[string]any) {
			schemaProps(m)["name"] = map[string]any{"type": "string", "minimum": 1, "maximum": 2}
		}, []string{"/schema/properties/name/minimum", "/schema/properties/name/maximum"}, "only allowed on number and integer"},
		{"minimum above maximum", func(m map[string]any) {
			schemaProps(m)["tier"] = map[string]any{"type": "integer", "minimum": 4, "maximum": 3}
		}, []string{"/schema/properties/tier/minimum"}, "must be ≤ maximum (3)"},
		{"minLength on integer", func(m map[string]any) {
			schemaProps(m)["port"] = map[string]any{"type": "integer", "minLength": 1, "maxLength": 2, "pattern": "x"}
		}, []string{"/schema/properties/port/minLength", "/schema/properties/port/maxLength", "/schema/properties/port/pattern"}, "only allowed on string"},
		{"minLength above maxLength", func(m map[string]any) {
			schemaProps(m)["name"] = map[string]any{"type": "string", "minLength": 6, "maxLength": 5}
		}, []string{"/schema/properties/name/minLength"}, "must be ≤ maxLength (5)"},
		{"negative maxLength", func(m map[string]any) {
			schemaProps(m)["name"] = map[string]any{"type": "string", "maxLength": -1}
		}, []string{"/schema/properties/name/maxLength"}, "must be ≥ 0"},
		{"bad pattern", func(m map[string]any) {
			schemaProps(m)["slug"] = map[string]any{"type": "string", "pattern": "(a"}
		}, []string{"/schema/properties/slug/pattern"}, "invalid regular expression"},
		{"items on string", func(m map[string]any) {
			schemaProps(m)["name"] = map[string]any{"type": "string", "items": map[string]any{"type": "string"}}
		}, []string{"/schema/properties/name/items"}, "only allowed on array"},
		{"nested array", func(m map[string]any) {
			schemaProps(m)["tags"] = map[string]any{"type": "array", "items": map[string]any{"type": "array"}}
		}, []string{"/schema/properties/tags/items/type"}, "nested arrays"},
		{"bad items keywords", func(m map[string]any) {
			schemaProps(m)["tags"] = map[string]any{"type": "array", "items": map[string]any{"type": "integer", "format": "url", "enum": []any{"a"}}}
		}, []string{"/schema/properties/tags/items/format", "/schema/properties/tags/items/enum/0"}, "only allowed on string"},
		{"default of wrong type", func(m map[string]any) {
			schemaProps(m)["tier"] = map[string]any{"type": "integer", "minimum": 1, "default": 0}
		}, []string{"/schema/properties/tier/default"}, "must be ≥ 1"},
		{"required names a missing property", func(m map[string]any) {
			m["schema"].(map[string]any)["required"] = []any{"language", "nope", "language"}
		}, []string{"/schema/required/1"}, `property "nope" is not defined`},
		{"relation without target", func(m map[string]any) {
			m["relations"].(map[string]any)["owner"] = map[string]any{"many": false}
		}, []string{"/relations/owner/target"}, "required"},
		{"relation with bad target", func(m map[string]any) {
			m["relations"].(map[string]any)["owner"] = map[string]any{"target": "a b"}
		}, []string{"/relations/owner/target"}, "must match"},
		{"relation with bad name", func(m map[string]any) {
			m["relations"].(map[string]any)["_x"] = map[string]any{"target": "team"}
		}, []string{"/relations/_x"}, "name must match"},
		{"relation collides with property", func(m map[string]any) {
			m["relations"].(map[string]any)["tier"] = map[string]any{"target": "team"}
		}, []string{"/relations/tier"}, `collides with property "tier"`},
		{"calculation collides with relation", func(m map[string]any) {
			m["calculationProperties"].(map[string]any)["owner"] = map[string]any{"jq": ".title"}
		}, []string{"/calculationProperties/owner"}, `collides with relation "owner"`},
		{"mirror collides with calculation", func(m map[string]any) {
			m["mirrorProperties"].(map[string]any)["url"] = map[string]any{"path": "owner.$title"}
		}, []string{"/mirrorProperties/url"}, `collides with calculation property "url"`},
		{"jq syntax error", func(m map[string]any) {
			m["calculationProperties"].(map[string]any)["url"] = map[string]any{"jq": ".identifier +"}
		}, []string{"/calculationProperties/url/jq"}, "invalid jq"},
		{"jq compile error", func(m map[string]any) {
			m["calculationProperties"].(map[string]any)["url"] = map[string]any{"jq": "nosuchfunction(1)"}
		}, []string{"/calculationProperties/url/jq"}, "invalid jq"},
		{"jq missing", func(m map[string]any) {
			m["calculationProperties"].(map[string]any)["url"] = map[string]any{"type": "string"}
		}, []string{"/calculationProperties/url/jq"}, "required"},
		{"calculation type unknown", func(m map[string]any) {
			m["calculationProperties"].(map[string]any)["url"] = map[string]any{"type": "text", "jq": "."}
		}, []string{"/calculationProperties/url/type"}, "must be one of"},
		{"mirror without dot", func(m map[string]any) {
			m["mirrorProperties"].(map[string]any)["ownerSlack"] = map[string]any{"path": "owner"}
		}, []string{"/mirrorProperties/ownerSlack/path"}, "<relation>.<property>"},
		{"mirror on unknown relation", func(m map[string]any) {
			m["mirrorProperties"].(map[string]any)["ownerSlack"] = map[string]any{"path": "team.slack"}
		}, []string{"/mirrorProperties/ownerSlack/path"}, `relation "team" is not defined in blueprint service`},
		{"mirror with bad property", func(m map[string]any) {
			m["mirrorProperties"].(map[string]any)["ownerSlack"] = map[string]any{"path": "owner.$nope"}
		}, []string{"/mirrorProperties/ownerSlack/path"}, "meta-property"},
		{"mirror path missing", func(m map[string]any) {
			m["mirrorProperties"].(map[string]any)["ownerSlack"] = map[string]any{}
		}, []string{"/mirrorProperties/ownerSlack/path"}, "required"},
		{"several problems at once", func(m map[string]any) {
			m["identifier"] = ""
			schemaProps(m)["tier"] = map[string]any{"type": "int"}
			m["relations"].(map[string]any)["owner"] = map[string]any{}
		}, []string{"/identifier", "/schema/properties/tier/type", "/relations/owner/target"}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bp := schemaMutateBlueprint(t, tt.mut)
			c, err := CompileBlueprint(bp)
			vs := schemaViolations(t, err)
			if got := schemaPaths(vs); !reflect.DeepEqual(got, tt.paths) {
				t.Fatalf("paths = %q, want %q (err: %v)", got, tt.paths, err)
			}
			if c != nil {
				t.Fatal("CompileBlueprint returned a blueprint along with an error")
			}
			if !strings.Contains(vs[0].Message, tt.msg) {
				t.Fatalf("message %q does not contain %q", vs[0].Message, tt.msg)
			}
		})
	}
}

func TestCompileBlueprintMinimal(t *testing.T) {
	c, err := CompileBlueprint(&Blueprint{Identifier: "team"})
	if err != nil {
		t.Fatal(err)
	}
	e := &Entity{Identifier: "payments"}
	if err := c.ValidateEntity(e); err != nil {
		t.Fatal(err)
	}
	if c.Calculate(e) != nil || c.Mirrors() != nil {
		t.Fatal("a blueprint without calculations or mirrors computed something")
	}
	if _, err := CompileBlueprint(nil); err == nil {
		t.Fatal("nil blueprint accepted")
	}
}

func TestCompileBlueprintMirrorPathWithDots(t *testing.T) {
	bp := &Blueprint{
		Identifier: "svc",
		Relations: map[string]Relation{
			"a":   {Target: "x"},
			"a.b": {Target: "y"},
		},
		MirrorProperties: map[string]MirrorProperty{
			"m1": {Path: "a.b.c"},
			"m2": {Path: "a.c.d"},
		},
	}
	c, err := CompileBlueprint(bp)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mirror{{"m1", "a.b", "c"}, {"m2", "a", "c.d"}}
	if got := c.Mirrors(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Mirrors() = %+v, want %+v", got, want)
	}
	if rel, prop, ok := c.MirrorPath("a.$identifier"); !ok || rel != "a" || prop != "$identifier" {
		t.Fatalf("MirrorPath = %q %q %v", rel, prop, ok)
	}
	if _, _, ok := c.MirrorPath("zz.title"); ok {
		t.Fatal("MirrorPath accepted an unknown relation")
	}
}

func TestValidateEntityRules(t *testing.T) {
	c := schemaTestCompiled(t)
	long := strings.Repeat("é", MaxTitleLength)
	tests := []struct {
		name   string
		entity string
		paths  []string
		msg    string // substring of the first violation's message
	}{
		{"valid minimal", `{"identifier":"checkout","properties":{"language":"go"}}`, nil, ""},
		{"valid full", `{"identifier":"checkout","title":"` + long + `","team":["payments","a@b.c"],
		  "properties":{"language":"python","tier":3,"ratio":0.5,"port":8080,"name":"ab","slug":"abc",
		  "homepage":"https://example.com/x?y=1","contact":"ops@example.com","since":"2024-01-02T15:04:05Z",
		  "expiresAt":"2024-01-02T15:04:05.123+02:00","squad":"payments","lead":"jane@example.com",
		  "active":false,"pinned":true,"size":1,"meta":{"a":[1]},"anything":[1,"x",null],
		  "tags":["a","bb"],"ports":[1,2],"emails":[]},
		  "relations":{"owner":"payments","dependsOn":["cart","pricing"]}}`, nil, ""},
		{"bad identifier", `{"identifier":"-x","properties":{"language":"go"}}`, []string{"/identifier"}, "must match ^[A-Za-z0-9]"},
		{"identifier too long", `{"identifier":"` + strings.Repeat("a", 201) + `","properties":{"language":"go"}}`, []string{"/identifier"}, "must match"},
		{"missing identifier", `{"properties":{"language":"go"}}`, []string{"/identifier"}, "required"},
		{"title too long", `{"identifier":"x","title":"` + long + `x","properties":{"language":"go"}}`, []string{"/title"}, "at most 1000 characters"},
		{"bad team entries", `{"identifier":"x","team":["ok","not ok",""],"properties":{"language":"go"}}`, []string{"/team/1", "/team/2"}, "must match"},
		{"unknown property", `{"identifier":"x","properties":{"language":"go","colour":"red"}}`, []string{"/properties/colour"}, "not defined in blueprint service"},
		{"unknown property name is escaped", `{"identifier":"x","properties":{"language":"go","a/b~":1}}`, []string{"/properties/a~1b~0"}, "not defined"},
		{"required property missing", `{"identifier":"x","properties":{}}`, []string{"/properties/language"}, "required property missing"},
		{"required property null", `{"identifier":"x","properties":{"language":null}}`, []string{"/properties/language"}, "required property missing"},
		{"string got number", `{"identifier":"x","properties":{"language":1}}`, []string{"/properties/language"}, "expected string, got number"},
		{"enum", `{"identifier":"x","properties":{"language":"rust"}}`, []string{"/properties/language"}, `must be one of ["go","python"]`},
		{"integer got string", `{"identifier":"x","properties":{"language":"go","port":"80"}}`, []string{"/properties/port"}, "expected integer, got string"},
		{"integer got fraction", `{"identifier":"x","properties":{"language":"go","port":80.5}}`, []string{"/properties/port"}, "expected integer, got number"},
		{"integer below minimum", `{"identifier":"x","properties":{"language":"go","tier":0}}`, []string{"/properties/tier"}, "must be ≥ 1"},
		{"integer above maximum", `{"identifier":"x","properties":{"language":"go","tier":4}}`, []string{"/properties/tier"}, "must be ≤ 3"},
		{"number range", `{"identifier":"x","properties":{"language":"go","ratio":1.5}}`, []string{"/properties/ratio"}, "must be ≤ 1"},
		{"number got boolean", `{"identifier":"x","properties":{"language":"go","ratio":true}}`, []string{"/properties/ratio"}, "expected number, got boolean"},
		{"number enum", `{"identifier":"x","properties":{"language":"go","size":2}}`, []string{"/properties/size"}, "must be one of [0.5,1]"},
		{"minLength in runes", `{"identifier":"x","properties":{"language":"go","name":"é"}}`, []string{"/properties/name"}, "at least 2 characters"},
		{"maxLength in runes", `{"identifier":"x","properties":{"language":"go","name":"éééééé"}}`, []string{"/properties/name"}, "at most 5 characters"},
		{"multibyte within maxLength", `{"identifier":"x","properties":{"language":"go","name":"ééééé"}}`, nil, ""},
		{"pattern", `{"identifier":"x","properties":{"language":"go","slug":"ABC"}}`, []string{"/properties/slug"}, `must match pattern "^[a-z]+$"`},
		{"url relative", `{"identifier":"x","properties":{"language":"go","homepage":"/path"}}`, []string{"/properties/homepage"}, "http or https URL"},
		{"url ftp", `{"identifier":"x","properties":{"language":"go","homepage":"ftp://example.com"}}`, []string{"/properties/homepage"}, "URL"},
		{"url without host", `{"identifier":"x","properties":{"language":"go","homepage":"http://"}}`, []string{"/properties/homepage"}, "URL"},
		{"email with name", `{"identifier":"x","properties":{"language":"go","contact":"Jane <jane@example.com>"}}`, []string{"/properties/contact"}, "email address"},
		{"email garbage", `{"identifier":"x","properties":{"language":"go","contact":"jane"}}`, []string{"/properties/contact"}, "email address"},
		{"date-time", `{"identifier":"x","properties":{"language":"go","since":"2024-01-02"}}`, []string{"/properties/since"}, "RFC 3339"},
		{"timer", `{"identifier":"x","properties":{"language":"go","expiresAt":"tomorrow"}}`, []string{"/properties/expiresAt"}, "RFC 3339"},
		{"team format", `{"identifier":"x","properties":{"language":"go","squad":"two words"}}`, []string{"/properties/squad"}, "team identifier"},
		{"user format", `{"identifier":"x","properties":{"language":"go","lead":"jane"}}`, []string{"/properties/lead"}, "email address"},
		{"boolean", `{"identifier":"x","properties":{"language":"go","active":"yes"}}`, []string{"/properties/active"}, "expected boolean, got string"},
		{"boolean enum", `{"identifier":"x","properties":{"language":"go","pinned":false}}`, []string{"/properties/pinned"}, "must be one of [true]"},
		{"object", `{"identifier":"x","properties":{"language":"go","meta":[1]}}`, []string{"/properties/meta"}, "expected object, got array"},
		{"array", `{"identifier":"x","properties":{"language":"go","tags":"a"}}`, []string{"/properties/tags"}, "expected array, got string"},
		{"array items", `{"identifier":"x","properties":{"language":"go","tags":["a","toolong",3,null]}}`,
			[]string{"/properties/tags/1", "/properties/tags/2", "/properties/tags/3"}, "at most 3 characters"},
		{"array item paths sort numerically", `{"identifier":"x","properties":{"language":"go","ports":[0,1,1,1,1,1,1,1,1,1,0]}}`,
			[]string{"/properties/ports/0", "/properties/ports/10"}, "must be ≥ 1"},
		{"array item format", `{"identifier":"x","properties":{"language":"go","emails":["a@b.co","nope"]}}`, []string{"/properties/emails/1"}, "email address"},
		{"several violations on one value", `{"identifier":"x","properties":{"language":"go","name":"A"}}`, []string{"/properties/name"}, "at least 2"},
		{"unknown relation", `{"identifier":"x","properties":{"language":"go"},"relations":{"parent":"y"}}`, []string{"/relations/parent"}, "not defined in blueprint service"},
		{"single relation got array", `{"identifier":"x","properties":{"language":"go"},"relations":{"owner":["a"]}}`, []string{"/relations/owner"}, "expected string, got array"},
		{"single relation bad identifier", `{"identifier":"x","properties":{"language":"go"},"relations":{"owner":"a b"}}`, []string{"/relations/owner"}, "must match"},
		{"single relation empty string", `{"identifier":"x","properties":{"language":"go"},"relations":{"owner":""}}`, []string{"/relations/owner"}, "required"},
		{"many relation got number", `{"identifier":"x","properties":{"language":"go"},"relations":{"dependsOn":5}}`, []string{"/relations/dependsOn"}, "expected array of strings, got number"},
		{"many relation bad elements", `{"identifier":"x","properties":{"language":"go"},"relations":{"dependsOn":["ok",1,"no way"]}}`,
			[]string{"/relations/dependsOn/1", "/relations/dependsOn/2"}, "expected string, got number"},
		{"many relation bad single string", `{"identifier":"x","properties":{"language":"go"},"relations":{"dependsOn":"no way"}}`, []string{"/relations/dependsOn"}, "must match"},
		{"everything at once", `{"identifier":"","title":"` + long + `!","team":["?"],"properties":{"port":"x","colour":1},"relations":{"owner":1,"x":"y"}}`,
			[]string{"/identifier", "/properties/colour", "/properties/language", "/properties/port", "/relations/owner", "/relations/x", "/team/0", "/title"}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEntity([]byte(tt.entity))
			if err != nil {
				t.Fatalf("DecodeEntity: %v", err)
			}
			vs := schemaViolations(t, c.ValidateEntity(e))
			if got := schemaPaths(vs); !reflect.DeepEqual(got, tt.paths) {
				t.Fatalf("paths = %q, want %q (%+v)", got, tt.paths, vs)
			}
			if len(vs) > 0 && !strings.Contains(vs[0].Message, tt.msg) {
				t.Fatalf("message %q does not contain %q", vs[0].Message, tt.msg)
			}
		})
	}
}

func TestValidateEntityMultipleViolationsOnOneValue(t *testing.T) {
	bp := &Blueprint{Identifier: "x", Schema: Schema{Properties: map[string]Property{
		"code": {Type: "string", MinLength: new(int), MaxLength: new(int), Pattern: "^[0-9]+$", Enum: []any{""}},
	}}}
	c, err := CompileBlueprint(bp)
	if err != nil {
		t.Fatal(err)
	}
	vs := schemaViolations(t, c.ValidateEntity(&Entity{Identifier: "e", Properties: map[string]any{"code": "ab"}}))
	var msgs []string
	for _, v := range vs {
		if v.Path != "/properties/code" {
			t.Fatalf("path %q", v.Path)
		}
		msgs = append(msgs, v.Message)
	}
	want := []string{"must be at most 0 characters", `must match pattern "^[0-9]+$"`, `must be one of [""]`}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("messages %q, want %q", msgs, want)
	}
}

func TestValidateEntityNormalises(t *testing.T) {
	c := schemaTestCompiled(t)
	e, err := DecodeEntity([]byte(`{"identifier":"x",
	  "properties":{"language":"go","tier":null,"url":"echoed","ownerSlack":"#x"},
	  "relations":{"owner":null,"dependsOn":["a","b","a","c","b"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateEntity(e); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"language": "go"}; !reflect.DeepEqual(e.Properties, want) {
		t.Fatalf("properties = %v, want %v", e.Properties, want)
	}
	if want := map[string]any{"dependsOn": []string{"a", "b", "c"}}; !reflect.DeepEqual(e.Relations, want) {
		t.Fatalf("relations = %#v, want %#v", e.Relations, want)
	}

	// A single string for a many relation is wrapped.
	e = &Entity{Identifier: "x", Properties: map[string]any{"language": "go"},
		Relations: map[string]any{"dependsOn": "cart", "owner": "payments"}}
	if err := c.ValidateEntity(e); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"dependsOn": []string{"cart"}, "owner": "payments"}; !reflect.DeepEqual(e.Relations, want) {
		t.Fatalf("relations = %#v, want %#v", e.Relations, want)
	}
	// Values built in Go (not decoded) are accepted too.
	e = &Entity{Identifier: "x", Properties: map[string]any{"language": "go", "tier": 2, "tags": []string{"a"}},
		Relations: map[string]any{"dependsOn": []string{"a", "a"}}}
	if err := c.ValidateEntity(e); err != nil {
		t.Fatal(err)
	}
	if got := e.Relations["dependsOn"]; !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("dependsOn = %#v", got)
	}
	// Nil maps are fine.
	c2, _ := CompileBlueprint(&Blueprint{Identifier: "t"})
	if err := c2.ValidateEntity(&Entity{Identifier: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateEntityRequiredRelations(t *testing.T) {
	c, err := CompileBlueprint(&Blueprint{Identifier: "deployment", Relations: map[string]Relation{
		"service": {Target: "service", Required: true},
		"hosts":   {Target: "host", Many: true, Required: true},
		"extra":   {Target: "host", Many: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		relations map[string]any
		paths     []string
	}{
		{"present", map[string]any{"service": "s", "hosts": []any{"h"}}, nil},
		{"absent", nil, []string{"/relations/hosts", "/relations/service"}},
		{"null", map[string]any{"service": nil, "hosts": nil}, []string{"/relations/hosts", "/relations/service"}},
		{"empty many", map[string]any{"service": "s", "hosts": []any{}}, []string{"/relations/hosts"}},
		{"empty string single", map[string]any{"service": "", "hosts": "h"}, []string{"/relations/service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := schemaViolations(t, c.ValidateEntity(&Entity{Identifier: "d", Relations: tt.relations}))
			if got := schemaPaths(vs); !reflect.DeepEqual(got, tt.paths) {
				t.Fatalf("paths = %q, want %q (%+v)", got, tt.paths, vs)
			}
			for _, v := range vs {
				if tt.name != "empty string single" && v.Message != "required relation missing" {
					t.Fatalf("message %q", v.Message)
				}
			}
		})
	}
}

func TestSchemaIdentifierMatchesPattern(t *testing.T) {
	cases := []string{"", "a", "A", "0", "-", "_a", "a_", "a b", "a\n", "a/b:c=d+e-f@g.h", "é", "aé",
		strings.Repeat("a", 199), strings.Repeat("a", 200), strings.Repeat("a", 201), "a\x00", "a~", "a#", "a?"}
	for i := 0; i < 256; i++ {
		cases = append(cases, string([]byte{byte(i)}), "a"+string([]byte{byte(i)}))
	}
	for _, s := range cases {
		if got, want := schemaIsIdentifier(s), IdentifierPattern.MatchString(s); got != want {
			t.Errorf("schemaIsIdentifier(%q) = %v, pattern says %v", s, got, want)
		}
	}
}

func TestSchemaComparePointers(t *testing.T) {
	in := []string{"/team/0", "/a/10", "/a/2", "/a", "/a/b", "/"}
	for i := range in {
		for j := range in {
			if (schemaComparePointers(in[i], in[j]) == 0) != (i == j) {
				t.Fatalf("compare(%q, %q) = %d", in[i], in[j], schemaComparePointers(in[i], in[j]))
			}
		}
	}
	if schemaComparePointers("/a/2", "/a/10") >= 0 || schemaComparePointers("/a", "/a/0") >= 0 || schemaComparePointers("/a/x", "/b") >= 0 {
		t.Fatal("wrong order")
	}
}

func TestCalculate(t *testing.T) {
	bp := &Blueprint{
		Identifier: "service",
		Schema:     Schema{Properties: map[string]Property{"tier": {Type: "integer"}, "tags": {Type: "array"}}},
		Relations:  map[string]Relation{"dependsOn": {Target: "service", Many: true}},
		CalculationProperties: map[string]CalculationProperty{
			"url":       {Type: "string", JQ: `"https://svc/" + .identifier`},
			"bp":        {JQ: `.blueprint`},
			"tierPlus":  {Type: "integer", JQ: `.properties.tier + 1`},
			"deps":      {Type: "integer", JQ: `.relations.dependsOn | length`},
			"team":      {JQ: `.team[0]`},
			"fails":     {JQ: `error("boom")`},
			"empty":     {JQ: `empty`},
			"wrongType": {Type: "number", JQ: `"x"`},
			"first":     {JQ: `1, 2`},
			"created":   {JQ: `.createdAt`},
			"forever":   {JQ: `def f: f; f`},
			"loop":      {JQ: `[range(1e12)] | length`},
			"env":       {JQ: `$ENV | length`},
			"big":       {JQ: `100000000000000000000000`},
			"tagList":   {Type: "array", JQ: `.properties.tags`},
		},
	}
	c, err := CompileBlueprint(bp)
	if err != nil {
		t.Fatal(err)
	}
	e := &Entity{Identifier: "checkout", Team: []string{"payments"}, CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Properties: map[string]any{"tier": 1.0, "tags": []string{"a"}},
		Relations:  map[string]any{"dependsOn": []string{"a", "b"}}}
	start := time.Now()
	got := c.Calculate(e)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Calculate took %v", d)
	}
	want := map[string]any{
		"url": "https://svc/checkout", "bp": "service", "tierPlus": 2.0, "deps": 2.0, "team": "payments",
		"fails": nil, "empty": nil, "wrongType": nil, "first": 1.0, "created": "2024-01-02T03:04:05Z",
		"forever": nil, "loop": nil, "env": 0.0, "big": 1e23, "tagList": []any{"a"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Calculate = %#v\nwant        %#v", got, want)
	}
	// The input is a copy: an expression cannot change the entity.
	if _, ok := e.Properties["tags"].([]string); !ok {
		t.Fatal("Calculate changed the entity")
	}
}

func TestCalculateConcurrent(t *testing.T) {
	c := schemaTestCompiled(t)
	done := make(chan map[string]any)
	for i := 0; i < 8; i++ {
		go func(i int) {
			e := &Entity{Identifier: fmt.Sprintf("s%d", i), Properties: map[string]any{"tier": 1.0}}
			done <- c.Calculate(e)
		}(i)
	}
	for i := 0; i < 8; i++ {
		m := <-done
		if m["tierName"] != "critical" || !strings.HasPrefix(m["url"].(string), "https://svc/s") {
			t.Fatalf("Calculate = %v", m)
		}
	}
}

func TestDecodeEntity(t *testing.T) {
	e, err := DecodeEntity([]byte(` {"identifier":"checkout","title":"Checkout","icon":"go","team":["payments"],
	  "blueprint":"service","createdAt":"whatever","updatedAt":1,"createdBy":{"x":1},"updatedBy":null,"datasource":"ui",
	  "properties":{"language":"go","tier":1},"relations":{"owner":"payments","dependsOn":["cart"]}} `))
	if err != nil {
		t.Fatal(err)
	}
	want := &Entity{Identifier: "checkout", Title: "Checkout", Icon: "go", Blueprint: "service", Team: []string{"payments"},
		Properties: map[string]any{"language": "go", "tier": 1.0},
		Relations:  map[string]any{"owner": "payments", "dependsOn": []any{"cart"}}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("DecodeEntity = %#v\nwant %#v", e, want)
	}
	e, err = DecodeEntity([]byte(`{"identifier":"x","properties":null}`))
	if err != nil || e.Properties == nil || e.Relations == nil {
		t.Fatalf("DecodeEntity = %#v, %v: maps must not be nil", e, err)
	}

	bad := map[string]string{
		"empty":              ``,
		"blank":              "  \n",
		"null":               `null`,
		"array":              `[{"identifier":"x"}]`,
		"string":             `"x"`,
		"syntax":             `{"identifier":"x",}`,
		"truncated":          `{"identifier":"x"`,
		"unknown field":      `{"identifier":"x","colour":"red"}`,
		"wrong case":         `{"Identifier":"x"}`,
		"duplicate":          `{"identifier":"x","identifier":"y"}`,
		"trailing object":    `{"identifier":"x"}{}`,
		"trailing garbage":   `{"identifier":"x"} x`,
		"identifier number":  `{"identifier":5}`,
		"team string":        `{"identifier":"x","team":"payments"}`,
		"team numbers":       `{"identifier":"x","team":[1]}`,
		"properties array":   `{"identifier":"x","properties":[]}`,
		"relations string":   `{"identifier":"x","relations":"a"}`,
		"number overflow":    `{"identifier":"x","properties":{"a":1e400}}`,
		"invalid utf8 key":   "{\"identifier\":\"x\",\"properties\":{\"a\":1,}}",
		"blueprint not text": `{"identifier":"x","blueprint":[]}`,
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEntity([]byte(in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEntity(%q) = %v, want ErrMalformed", in, err)
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				t.Fatal("decode errors must not be validation errors")
			}
		})
	}
	_, err = DecodeEntity([]byte(`{"identifier":"x","colour":"red"}`))
	if err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Fatalf("error %v does not name the field", err)
	}
	_, err = DecodeEntity([]byte(`{"identifier":"x","team":[1]}`))
	if err == nil || !strings.Contains(err.Error(), "team") {
		t.Fatalf("error %v does not name the field", err)
	}
}

func TestDecodeBlueprint(t *testing.T) {
	bp, err := DecodeBlueprint([]byte(`{"identifier":"team","title":"Team","createdAt":"x","updatedAt":null,
	  "schema":{"properties":{"slack":{"type":"string","minLength":1}},"required":["slack"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	want := &Blueprint{Identifier: "team", Title: "Team", Schema: Schema{
		Properties: map[string]Property{"slack": {Type: "string", MinLength: &one}}, Required: []string{"slack"}}}
	if !reflect.DeepEqual(bp, want) {
		t.Fatalf("DecodeBlueprint = %#v, want %#v", bp, want)
	}
	bad := map[string]string{
		"empty":            ``,
		"null":             `null`,
		"array":            `[]`,
		"syntax":           `{"identifier":}`,
		"unknown field":    `{"identifier":"x","colour":"red"}`,
		"unknown nested":   `{"identifier":"x","schema":{"properties":{"a":{"type":"string","minlen":1}}}}`,
		"unknown relation": `{"identifier":"x","relations":{"a":{"target":"y","cardinality":"many"}}}`,
		"mistyped":         `{"identifier":"x","schema":{"properties":{"a":{"type":"string","minLength":"1"}}}}`,
		"fractional int":   `{"identifier":"x","schema":{"properties":{"a":{"type":"string","minLength":1.5}}}}`,
		"trailing":         `{"identifier":"x"} []`,
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeBlueprint([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeBlueprint(%q) = %v, want ErrMalformed", in, err)
			}
		})
	}
	_, err = DecodeBlueprint([]byte(`{"identifier":"x","schema":{"properties":{"a":{"type":"string","minLength":"1"}}}}`))
	if err == nil || !strings.Contains(err.Error(), "schema.properties.minLength: expected integer, got string") {
		t.Fatalf("error %v does not name the field", err)
	}
}

// schemaBenchEntity is about 1 KB of JSON: 10 properties, 2 relations.
const schemaBenchEntity = `{"identifier":"checkout-service","title":"Checkout service","team":["payments","platform"],
 "properties":{"language":"go","tier":2,"ratio":0.25,"port":8080,"name":"chk","slug":"checkout",
  "homepage":"https://checkout.example.com/docs/index.html","since":"2023-06-01T12:00:00Z",
  "tags":["web","api","pci"],"meta":{"repo":"https://github.com/example/checkout","notes":"` +
	`Handles the checkout flow for every storefront, including the payment hand-off, the basket ` +
	`revalidation and the order confirmation e-mails; owned by the payments team since 2023 and ` +
	`running in three regions with an active-active set-up. The service is critical: tier 2. ` +
	`Incidents page the payments on-call rotation first; escalations go to the platform team, ` +
	`who also own the shared ingress, the service mesh and the deployment pipeline it uses. ` +
	`Runbooks live in the repository wiki; dashboards are linked from the homepage."}},
 "relations":{"owner":"payments","dependsOn":["cart","pricing","inventory","payments-gateway"]}}`

func BenchmarkValidateEntity(b *testing.B) {
	c := schemaTestCompiled(b)
	proto, err := DecodeEntity([]byte(schemaBenchEntity))
	if err != nil {
		b.Fatal(err)
	}
	if len(schemaBenchEntity) < 950 || len(proto.Properties) != 10 || len(proto.Relations) != 2 {
		b.Fatalf("bench entity: %d bytes, %d properties, %d relations", len(schemaBenchEntity), len(proto.Properties), len(proto.Relations))
	}
	deps := proto.Relations["dependsOn"].([]any)
	e := *proto
	e.Relations = map[string]any{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// ValidateEntity rewrites relations in place: restore the decoded form.
		e.Relations["owner"] = "payments"
		e.Relations["dependsOn"] = deps
		if err := c.ValidateEntity(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEntity(b *testing.B) {
	data := []byte(schemaBenchEntity)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntity(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCardinalityHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		prop string
		path string // violation path, "" when valid
		high bool
	}{
		{"plain string", `{"type": "string"}`, "", false},
		{"url", `{"type": "string", "format": "url"}`, "", true},
		{"email hinted low", `{"type": "string", "format": "email", "cardinality": "low"}`, "", false},
		{"string hinted high", `{"type": "string", "cardinality": "high"}`, "", true},
		{"array of urls", `{"type": "array", "items": {"type": "string", "format": "url"}}`, "", true},
		{"array hint wins", `{"type": "array", "cardinality": "low", "items": {"type": "string", "format": "url"}}`, "", false},
		{"array of hinted items", `{"type": "array", "items": {"type": "string", "cardinality": "high"}}`, "", true},
		{"unknown hint", `{"type": "string", "cardinality": "some"}`, "/schema/properties/p/cardinality", false},
		{"hint on a number", `{"type": "number", "cardinality": "high"}`, "/schema/properties/p/cardinality", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bp Blueprint
			if err := json.Unmarshal([]byte(`{"identifier": "b", "schema": {"properties": {"p": `+tc.prop+`}}}`), &bp); err != nil {
				t.Fatal(err)
			}
			_, err := CompileBlueprint(&bp)
			if tc.path != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Path != tc.path {
					t.Fatalf("error %v, want one violation at %s", err, tc.path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := bp.Schema.Properties["p"]
			if got := p.HighCardinality(); got != tc.high {
				t.Fatalf("HighCardinality() = %v, want %v", got, tc.high)
			}
		})
	}
}
