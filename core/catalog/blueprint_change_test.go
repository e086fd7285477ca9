package catalog

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// changeTestBlueprintJSON is the "old" definition every entityCheck case
// starts from (both sides are decoded from it, then edited).
const changeTestBlueprintJSON = `{
  "identifier": "service",
  "title": "Service",
  "description": "A deployable service",
  "icon": "Service",
  "schema": {
    "properties": {
      "tier":      {"type": "integer", "title": "Tier", "minimum": 1, "maximum": 3},
      "ratio":     {"type": "number", "minimum": 0, "maximum": 1},
      "language":  {"type": "string", "enum": ["go", "python"], "default": "go"},
      "size":      {"type": "number", "enum": [0.5, 1]},
      "pinned":    {"type": "boolean", "enum": [true]},
      "name":      {"type": "string", "minLength": 2, "maxLength": 5},
      "slug":      {"type": "string", "pattern": "^[a-z]+$"},
      "homepage":  {"type": "string", "format": "url"},
      "expiresAt": {"type": "string", "format": "timer", "expiryAction": "cleanup"},
      "note":      {"type": "string"},
      "meta":      {"type": "object"},
      "anything":  {"type": "array"},
      "tags":      {"type": "array", "items": {"type": "string", "maxLength": 3}},
      "ports":     {"type": "array", "items": {"type": "integer", "minimum": 1}}
    },
    "required": ["language"]
  },
  "relations": {
    "owner":     {"title": "Owner", "target": "team", "many": false, "required": true},
    "dependsOn": {"target": "service", "many": true}
  },
  "calculationProperties": {
    "url": {"type": "string", "jq": "\"https://svc/\" + .identifier"}
  },
  "mirrorProperties": {
    "ownerName": {"path": "owner.$title"}
  }
}`

func changeTestBlueprint(t testing.TB) *Blueprint {
	t.Helper()
	bp, err := DecodeBlueprint([]byte(changeTestBlueprintJSON))
	if err != nil {
		t.Fatalf("DecodeBlueprint: %v", err)
	}
	return bp
}

func ptrTo[T any](v T) *T { return &v }

// editProp applies f to property name of bp (a zero Property when absent).
func editProp(bp *Blueprint, name string, f func(*Property)) {
	p := bp.Schema.Properties[name]
	f(&p)
	bp.Schema.Properties[name] = p
}

func editRel(bp *Blueprint, name string, f func(*Relation)) {
	r := bp.Relations[name]
	f(&r)
	bp.Relations[name] = r
}

type entityCheckCase struct {
	name string
	edit func(old, next *Blueprint)
	want []string // nil: no check needed
}

