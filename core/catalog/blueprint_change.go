package catalog

import (
	"cmp"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// entityCheck tells whether every entity valid under old is certainly
// valid under next (both must compile); when not, reasons names why
// (e.g. "/schema/properties/tier/maximum lowered", "/schema/required/owner
// added"), sorted. "Valid under old" means as stored: normalised by old's
// ValidateEntity, so holding no calculation or mirror property.
//
// It is sound but conservative: any difference it does not know to be
// harmless (including fields added to the types later) counts as needing
// a check. Harmless are changes of titles, descriptions, icons,
// permissions, ownership, calculation and mirror properties, defaults,
// expiry actions and cardinality hints; new optional properties and
// relations; properties and relations becoming optional; and widened
// constraints (enum superset or removed, lower minimum, higher maximum,
// pattern or format removed, integer to number, array items widened).
func entityCheck(old, next *Blueprint) (needed bool, reasons []string) {
	var c changeList
	c.others("", blueprintRest(old), blueprintRest(next))
	c.others("/schema", schemaRest(old.Schema), schemaRest(next.Schema))

	for _, name := range sortedKeys(old.Schema.Properties) {
		path := pointer("schema", "properties", name)
		np, ok := next.Schema.Properties[name]
		if !ok {
			c.add(path, "removed")
			continue
		}
		op := old.Schema.Properties[name]
		c.property(path, &op, &np)
	}
	for _, name := range sortedKeys(next.Schema.Properties) {
		if _, ok := old.Schema.Properties[name]; ok {
			continue
		}
		// Entities stored before the name became computed may still
		// hold a value of some other type under it.
		_, calc := old.CalculationProperties[name]
		_, mirror := old.MirrorProperties[name]
		if calc || mirror {
			c.add(pointer("schema", "properties", name), "added over a computed property")
		}
	}
	for _, name := range next.Schema.Required {
		if !slices.Contains(old.Schema.Required, name) {
			c.add(pointer("schema", "required", name), "added")
		}
	}

	for _, name := range sortedKeys(old.Relations) {
		path := pointer("relations", name)
		nr, ok := next.Relations[name]
		if !ok {
			c.add(path, "removed")
			continue
		}
		or := old.Relations[name]
		if nr.Required && !or.Required {
			c.add(path+"/required", "set")
		}
		or.Title, nr.Title = "", ""
		or.Required, nr.Required = false, false
		c.others(path, or, nr) // target, many
	}
	for _, name := range sortedKeys(next.Relations) {
		if _, ok := old.Relations[name]; !ok && next.Relations[name].Required {
			c.add(pointer("relations", name), "added as required")
		}
	}

	slices.Sort(c.reasons)
	c.reasons = slices.Compact(c.reasons)
	return len(c.reasons) > 0, c.reasons
}

// layoutChanges lists (sorted) the properties whose secondary-index
// layout differs between old and next: Property.HighCardinality()
// differs, a property missing on one side counting as low cardinality.
func layoutChanges(old, next *Blueprint) []string {
	high := func(bp *Blueprint, name string) bool {
		p, ok := bp.Schema.Properties[name]
		return ok && p.HighCardinality()
	}
	var out []string
	for name := range old.Schema.Properties {
		if high(old, name) != high(next, name) {
			out = append(out, name)
		}
	}
	for name := range next.Schema.Properties {
		if _, ok := old.Schema.Properties[name]; !ok && high(next, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// changeList collects the reasons entityCheck gives.
type changeList struct{ reasons []string }

func (c *changeList) add(path, what string) { c.reasons = append(c.reasons, path+" "+what) }

// property compares two definitions of one stored property (or of array
// items) at path.
func (c *changeList) property(path string, o, n *Property) {
	if o.Type != n.Type && (o.Type != "integer" || n.Type != "number") {
		c.add(path+"/type", "changed")
		return
	}
	if n.Format != "" && n.Format != o.Format {
		c.add(path+"/format", addedOr(o.Format == "", "changed"))
	}
	if len(n.Enum) > 0 {
		switch {
		case len(o.Enum) == 0:
			c.add(path+"/enum", "added")
		case !enumSubset(o.Enum, n.Enum):
			c.add(path+"/enum", "narrowed")
		}
	}
	c.floor(path+"/minimum", floorChange(o.Minimum, n.Minimum))
	c.floor(path+"/maximum", ceilingChange(o.Maximum, n.Maximum))
	c.floor(path+"/minLength", floorChange(o.MinLength, n.MinLength))
	c.floor(path+"/maxLength", ceilingChange(o.MaxLength, n.MaxLength))
	if n.Pattern != "" && n.Pattern != o.Pattern {
		c.add(path+"/pattern", addedOr(o.Pattern == "", "changed"))
	}
	if n.Items != nil {
		if o.Items == nil {
			c.add(path+"/items", "added")
		} else {
			c.property(path+"/items", o.Items, n.Items)
		}
	}
	c.others(path, propertyRest(*o), propertyRest(*n))
}

func (c *changeList) floor(path, what string) {
	if what != "" {
		c.add(path, what)
	}
}

// others reports, as "<prefix>/<json name> changed", each field that
// differs between two values of one struct type.
func (c *changeList) others(prefix string, a, b any) {
	if reflect.DeepEqual(a, b) {
		return
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	found := false
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		c.add(prefix+"/"+name, "changed")
		found = true
	}
	if !found {
		c.add(prefix, "changed")
	}
}

// blueprintRest is bp without what entityCheck compares itself or knows
// to be harmless.
func blueprintRest(bp *Blueprint) Blueprint {
	r := *bp
	r.Title, r.Description, r.Icon = "", "", ""
	r.Permissions, r.Ownership = nil, nil
	r.CalculationProperties, r.MirrorProperties = nil, nil
	// Derived values are recomputed (RunDerive), never checked.
	r.AggregationProperties, r.Scorecards, r.Dependents = nil, nil, nil
	r.CreatedAt, r.UpdatedAt = time.Time{}, time.Time{}
	r.Schema, r.Relations = Schema{}, nil
	return r
}

func schemaRest(s Schema) Schema {
	s.Properties, s.Required = nil, nil
	return s
}

// propertyRest is p without what property compares itself or knows to be
// harmless (Type included: property has vetted it already).
func propertyRest(p Property) Property {
	p.Type, p.Format, p.Enum, p.Pattern, p.Items = "", "", nil, "", nil
	p.Minimum, p.Maximum, p.MinLength, p.MaxLength = nil, nil, nil, nil
	p.Title, p.Description, p.Icon = "", "", ""
	p.Default, p.ExpiryAction, p.Cardinality = nil, "", ""
	return p
}

func addedOr(added bool, otherwise string) string {
	if added {
		return "added"
	}
	return otherwise
}

// floorChange says how a lower bound tightened: "added", "raised" or "".
func floorChange[T cmp.Ordered](o, n *T) string {
	switch {
	case n == nil:
		return ""
	case o == nil:
		return "added"
	case *n > *o:
		return "raised"
	}
	return ""
}

// ceilingChange says how an upper bound tightened: "added", "lowered" or "".
func ceilingChange[T cmp.Ordered](o, n *T) string {
	switch {
	case n == nil:
		return ""
	case o == nil:
		return "added"
	case *n < *o:
		return "lowered"
	}
	return ""
}

// enumSubset reports whether every value of o is in n, comparing them as
// JSON values (1 and 1.0 are equal; "1" and 1 are not); a value of any
// other kind is never found.
func enumSubset(o, n []any) bool {
	keys := make(map[string]bool, len(n))
	for _, v := range n {
		if k, ok := enumKey(v); ok {
			keys[k] = true
		}
	}
	for _, v := range o {
		if k, ok := enumKey(v); !ok || !keys[k] {
			return false
		}
	}
	return true
}

func enumKey(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return "s" + t, true
	case bool:
		return "b" + strconv.FormatBool(t), true
	}
	f, ok := schemaNumberValue(v)
	if !ok {
		return "", false
	}
	if f == 0 {
		f = 0 // -0 validates like 0
	}
	return "n" + strconv.FormatFloat(f, 'g', -1, 64), true
}

// Projection names the parts of entities a scan reads: the identifier and
// these properties and relations. A nil *Projection means whole entities.
type Projection struct {
	Properties, Relations []string
}

// checkScope returns the parts of entities that entityCheck's reasons are
// about, nil when some reason is about more than one property or
// relation (the whole entity must be checked).
func checkScope(reasons []string) *Projection {
	if len(reasons) == 0 {
		return nil // nothing says where to look: everywhere
	}
	props, rels := map[string]bool{}, map[string]bool{}
	for _, r := range reasons {
		path, _, _ := strings.Cut(r, " ")
		section, rest := schemaNextToken(path)
		if section == "schema" {
			section, rest = schemaNextToken(rest)
		}
		name, _ := schemaNextToken(rest)
		name = strings.NewReplacer("~1", "/", "~0", "~").Replace(name)
		switch {
		case name == "":
			return nil
		case section == "properties" || section == "required":
			props[name] = true
		case section == "relations":
			rels[name] = true
		default:
			return nil
		}
	}
	return &Projection{Properties: sortedKeys(props), Relations: sortedKeys(rels)}
}

// only returns bp restricted to the properties and relations of p (and
// nothing else that validation reads): entities projected to p are valid
// under it exactly when their parts p names are valid under bp.
func (p *Projection) only(bp *Blueprint) *Blueprint {
	out := &Blueprint{Identifier: bp.Identifier, Schema: Schema{Properties: map[string]Property{}}, Relations: map[string]Relation{}}
	for _, name := range p.Properties {
		if def, ok := bp.Schema.Properties[name]; ok {
			out.Schema.Properties[name] = def
		}
		if slices.Contains(bp.Schema.Required, name) {
			out.Schema.Required = append(out.Schema.Required, name)
		}
	}
	for _, name := range p.Relations {
		if rel, ok := bp.Relations[name]; ok {
			out.Relations[name] = rel
		}
	}
	return out
}
