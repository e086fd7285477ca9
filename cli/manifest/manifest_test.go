package manifest

import (
	"context"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
)

// TestParse: documents are found in YAML streams and JSON files (one or
// an array), located by index and line; shape errors name the path.
func TestParse(t *testing.T) {
	cases := []struct {
		name, file, content string
		ids                 []string // "<Kind> <id>@<index>:<line>"
		errs                []string
	}{
		{"yaml stream", "a.yaml", "kind: Blueprint\nspec: {identifier: a}\n---\n# c\nkind: Blueprint\nspec:\n  identifier: b\n---\n",
			[]string{"Blueprint a@1:1", "Blueprint b@2:5"}, nil},
		{"json array", "a.json", `[{"kind": "Blueprint", "spec": {"identifier": "a"}},
 {"kind": "Entity", "spec": {"blueprint": "a", "identifier": "x"}}]`,
			[]string{"Blueprint a@1:1", "Entity a/x@2:2"}, nil},
		{"bad yaml", "b.yaml", "kind: Blueprint\nspec: {identifier: [\n", nil, []string{"b.yaml#1:2: invalid YAML"}},
		{"shape", "c.yaml", "kind: Nope\nspec: {}\n---\nspec: {}\nextra: 1\n---\nkind: Blueprint\nspec: 3\n---\nkind: Dashboard\nspec: {}\n", nil, []string{
			`c.yaml#1:1 /kind: unknown kind "Nope"`,
			"c.yaml#2:5 /extra: unknown field", "c.yaml#2:4 /kind: required",
			"c.yaml#3:8 /spec: required: an object",
			"c.yaml#4:10 /kind: kind Dashboard is not supported by this portal",
		}},
		{"dates stay strings", "d.yaml", "kind: Initiative\nspec: {identifier: q, dueDate: 2030-01-01}\n", []string{"Initiative q@1:1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			docs, errs := Parse(c.file, []byte(c.content))
			var got []string
			for _, d := range docs {
				got = append(got, d.Name()+"@"+itoa(d.Index)+":"+itoa(d.Line))
			}
			if strings.Join(got, ",") != strings.Join(c.ids, ",") {
				t.Errorf("documents %v, want %v", got, c.ids)
			}
			msg := errs.Error()
			for _, w := range c.errs {
				if !strings.Contains(msg, w) {
					t.Errorf("errors do not say %q:\n%s", w, msg)
				}
			}
			if len(c.errs) == 0 && len(errs) > 0 {
				t.Errorf("unexpected errors:\n%s", msg)
			}
			if c.name == "dates stay strings" && docs[0].Spec["dueDate"] != "2030-01-01" {
				t.Errorf("dueDate = %#v", docs[0].Spec["dueDate"])
			}
		})
	}
}

type fakeLookup map[string]*catalog.Blueprint

func (f fakeLookup) Blueprint(_ context.Context, id string) (*catalog.Blueprint, error) {
	return f[id], nil
}
func (f fakeLookup) Exists(_ context.Context, kind definitions.Kind, id string) (bool, error) {
	return kind == definitions.Workflow && id == "onportal", nil
}