var entityCheckCases = []entityCheckCase{
	// No check needed.
	{"unchanged", func(old, next *Blueprint) {}, nil},
	{"blueprint title, description, icon", func(_, n *Blueprint) {
		n.Title, n.Description, n.Icon = "Svc", "", "Box"
	}, nil},
	{"property title, description, icon", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Title, p.Description, p.Icon = "", "How critical", "Star" })
	}, nil},
	{"relation title", func(_, n *Blueprint) {
		editRel(n, "owner", func(r *Relation) { r.Title = "Owning team" })
	}, nil},
	{"permissions and ownership", func(_, n *Blueprint) {
		n.Permissions = &Permissions{Update: &Permission{Roles: []string{RoleAdmin}}}
		n.Ownership = &Ownership{Via: "owner"}
	}, nil},
	{"calculation and mirror properties", func(_, n *Blueprint) {
		n.CalculationProperties = map[string]CalculationProperty{
			"url":   {Type: "string", JQ: `"https://x/" + .identifier`},
			"score": {Type: "number", JQ: `.properties.tier * 2`},
		}
		n.MirrorProperties = nil
	}, nil},
	{"default, expiryAction, cardinality", func(_, n *Blueprint) {
		editProp(n, "language", func(p *Property) { p.Default = "python" })
		editProp(n, "expiresAt", func(p *Property) { p.ExpiryAction = "archive" })
		editProp(n, "note", func(p *Property) { p.Cardinality = CardinalityHigh })
	}, nil},
	{"new optional property", func(_, n *Blueprint) {
		n.Schema.Properties["region"] = Property{Type: "string", Enum: []any{"eu"}, MinLength: ptrTo(2)}
	}, nil},
	{"new optional relation", func(_, n *Blueprint) {
		n.Relations["repo"] = Relation{Target: "repository", Many: true}
	}, nil},
	{"property becomes optional", func(_, n *Blueprint) { n.Schema.Required = nil }, nil},
	{"relation becomes optional", func(_, n *Blueprint) {
		editRel(n, "owner", func(r *Relation) { r.Required = false })
	}, nil},
	{"enum removed", func(_, n *Blueprint) {
		editProp(n, "language", func(p *Property) { p.Enum = nil })
		editProp(n, "size", func(p *Property) { p.Enum = []any{} })
	}, nil},
	{"string enum superset, reordered", func(_, n *Blueprint) {
		editProp(n, "language", func(p *Property) { p.Enum = []any{"rust", "python", "go", "go"} })
	}, nil},
	{"number enum superset compared as JSON numbers", func(_, n *Blueprint) {
		editProp(n, "size", func(p *Property) { p.Enum = []any{2, json.Number("0.5"), float32(0.5), 1} })
	}, nil},
	{"boolean enum superset", func(_, n *Blueprint) {
		editProp(n, "pinned", func(p *Property) { p.Enum = []any{false, true} })
	}, nil},
	{"minimum lowered or removed", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Minimum = ptrTo(0.0) })
		editProp(n, "ratio", func(p *Property) { p.Minimum = nil })
	}, nil},
	{"maximum raised or removed", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Maximum = ptrTo(3.5) })
		editProp(n, "ratio", func(p *Property) { p.Maximum = nil })
	}, nil},
	{"minLength lowered, maxLength removed", func(_, n *Blueprint) {
		editProp(n, "name", func(p *Property) { p.MinLength, p.MaxLength = ptrTo(0), nil })
	}, nil},
	{"minLength removed, maxLength raised", func(_, n *Blueprint) {
		editProp(n, "name", func(p *Property) { p.MinLength, p.MaxLength = nil, ptrTo(6) })
	}, nil},
	{"pattern and format removed", func(_, n *Blueprint) {
		editProp(n, "slug", func(p *Property) { p.Pattern = "" })
		editProp(n, "homepage", func(p *Property) { p.Format = "" })
	}, nil},
	{"integer to number", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Type = "number" })
		editProp(n, "ports", func(p *Property) { p.Items.Type = "number" })
	}, nil},
	{"items removed", func(_, n *Blueprint) {
		editProp(n, "tags", func(p *Property) { p.Items = nil })
	}, nil},
	{"items widened", func(_, n *Blueprint) {
		editProp(n, "tags", func(p *Property) { p.Items = &Property{Type: "string", MaxLength: ptrTo(10)} })
		editProp(n, "ports", func(p *Property) { p.Items = &Property{Type: "number", Minimum: ptrTo(0.5)} })
	}, nil},

	// Check needed.
	{"property removed", func(_, n *Blueprint) {
		delete(n.Schema.Properties, "note")
	}, []string{"/schema/properties/note removed"}},
	{"property removed, name escaped", func(o, n *Blueprint) {
		o.Schema.Properties["team/lead"] = Property{Type: "string"}
	}, []string{"/schema/properties/team~1lead removed"}},
	{"type changed", func(_, n *Blueprint) {
		editProp(n, "note", func(p *Property) { p.Type = "integer" })
	}, []string{"/schema/properties/note/type changed"}},
	{"number to integer", func(_, n *Blueprint) {
		editProp(n, "ratio", func(p *Property) { p.Type = "integer" })
	}, []string{"/schema/properties/ratio/type changed"}},
	{"enum added", func(_, n *Blueprint) {
		editProp(n, "note", func(p *Property) { p.Enum = []any{"a", "b"} })
	}, []string{"/schema/properties/note/enum added"}},
	{"enum narrowed", func(_, n *Blueprint) {
		editProp(n, "language", func(p *Property) { p.Enum = []any{"go", "rust"} })
		editProp(n, "size", func(p *Property) { p.Enum = []any{0.5, 2.0} })
		editProp(n, "pinned", func(p *Property) { p.Enum = []any{false} })
	}, []string{
		"/schema/properties/language/enum narrowed",
		"/schema/properties/pinned/enum narrowed",
		"/schema/properties/size/enum narrowed",
	}},
	{"minimum raised or added", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Minimum = ptrTo(1.5) })
		editProp(n, "size", func(p *Property) { p.Minimum = ptrTo(0.0) })
	}, []string{"/schema/properties/size/minimum added", "/schema/properties/tier/minimum raised"}},
	{"maximum lowered or added", func(_, n *Blueprint) {
		editProp(n, "tier", func(p *Property) { p.Maximum = ptrTo(2.0) })
		editProp(n, "size", func(p *Property) { p.Maximum = ptrTo(100.0) })
	}, []string{"/schema/properties/size/maximum added", "/schema/properties/tier/maximum lowered"}},
	{"minLength raised, maxLength lowered", func(_, n *Blueprint) {
		editProp(n, "name", func(p *Property) { p.MinLength, p.MaxLength = ptrTo(3), ptrTo(4) })
	}, []string{"/schema/properties/name/maxLength lowered", "/schema/properties/name/minLength raised"}},
	{"minLength and maxLength added", func(_, n *Blueprint) {
		editProp(n, "note", func(p *Property) { p.MinLength, p.MaxLength = ptrTo(1), ptrTo(1000) })
	}, []string{"/schema/properties/note/maxLength added", "/schema/properties/note/minLength added"}},
	{"pattern added or changed", func(_, n *Blueprint) {
		editProp(n, "note", func(p *Property) { p.Pattern = "^[a-z]*$" })
		editProp(n, "slug", func(p *Property) { p.Pattern = "^[a-z-]+$" })
	}, []string{"/schema/properties/note/pattern added", "/schema/properties/slug/pattern changed"}},
	{"format added or changed", func(_, n *Blueprint) {
		editProp(n, "note", func(p *Property) { p.Format = "email" })
		editProp(n, "expiresAt", func(p *Property) { p.Format, p.ExpiryAction = "date-time", "" })
	}, []string{"/schema/properties/expiresAt/format changed", "/schema/properties/note/format added"}},
	{"items added", func(_, n *Blueprint) {
		editProp(n, "anything", func(p *Property) { p.Items = &Property{Type: "object"} })
	}, []string{"/schema/properties/anything/items added"}},
	{"items narrowed", func(_, n *Blueprint) {
		editProp(n, "tags", func(p *Property) { p.Items = &Property{Type: "string", MaxLength: ptrTo(2), Pattern: "x"} })
		editProp(n, "ports", func(p *Property) { p.Items = &Property{Type: "string"} })
	}, []string{
		"/schema/properties/ports/items/type changed",
		"/schema/properties/tags/items/maxLength lowered",
		"/schema/properties/tags/items/pattern added",
	}},
	{"property becomes required", func(_, n *Blueprint) {
		n.Schema.Required = []string{"tier", "language", "tier"}
	}, []string{"/schema/required/tier added"}},
	{"new required property", func(_, n *Blueprint) {
		n.Schema.Properties["region"] = Property{Type: "string"}
		n.Schema.Required = append(n.Schema.Required, "region")
	}, []string{"/schema/required/region added"}},
	{"new property over an old calculation", func(_, n *Blueprint) {
		delete(n.CalculationProperties, "url")
		n.Schema.Properties["url"] = Property{Type: "integer"}
	}, []string{"/schema/properties/url added over a computed property"}},
	{"relation removed", func(_, n *Blueprint) {
		delete(n.Relations, "dependsOn")
	}, []string{"/relations/dependsOn removed"}},
	{"relation retargeted", func(_, n *Blueprint) {
		editRel(n, "owner", func(r *Relation) { r.Target = "group" })
	}, []string{"/relations/owner/target changed"}},
	{"relation becomes many", func(_, n *Blueprint) {
		editRel(n, "owner", func(r *Relation) { r.Many = true })
	}, []string{"/relations/owner/many changed"}},
	{"relation becomes single", func(_, n *Blueprint) {
		editRel(n, "dependsOn", func(r *Relation) { r.Many = false })
	}, []string{"/relations/dependsOn/many changed"}},
	{"relation becomes required", func(_, n *Blueprint) {
		editRel(n, "dependsOn", func(r *Relation) { r.Required = true })
	}, []string{"/relations/dependsOn/required set"}},
	{"new required relation", func(_, n *Blueprint) {
		n.Relations["repo"] = Relation{Target: "repository", Required: true}
	}, []string{"/relations/repo added as required"}},
	{"identifier changed (a field compared generically)", func(_, n *Blueprint) {
		n.Identifier = "svc"
	}, []string{"/identifier changed"}},
	{"several reasons, sorted, title ignored", func(_, n *Blueprint) {
		n.Title = "Other"
		delete(n.Relations, "dependsOn")
		editProp(n, "tier", func(p *Property) { p.Maximum, p.Title = ptrTo(2.0), "T" })
		n.Schema.Required = []string{"language", "name"}
	}, []string{
		"/relations/dependsOn removed",
		"/schema/properties/tier/maximum lowered",
		"/schema/required/name added",
	}},
}

