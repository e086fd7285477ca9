package backstage

import (
	"github.com/portico-dev/portico/core/catalog"
)

// field is a spec field holding entity references, and the Portico
// relation each kind of target becomes.
type field struct {
	name        string
	defaultKind string            // as Backstage's BuiltinKindsEntityProcessor
	relations   map[string]string // lower-case target kind → relation
	many        bool
}

var (
	owner       = field{"owner", "Group", map[string]string{"group": "owner", "user": "ownerUser"}, false}
	system      = field{"system", "System", map[string]string{"system": "system"}, false}
	dependsOn   = field{"dependsOn", "", map[string]string{"component": "dependsOn", "resource": "dependsOnResource"}, true}
	dependency  = field{"dependencyOf", "", map[string]string{"component": "dependencyOf", "resource": "dependencyOfResource"}, true}
	description = catalog.Property{Type: "string", Title: "Description"}
)

// kind is how one Backstage kind maps onto a blueprint.
type kind struct {
	blueprint string
	title     string
	props     map[string]catalog.Property // beyond the common ones
	fields    []field
}

// kinds maps the lower-case Backstage kinds Portico imports.
var kinds = map[string]kind{
	"component": {"component", "Component", map[string]catalog.Property{
		"type": {Type: "string", Title: "Type"}, "lifecycle": {Type: "string", Title: "Lifecycle"}},
		[]field{owner, system,
			{"subcomponentOf", "Component", map[string]string{"component": "subcomponentOf"}, false},
			{"providesApis", "API", map[string]string{"api": "providesApis"}, true},
			{"consumesApis", "API", map[string]string{"api": "consumesApis"}, true},
			dependsOn, dependency}},
	"api": {"api", "API", map[string]catalog.Property{
		"type": {Type: "string", Title: "Type"}, "lifecycle": {Type: "string", Title: "Lifecycle"},
		"definition":    {Type: "string", Title: "Definition"},
		"definitionRef": {Type: "string", Title: "Definition location"}},
		[]field{owner, system}},
	"resource": {"resource", "Resource", map[string]catalog.Property{"type": {Type: "string", Title: "Type"}},
		[]field{owner, system, dependsOn, dependency}},
	"system": {"system", "System", map[string]catalog.Property{"type": {Type: "string", Title: "Type"}},
		[]field{owner, {"domain", "Domain", map[string]string{"domain": "domain"}, false}}},
	"domain": {"domain", "Domain", map[string]catalog.Property{"type": {Type: "string", Title: "Type"}},
		[]field{owner, {"subdomainOf", "Domain", map[string]string{"domain": "subdomainOf"}, false}}},
	"group": {"group", "Group", map[string]catalog.Property{
		"type": {Type: "string", Title: "Type"}, "email": {Type: "string", Title: "Email"},
		"picture": {Type: "string", Title: "Picture"}},
		[]field{{"parent", "Group", map[string]string{"group": "parent"}, false},
			{"children", "Group", map[string]string{"group": "children"}, true},
			{"members", "User", map[string]string{"user": "members"}, true}}},
	"user": {"user", "User", map[string]catalog.Property{
		"email": {Type: "string", Title: "Email"}, "picture": {Type: "string", Title: "Picture"}},
		[]field{{"memberOf", "Group", map[string]string{"group": "memberOf"}, true}}},
}

// common are the properties every imported blueprint has.
var common = map[string]catalog.Property{
	"entityRef":   {Type: "string", Title: "Backstage entity reference", Cardinality: catalog.CardinalityHigh},
	"description": description,
	"tags":        {Type: "array", Title: "Tags", Items: &catalog.Property{Type: "string"}},
	"labels":      {Type: "object", Title: "Labels"},
	"annotations": {Type: "object", Title: "Annotations"},
	"links":       {Type: "array", Title: "Links", Items: &catalog.Property{Type: "object"}},
}

// Blueprints returns the blueprints an import writes into, named
// prefix + kind (component, api, resource, system, domain, group, user).
func Blueprints(prefix string) []*catalog.Blueprint {
	var out []*catalog.Blueprint
	for _, k := range []string{"group", "user", "domain", "system", "component", "api", "resource"} {
		out = append(out, blueprint(kinds[k], prefix))
	}
	return out
}

func blueprint(k kind, prefix string) *catalog.Blueprint {
	bp := &catalog.Blueprint{
		Identifier:  prefix + k.blueprint,
		Title:       k.title,
		Description: "Backstage " + k.title + " entities (portico import backstage)",
		Schema:      catalog.Schema{Properties: map[string]catalog.Property{}},
		Relations:   map[string]catalog.Relation{},
	}
	for n, p := range common {
		bp.Schema.Properties[n] = p
	}
	for n, p := range k.props {
		bp.Schema.Properties[n] = p
	}
	for _, f := range k.fields {
		for target, rel := range f.relations {
			bp.Relations[rel] = catalog.Relation{Title: rel, Target: prefix + kinds[target].blueprint, Many: f.many}
		}
	}
	return bp
}

// Incompatible lists what an existing blueprint lacks for an import
// into it: a property of another type, a relation to another target or
// of another cardinality.
func Incompatible(have, want *catalog.Blueprint) []string {
	var out []string
	for n, p := range want.Schema.Properties {
		hp, ok := have.Schema.Properties[n]
		switch {
		case !ok:
			out = append(out, "no property "+n)
		case hp.Type != p.Type:
			out = append(out, "property "+n+" is a "+hp.Type+", not a "+p.Type)
		}
	}
	for n, r := range want.Relations {
		hr, ok := have.Relations[n]
		switch {
		case !ok:
			out = append(out, "no relation "+n+" (to "+r.Target+")")
		case hr.Target != r.Target:
			out = append(out, "relation "+n+" points at "+hr.Target+", not "+r.Target)
		case hr.Many != r.Many:
			out = append(out, "relation "+n+" has another cardinality (many: "+boolWord(hr.Many)+")")
		}
	}
	for _, n := range have.Schema.Required {
		if _, ok := want.Schema.Properties[n]; !ok {
			out = append(out, "requires property "+n+", which imports do not set")
		}
	}
	return sortStrings(out)
}

func boolWord(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