// TestValidate: each problem comes with its file, document, line and
// JSON path; references resolve to the files or the portal.
func TestValidate(t *testing.T) {
	portal := fakeLookup{"team": {Identifier: "team", Schema: catalog.Schema{Properties: map[string]catalog.Property{"slack": {Type: "string"}}}}}
	cases := []struct {
		name, content string
		errs          []string
	}{
		{"valid, references to files and portal", `kind: Blueprint
spec: {identifier: svc, schema: {properties: {tier: {type: integer}}}, relations: {owner: {target: team}}}
---
kind: Action
spec: {identifier: go, blueprint: svc, operation: DAY-2, invocation: {type: workflow, workflow: onportal}}
---
kind: Entity
spec: {blueprint: team, identifier: t, properties: {slack: "#t"}}
---
kind: Scorecard
spec: {blueprint: svc, identifier: r, rules: [{identifier: x, level: Bronze, query: {combinator: and, rules: [{property: tier, operator: "=", value: 1}]}}]}
`, nil},
		{"portal validators", `kind: Blueprint
spec: {identifier: svc, schema: {properties: {tier: {type: integr}}}}
---
kind: Action
spec: {identifier: go, blueprint: svc, operation: SOMETIMES, invocation: {type: webhook, url: "https://x"}}
`, []string{"f.yaml#1:2 /spec/schema/properties/tier/type:", "f.yaml#2:5 /spec/operation:"}},
		{"unknown fields at depth, wrong types", `kind: Blueprint
spec:
  identifier: svc
  schema:
    properties:
      tier: {type: integer, colour: red}
---
kind: Workflow
spec: {identifier: w, steps: 3}
`, []string{"f.yaml#1:6 /spec/schema/properties/tier/colour: unknown field", "f.yaml#2:9 /spec/steps: expected an array"}},
		{"duplicates and identity", `kind: Blueprint
spec: {identifier: a, schema: {}}
---
kind: Blueprint
spec: {identifier: a, schema: {}}
---
kind: Entity
spec: {identifier: x}
`, []string{"f.yaml#2:5 /spec: Blueprint a is defined twice (first in f.yaml#1)", "f.yaml#3:8 /spec/blueprint: required"}},
		{"references", `kind: Action
spec: {identifier: go, blueprint: nope, operation: DAY-2, invocation: {type: workflow, workflow: nowf}}
---
kind: Blueprint
spec: {identifier: b, schema: {}, relations: {r: {target: ghost}}}
`, []string{`/spec/blueprint: blueprint "nope" is neither`, `/spec/invocation/workflow: workflow "nowf" is neither`, `f.yaml#2:5 /spec/relations/r/target: blueprint "ghost"`}},
		{"secrets by reference only", `kind: Integration
spec: {id: pd, plugin: pagerduty, secrets: {a: inline, b: {fromEnv: X}, c: {fromEnv: X, fromFile: y}}}
`, []string{"/spec/secrets/a: secrets are never inline", "/spec/secrets/c: a secret reference is"}},
		{"entity against its blueprint", `kind: Entity
spec: {blueprint: team, identifier: t, properties: {slack: 3}}
`, []string{"f.yaml#1:2 /spec/properties/slack:"}},
		{"scorecard against its blueprint", `kind: Scorecard
spec: {blueprint: team, identifier: r, rules: [{identifier: x, level: Platinum, query: {combinator: and, rules: []}}]}
`, []string{"/spec/rules/0/level:"}},
		{"token", `kind: Token
spec: {name: ci, user: ci@x}
`, []string{"/spec/scopes: required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			docs, perrs := Parse("f.yaml", []byte(c.content))
			if len(perrs) > 0 {
				t.Fatal(perrs)
			}
			err := Validate(context.Background(), docs, portal)
			if len(c.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				for _, d := range docs {
					if d.Normalised == nil {
						t.Errorf("%s not normalised", d.Name())
					}
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted invalid documents")
			}
			for _, w := range c.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors do not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestOrder: kinds in dependency order, blueprints after the new
// blueprints they relate to, deletions last in reverse order; a cycle among new
// blueprints is found.
func TestOrder(t *testing.T) {
	bp := func(id string, op Op, targets ...string) *Step {
		rels := map[string]any{}
		for _, tg := range targets {
			rels["to"+tg] = map[string]any{"target": tg}
		}
		return &Step{Op: op, Kind: definitions.Blueprint, ID: id, Doc: &Document{Spec: map[string]any{"identifier": id, "relations": rels}}}
	}
	plan := &Plan{Steps: []*Step{
		{Op: Create, Kind: definitions.Entity, ID: "a/1"},
		{Op: Delete, Kind: definitions.Blueprint, ID: "old"},
		{Op: Delete, Kind: definitions.Entity, ID: "old/1"},
		{Op: Create, Kind: definitions.Action, ID: "deploy"},
		bp("a", Create, "b"),
		bp("b", Create, "c"),
		bp("c", Update),
		bp("x", Create, "y"),
		bp("y", Create, "x"),
		{Op: Create, Kind: definitions.Token, ID: "u/t"},
		{Op: Create, Kind: definitions.Workflow, ID: "w"},
	}}
	plan.order()
	var got []string
	for _, s := range plan.Steps {
		got = append(got, string(s.Op)+" "+s.Name())
	}
	want := []string{
		// c is on the portal already: b need not wait for it
		"create Blueprint b", "create Blueprint a", "update Blueprint c", "create Blueprint y", "create Blueprint x",
		"create Workflow w", "create Action deploy", "create Entity a/1", "create Token u/t",
		"delete Entity old/1", "delete Blueprint old",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := cyclic(plan.Steps); len(c) != 2 || !c["x"] || !c["y"] {
		t.Errorf("cyclic = %v, want x and y", c)
	}
}

// TestResolved: secret references are read from the environment or a
// file when a definition is sent; what the API does not take is dropped.
func TestResolved(t *testing.T) {
	t.Setenv("MANIFEST_TEST_SECRET", "s3cret")
	spec := map[string]any{"id": "pd", "plugin": "p", "secrets": map[string]any{"a": map[string]any{"fromEnv": "MANIFEST_TEST_SECRET"}}}
	body, err := resolved(definitions.Integration, spec)
	if err != nil {
		t.Fatal(err)
	}
	if body["id"] != nil || body["secrets"].(map[string]any)["a"] != "s3cret" {
		t.Errorf("body = %v", body)
	}
	if spec["secrets"].(map[string]any)["a"].(map[string]any)["fromEnv"] != "MANIFEST_TEST_SECRET" {
		t.Error("resolving changed the document")
	}
	spec["secrets"] = map[string]any{"a": map[string]any{"fromEnv": "MANIFEST_TEST_UNSET"}}
	if _, err := resolved(definitions.Integration, spec); err == nil || !strings.Contains(err.Error(), "/spec/secrets/a: environment variable MANIFEST_TEST_UNSET is not set") {
		t.Errorf("unset variable: %v", err)
	}
}