// changeTestPair returns the (old, next) pair of a case, both compiled to
// prove the case uses valid definitions.
func changeTestPair(t *testing.T, tc entityCheckCase) (old, next *Blueprint) {
	t.Helper()
	old, next = changeTestBlueprint(t), changeTestBlueprint(t)
	tc.edit(old, next)
	for _, bp := range []*Blueprint{old, next} {
		if _, err := CompileBlueprint(bp); err != nil {
			t.Fatalf("case definition does not compile: %v", err)
		}
	}
	return old, next
}

func TestEntityCheck(t *testing.T) {
	for _, tc := range entityCheckCases {
		t.Run(tc.name, func(t *testing.T) {
			old, next := changeTestPair(t, tc)
			needed, reasons := entityCheck(old, next)
			if needed != (tc.want != nil) || !slices.Equal(reasons, tc.want) {
				t.Fatalf("entityCheck = %v, %q; want %v, %q", needed, reasons, tc.want != nil, tc.want)
			}
		})
	}
}

func TestChangeListOthers(t *testing.T) {
	type future struct {
		Known  string `json:"known"`
		Added  int    `json:"added,omitempty"`
		hidden int
	}
	for _, tc := range []struct {
		name string
		a, b future
		want []string
	}{
		{"equal", future{Known: "x"}, future{Known: "x"}, nil},
		{"exported fields by JSON name", future{Known: "x"}, future{Known: "y", Added: 1}, []string{"/p/known changed", "/p/added changed"}},
		{"unexported field", future{hidden: 1}, future{}, []string{"/p changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c changeList
			c.others("/p", tc.a, tc.b)
			if !slices.Equal(c.reasons, tc.want) {
				t.Fatalf("reasons = %q, want %q", c.reasons, tc.want)
			}
		})
	}
}

