package backstage

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// Import is a descriptor set mapped onto Portico: the entities to write,
// with their relations to each other, and the references that point
// outside the set (Pending) or could not be mapped (Warnings).
type Import struct {
	Entities []*catalog.Entity
	Sources  []string // where each entity was read
	// Pending are references to entities that are not in the set: they
	// become relations only if the portal has the entity (Keep).
	Pending  []Pending
	Warnings []string
}

// Pending is a reference from an imported entity to an entity outside
// the set.
type Pending struct {
	Entity   int    // index in Import.Entities
	Field    string // the descriptor's field (spec.owner)
	Ref      string // as written
	Target   catalog.Ref
	Relation string
	many     bool
}

// Map maps the entities of set onto blueprints named prefix + kind.
// Kinds Portico does not import are warnings, as are references that
// cannot be parsed or point at a kind the field cannot hold.
func Map(set *Set, prefix string) *Import {
	imp := &Import{Warnings: slices.Clone(set.Warnings)}
	index := map[string]string{} // canonical ref → identifier
	var mapped []*Entity
	for _, e := range set.Entities {
		if _, ok := kinds[strings.ToLower(e.Kind)]; !ok {
			imp.Warnings = append(imp.Warnings, fmt.Sprintf("%s: kind %s is not imported (skipped %s)", e.Source, e.Kind, e.Ref()))
			continue
		}
		index[e.Ref().String()] = e.Ref().Identifier()
		mapped = append(mapped, e)
	}
	for _, e := range mapped {
		k := kinds[strings.ToLower(e.Kind)]
		self := e.Ref()
		ent := &catalog.Entity{
			Blueprint:  prefix + k.blueprint,
			Identifier: self.Identifier(),
			Title:      title(e),
			Properties: properties(e, k),
			Relations:  map[string]any{},
		}
		i := len(imp.Entities)
		imp.Entities = append(imp.Entities, ent)
		imp.Sources = append(imp.Sources, e.Source)
		for _, f := range k.fields {
			for _, raw := range refs(e.Spec[f.name]) {
				where := fmt.Sprintf("%s: %s spec.%s", e.Source, self, f.name)
				r, err := ParseRef(raw, f.defaultKind, self.Namespace)
				if err != nil {
					imp.Warnings = append(imp.Warnings, fmt.Sprintf("%s: %v (not imported)", where, err))
					continue
				}
				rel, ok := f.relations[strings.ToLower(r.Kind)]
				if !ok {
					imp.Warnings = append(imp.Warnings, fmt.Sprintf("%s: %q is a %s; this field takes %s (not imported)", where, raw, r.Kind, kindList(f)))
					continue
				}
				target := catalog.Ref{Blueprint: prefix + kinds[strings.ToLower(r.Kind)].blueprint, Identifier: r.Identifier()}
				if id, ok := index[r.String()]; ok {
					addRelation(ent, rel, id, f.many)
					continue
				}
				imp.Pending = append(imp.Pending, Pending{Entity: i, Field: where, Ref: raw, Target: target, Relation: rel, many: f.many})
			}
		}
	}
	return imp
}

// Keep adds the pending references whose target exists (blueprint →
// identifier → true) as relations and returns a warning for each of the
// others, which are not imported.
func (imp *Import) Keep(existing map[string]map[string]bool) []string {
	var warnings []string
	for _, p := range imp.Pending {
		if existing[p.Target.Blueprint][p.Target.Identifier] {
			addRelation(imp.Entities[p.Entity], p.Relation, p.Target.Identifier, p.many)
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s: %q: no such entity (%s %s) in the files or the portal (relation %s not imported)",
			p.Field, p.Ref, p.Target.Blueprint, p.Target.Identifier, p.Relation))
	}
	imp.Pending = nil
	return warnings
}

// Targets lists the identifiers the pending references point at, per
// blueprint.
func (imp *Import) Targets() map[string][]string {
	out := map[string][]string{}
	for _, p := range imp.Pending {
		if !slices.Contains(out[p.Target.Blueprint], p.Target.Identifier) {
			out[p.Target.Blueprint] = append(out[p.Target.Blueprint], p.Target.Identifier)
		}
	}
	return out
}

func addRelation(e *catalog.Entity, rel, id string, many bool) {
	if !many {
		e.Relations[rel] = id
		return
	}
	ids, _ := e.Relations[rel].([]string)
	if !slices.Contains(ids, id) {
		e.Relations[rel] = append(ids, id)
	}
}

// refs reads a reference field: one string or a list of them.
func refs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func kindList(f field) string {
	var ks []string
	for k := range f.relations {
		ks = append(ks, kinds[k].title)
	}
	sort.Strings(ks)
	return strings.Join(ks, " or ")
}

// title is metadata.title, else a Group's or User's profile.displayName.
func title(e *Entity) string {
	if e.Metadata.Title != "" {
		return e.Metadata.Title
	}
	if p, ok := e.Spec["profile"].(map[string]any); ok {
		if s, ok := p["displayName"].(string); ok {
			return s
		}
	}
	return ""
}

// properties maps the metadata every kind has and the kind's own spec
// fields; empty ones are left out.
func properties(e *Entity, k kind) map[string]any {
	props := map[string]any{"entityRef": e.Ref().String()}
	set := func(name string, v any) {
		switch t := v.(type) {
		case nil:
		case string:
			if t != "" {
				props[name] = t
			}
		default:
			props[name] = v
		}
	}
	set("description", e.Metadata.Description)
	if len(e.Metadata.Tags) > 0 {
		tags := make([]any, len(e.Metadata.Tags))
		for i, t := range e.Metadata.Tags {
			tags[i] = t
		}
		props["tags"] = tags
	}
	if len(e.Metadata.Labels) > 0 {
		props["labels"] = stringMap(e.Metadata.Labels)
	}
	if len(e.Metadata.Annotations) > 0 {
		props["annotations"] = stringMap(e.Metadata.Annotations)
	}
	if len(e.Metadata.Links) > 0 {
		links := make([]any, len(e.Metadata.Links))
		for i, l := range e.Metadata.Links {
			links[i] = l
		}
		props["links"] = links
	}
	for name := range k.props {
		switch name {
		case "email", "picture":
			if p, ok := e.Spec["profile"].(map[string]any); ok {
				set(name, str(p[name]))
			}
		case "definition":
			set(name, str(e.Spec["definition"]))
		case "definitionRef":
			// A placeholder ({$text: …}) is kept as where the definition
			// lives, not fetched.
			if p, ok := e.Spec["definition"].(map[string]any); ok {
				for key, v := range p {
					set(name, key+" "+str(v))
				}
			}
		default:
			set(name, str(e.Spec[name]))
		}
	}
	return props
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
