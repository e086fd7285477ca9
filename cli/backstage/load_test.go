package backstage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

func memFetch(files map[string]string) Fetch {
	return func(_ context.Context, loc string) ([]byte, error) {
		s, ok := files[loc]
		if !ok {
			return nil, errors.New("not found")
		}
		return []byte(s), nil
	}
}

// TestLoadFollowsLocations: target and targets, relative to the file or
// URL holding the Location, absolute URLs as they are, and a cycle of
// Locations read once.
func TestLoadFollowsLocations(t *testing.T) {
	files := map[string]string{
		"http://h/cat/root.yaml": "kind: Location\napiVersion: backstage.io/v1alpha1\nmetadata: {name: root}\n" +
			"spec: {target: ./a.yaml, targets: [sub/b.yaml, 'http://other/c.yaml']}\n",
		"http://h/cat/a.yaml":     "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec: {type: team}\n---\n",
		"http://h/cat/sub/b.yaml": "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: back}\nspec: {targets: [../root.yaml, ../a.yaml]}\n",
		"http://other/c.yaml":     "---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: u, namespace: ops}\nspec: {memberOf: [g]}\n",
	}
	set, err := Load(context.Background(), []string{"http://h/cat/root.yaml"}, memFetch(files))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range set.Entities {
		got = append(got, e.Source+" "+e.Ref().String())
	}
	want := "http://h/cat/a.yaml#1 group:default/g,http://other/c.yaml#1 user:ops/u"
	if strings.Join(got, ",") != want || len(set.Warnings) != 0 {
		t.Fatalf("got %v (warnings %v), want %s", got, set.Warnings, want)
	}
	// memberOf: [g] in namespace ops is group:ops/g, not the imported group:default/g.
	imp := Map(set, "")
	if len(imp.Pending) != 1 || imp.Pending[0].Target != (catalog.Ref{Blueprint: "group", Identifier: "ops/g"}) {
		t.Fatalf("pending %+v", imp.Pending)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"not YAML", "kind: [", "f.yaml: document 1: yaml:"},
		{"no name", "apiVersion: v1\nkind: Component\nmetadata: {}\n", "f.yaml: document 1 (line 1): metadata.name required"},
		{"second document", "apiVersion: v1\nkind: Group\nmetadata: {name: a}\n---\nkind: Group\n", "f.yaml: document 2 (line 5): apiVersion, metadata.name required"},
		{"twice", "apiVersion: v1\nkind: Group\nmetadata: {name: a}\n---\napiVersion: v1\nkind: group\nmetadata: {name: A}\n", "f.yaml#2: group:default/a is already defined in f.yaml#1"},
		{"not a mapping", "- a\n- b\n", "f.yaml: document 1 (line 1): not a Backstage descriptor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), []string{"f.yaml"}, memFetch(map[string]string{"f.yaml": tt.file}))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Load(context.Background(), []string{"missing.yaml"}, memFetch(nil)); err == nil {
		t.Fatal("a missing root: no error")
	}
}

func TestMapWarnings(t *testing.T) {
	src := "apiVersion: v1\nkind: Component\nmetadata: {name: c}\nspec: {owner: 'system:s', dependsOn: [cart, 'resource:db', 'component:c'], system: 'a:'}\n" +
		"---\napiVersion: v1\nkind: Template\nmetadata: {name: t}\n"
	set, err := Load(context.Background(), []string{"f.yaml"}, memFetch(map[string]string{"f.yaml": src}))
	if err != nil {
		t.Fatal(err)
	}
	imp := Map(set, "")
	want := []string{
		`f.yaml#1: component:default/c spec.owner: "system:s" is a system; this field takes Group or User (not imported)`,
		`f.yaml#1: component:default/c spec.dependsOn: entity reference "cart" names no kind (e.g. component:cart) (not imported)`,
		`f.yaml#1: component:default/c spec.system: entity reference "a:" is not of the form [<kind>:][<namespace>/]<name> (not imported)`,
		`f.yaml#2: kind Template is not imported (skipped template:default/t)`,
	}
	got := imp.Warnings
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing warning %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	c := imp.Entities[0]
	if ids := catalog.RelationIDs(c.Relations["dependsOn"]); len(ids) != 1 || ids[0] != "c" {
		t.Errorf("dependsOn %v, want [c]", c.Relations["dependsOn"])
	}
	if len(imp.Pending) != 1 || imp.Pending[0].Relation != "dependsOnResource" {
		t.Errorf("pending %+v, want resource db", imp.Pending)
	}
	imp.Keep(map[string]map[string]bool{"resource": {"db": true}})
	if ids := catalog.RelationIDs(c.Relations["dependsOnResource"]); len(ids) != 1 || ids[0] != "db" {
		t.Errorf("dependsOnResource %v after Keep, want [db]", c.Relations["dependsOnResource"])
	}
}

func TestIncompatible(t *testing.T) {
	want := Blueprints("")[0] // group
	have := Blueprints("")[0]
	if got := Incompatible(have, want); len(got) != 0 {
		t.Fatalf("a blueprint is compatible with itself: %v", got)
	}
	delete(have.Relations, "members")
	have.Relations["parent"] = catalog.Relation{Target: "team"}
	have.Schema.Properties["email"] = catalog.Property{Type: "integer"}
	have.Schema.Required = []string{"slack"}
	got := strings.Join(Incompatible(have, want), "; ")
	if got != "no relation members (to user); property email is a integer, not a string; relation parent points at team, not group; requires property slack, which imports do not set" {
		t.Fatalf("got %s", got)
	}
}