// changeTestEntities are valid under changeTestBlueprintJSON, many of them
// at its bounds, so that a change wrongly called harmless refuses some.
var changeTestEntities = []string{
	`{"identifier": "minimal", "properties": {"language": "go"}, "relations": {"owner": "team-a"}}`,
	`{"identifier": "lower-bounds", "title": "Low",
	  "properties": {"language": "go", "tier": 1, "ratio": 0, "size": 0.5, "pinned": true, "name": "ab",
	    "slug": "a", "homepage": "http://x", "expiresAt": "2024-01-02T15:04:05Z", "tags": [], "ports": [1]},
	  "relations": {"owner": "team-a", "dependsOn": []}}`,
	`{"identifier": "upper-bounds",
	  "properties": {"language": "python", "tier": 3, "ratio": 1, "size": 1, "name": "abcde",
	    "slug": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "homepage": "https://example.com/a?b=c",
	    "tags": ["abc", "x", ""], "ports": [65535, 1e9]},
	  "relations": {"owner": "team-b", "dependsOn": ["svc-a", "svc-b", "svc-a"]}}`,
	`{"identifier": "runes", "properties": {"language": "go", "name": "ééééé", "tags": ["日本語"], "note": ""},
	  "relations": {"owner": "team-a", "dependsOn": "svc-a"}}`,
	`{"identifier": "loose", "team": ["platform"],
	  "properties": {"language": "go", "meta": {"a": [1, {"b": null}]}, "anything": [1, "x", null, {"a": 1}, [2]],
	    "note": "free text", "ratio": 0.5, "tier": 2.0, "url": "echoed calculation", "ownerName": "echoed mirror",
	    "size": null},
	  "relations": {"owner": "team-a", "dependsOn": null}}`,
}

// TestEntityCheckSound validates, under next, entities valid under old for
// every table case where entityCheck calls a check unnecessary.
func TestEntityCheckSound(t *testing.T) {
	decode := func(t *testing.T, text string) *Entity {
		t.Helper()
		var e Entity
		if err := json.Unmarshal([]byte(text), &e); err != nil {
			t.Fatalf("entity %s: %v", text, err)
		}
		return &e
	}
	pairs := 0
	for _, tc := range entityCheckCases {
		if tc.want != nil {
			continue
		}
		pairs++
		t.Run(tc.name, func(t *testing.T) {
			old, next := changeTestPair(t, tc)
			if needed, reasons := entityCheck(old, next); needed {
				t.Fatalf("entityCheck says needed: %q", reasons)
			}
			oc, _ := CompileBlueprint(old)
			nc, _ := CompileBlueprint(next)
			for _, text := range changeTestEntities {
				e := decode(t, text)
				if err := oc.ValidateEntity(e); err != nil { // normalises e, as stored
					t.Fatalf("entity %s is invalid under old: %v", e.Identifier, err)
				}
				if err := nc.ValidateEntity(e); err != nil {
					t.Errorf("entity %s valid under old, invalid under next: %v", e.Identifier, err)
				}
			}
		})
	}
	if pairs < 20 {
		t.Fatalf("only %d not-needed cases exercised", pairs)
	}
}

// TestEntityCheckEntitiesAtBounds proves the soundness test's entities
// discriminate: each tightening below refuses at least one of them.
func TestEntityCheckEntitiesAtBounds(t *testing.T) {
	for _, tc := range entityCheckCases {
		if tc.want == nil {
			continue
		}
		switch tc.name {
		case "property removed, name escaped", // no entity holds it
			"new property over an old calculation", // stored entities hold no computed value
			"relation retargeted", "relation becomes many", "identifier changed (a field compared generically)":
			continue // validity unchanged: conservative verdicts
		}
		t.Run(tc.name, func(t *testing.T) {
			old, next := changeTestPair(t, tc)
			oc, _ := CompileBlueprint(old)
			nc, _ := CompileBlueprint(next)
			for _, text := range changeTestEntities {
				var e Entity
				if err := json.Unmarshal([]byte(text), &e); err != nil {
					t.Fatal(err)
				}
				if oc.ValidateEntity(&e) != nil {
					t.Fatalf("entity %s invalid under old", e.Identifier)
				}
				if nc.ValidateEntity(&e) != nil {
					return
				}
			}
			t.Fatalf("no test entity is refused by next")
		})
	}
}

func TestLayoutChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(old, next *Blueprint)
		want []string
	}{
		{"unchanged", func(_, _ *Blueprint) {}, nil},
		{"hint matching the format's default", func(_, n *Blueprint) {
			editProp(n, "homepage", func(p *Property) { p.Cardinality = CardinalityHigh })
			editProp(n, "note", func(p *Property) { p.Cardinality = CardinalityLow })
		}, nil},
		{"hints flipping the layout", func(_, n *Blueprint) {
			editProp(n, "homepage", func(p *Property) { p.Cardinality = CardinalityLow })
			editProp(n, "note", func(p *Property) { p.Cardinality = CardinalityHigh })
		}, []string{"homepage", "note"}},
		{"format changed", func(_, n *Blueprint) {
			editProp(n, "note", func(p *Property) { p.Format = "email" })
			editProp(n, "tags", func(p *Property) { p.Items.Format = "url" })
		}, []string{"note", "tags"}},
		{"high property removed, low one removed", func(_, n *Blueprint) {
			delete(n.Schema.Properties, "homepage")
			delete(n.Schema.Properties, "note")
		}, []string{"homepage"}},
		{"high property added, low one added", func(_, n *Blueprint) {
			n.Schema.Properties["contact"] = Property{Type: "string", Format: "email"}
			n.Schema.Properties["region"] = Property{Type: "string"}
		}, []string{"contact"}},
		{"high property on the old side only", func(o, _ *Blueprint) {
			o.Schema.Properties["contact"] = Property{Type: "string", Format: "user"}
		}, []string{"contact"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, next := changeTestBlueprint(t), changeTestBlueprint(t)
			tc.edit(old, next)
			if got := layoutChanges(old, next); !slices.Equal(got, tc.want) {
				t.Fatalf("layoutChanges = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckScope(t *testing.T) {
	cases := []struct {
		reasons []string
		want    *Projection // nil: whole entities
	}{
		{nil, nil},
		{[]string{"/schema/properties/tier/maximum lowered"}, &Projection{Properties: []string{"tier"}, Relations: []string{}}},
		{[]string{"/schema/required/owner added", "/schema/properties/a~1b removed", "/relations/dep/many changed"},
			&Projection{Properties: []string{"a/b", "owner"}, Relations: []string{"dep"}}},
		{[]string{"/relations/dep changed"}, &Projection{Properties: []string{}, Relations: []string{"dep"}}},
		{[]string{"/schema/properties/tier/maximum lowered", "/identifier changed"}, nil},
		{[]string{"/schema/newField changed"}, nil},
		{[]string{"/schema/properties changed"}, nil},
	}
	for _, tc := range cases {
		got := checkScope(tc.reasons)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("checkScope(%q) = %+v, want %+v", tc.reasons, got, tc.want)
		}
	}
}

// TestProjectedCheckAgrees proves the shortcut a validation's scan takes:
// for every change of the table that needs a check and every test entity
// valid under old, the entity projected to checkScope's parts and
// validated against next restricted to them (scanScope) gets the same
// verdict as the whole entity against next.
func TestProjectedCheckAgrees(t *testing.T) {
	checked, refused := 0, 0
	for _, tc := range entityCheckCases {
		old, next := changeTestPair(t, tc)
		needed, reasons := entityCheck(old, next)
		if !needed {
			continue
		}
		only, probe := scanScope(&BlueprintChange{Next: next, Checks: reasons})
		if only == nil {
			continue
		}
		oc, _ := CompileBlueprint(old)
		nc, _ := CompileBlueprint(next)
		for _, text := range changeTestEntities {
			var whole Entity
			if err := json.Unmarshal([]byte(text), &whole); err != nil {
				t.Fatal(err)
			}
			if oc.ValidateEntity(&whole) != nil {
				continue
			}
			part := &Entity{Identifier: whole.Identifier, Properties: map[string]any{}, Relations: map[string]any{}}
			for _, p := range only.Properties {
				if v, ok := whole.Properties[p]; ok {
					part.Properties[p] = v
				}
			}
			for _, r := range only.Relations {
				if v, ok := whole.Relations[r]; ok {
					part.Relations[r] = v
				}
			}
			wholeOK := len(changeProblems(old, nc, whole.copy())) == 0
			partOK := len(changeProblems(old, probe, part)) == 0
			if wholeOK != partOK {
				t.Errorf("%s, entity %s: whole valid %v, projected to %+v valid %v", tc.name, whole.Identifier, wholeOK, only, partOK)
			}
			checked++
			if !wholeOK {
				refused++
			}
		}
	}
	if checked < 50 || refused < 10 {
		t.Fatalf("only %d comparisons, %d of them refusals: the test hardly tests", checked, refused)
	}
	t.Logf("%d (change, entity) verdicts compared, %d refusals", checked, refused)
}
