package catalog

import (
	"sort"
	"strconv"
	"strings"
)

// Validate checks a query tree. It returns a *ValidationError listing every
// problem, with JSON-pointer paths under base (e.g. base "/query" gives
// "/query/rules/1/operator"), or nil.
func (r *Rule) Validate(base string) error {
	var v violations
	switch excess, over := r.excessRule(base); {
	case r == nil:
		v.add(base, "a query is required")
	case over:
		v.add(excess, "a query holds at most %d rules", MaxQueryRules)
	default:
		r.validate(&v, base, 1)
	}
	return v.err("invalid query")
}

// excessRule returns the path of the first rule beyond MaxQueryRules,
// counting parents before children as DecodeQuery does.
func (r *Rule) excessRule(base string) (string, bool) {
	n := 0
	var walk func(r *Rule, path string) (string, bool)
	walk = func(r *Rule, path string) (string, bool) {
		if n++; n > MaxQueryRules {
			return path, true
		}
		for i := range r.Rules {
			if p, over := walk(&r.Rules[i], path+pointer("rules", strconv.Itoa(i))); over {
				return p, true
			}
		}
		return "", false
	}
	if r == nil {
		return "", false
	}
	return walk(r, base)
}

func (r *Rule) validate(v *violations, path string, level int) {
	if r.IsCombinator() {
		r.validateCombinator(v, path, level)
		return
	}
	r.validateLeaf(v, path)
}

// leafFields lists the leaf fields that are set, in declaration order.
func (r *Rule) leafFields(relatedToOnly bool) []string {
	var set []string
	if !relatedToOnly {
		if r.Property != "" {
			set = append(set, "property")
		}
		if r.Operator != "" {
			set = append(set, "operator")
		}
		if r.Value != nil {
			set = append(set, "value")
		}
	}
	if r.Blueprint != "" {
		set = append(set, "blueprint")
	}
	if r.Identifier != "" {
		set = append(set, "identifier")
	}
	if r.Direction != "" {
		set = append(set, "direction")
	}
	if r.Relation != "" {
		set = append(set, "relation")
	}
	if r.Depth != 0 {
		set = append(set, "depth")
	}
	return set
}

func (r *Rule) validateCombinator(v *violations, path string, level int) {
	if level > MaxQueryNesting {
		v.add(path, "combinators nest deeper than %d levels", MaxQueryNesting)
		return
	}
	switch r.Combinator {
	case "and", "or":
	case "":
		v.add(path+"/combinator", "is required when rules are given")
	default:
		v.add(path+"/combinator", `must be "and" or "or", not %q`, r.Combinator)
	}
	for _, f := range r.leafFields(false) {
		v.add(path+"/"+f, "is not allowed on a combinator node")
	}
	for i := range r.Rules {
		r.Rules[i].validate(v, path+pointer("rules", strconv.Itoa(i)), level+1)
	}
}

func (r *Rule) validateLeaf(v *violations, path string) {
	kind, known := queryOperators[r.Operator]
	switch {
	case r.Operator == "":
		v.add(path+"/operator", "is required")
		return
	case !known:
		v.add(path+"/operator", "unknown operator %q", r.Operator)
		return
	case r.Operator == "relatedTo":
		r.validateRelatedTo(v, path)
		return
	}

	for _, f := range r.leafFields(true) {
		v.add(path+"/"+f, "is only allowed with operator relatedTo")
	}
	switch {
	case r.Property == "":
		v.add(path+"/property", "is required")
	case strings.HasPrefix(r.Property, "$"):
		if !isQueryableMeta(r.Property) {
			v.add(path+"/property", "unknown meta-property %q", r.Property)
		}
	case !IdentifierPattern.MatchString(r.Property):
		v.add(path+"/property", "is not a valid property name")
	}

	vp := path + "/value"
	if kind == queryNoValue {
		if r.Value != nil {
			v.add(vp, "is not allowed with operator %s", r.Operator)
		}
		return
	}
	if r.Value == nil {
		v.add(vp, "is required with operator %s", r.Operator)
		return
	}
	switch kind {
	case queryScalar:
		if !queryIsScalar(r.Value) {
			v.add(vp, "must be a string, number or boolean")
		}
	case queryList:
		list, ok := queryAsList(r.Value)
		if !ok {
			v.add(vp, "must be an array")
			return
		}
		if len(list) > MaxQueryListValues {
			v.add(vp, "lists at most %d values, not %d", MaxQueryListValues, len(list))
			return
		}
		for i, x := range list {
			if !queryIsScalar(x) {
				v.add(vp+pointer(strconv.Itoa(i)), "must be a string, number or boolean")
			}
		}
	case queryRange:
		validateQueryRange(v, vp, r.Value)
	}
}

func validateQueryRange(v *violations, vp string, value any) {
	if m, ok := value.(map[string]any); ok {
		for _, k := range []string{"from", "to"} {
			x, ok := m[k]
			switch {
			case !ok || x == nil:
				v.add(vp+"/"+k, "is required")
			case !queryIsScalar(x):
				v.add(vp+"/"+k, "must be a string, number or boolean")
			}
		}
		extra := make([]string, 0, len(m))
		for k := range m {
			if k != "from" && k != "to" {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			v.add(vp+pointer(k), "unknown field")
		}
		return
	}
	list, ok := queryAsList(value)
	if !ok {
		v.add(vp, `must be {"from": x, "to": y} or a 2-element array`)
		return
	}
	if len(list) != 2 {
		v.add(vp, "must have exactly 2 elements, not %d", len(list))
		return
	}
	for i, x := range list {
		if !queryIsScalar(x) {
			v.add(vp+pointer(strconv.Itoa(i)), "must be a string, number or boolean")
		}
	}
}

func (r *Rule) validateRelatedTo(v *violations, path string) {
	if r.Property != "" {
		v.add(path+"/property", "is not allowed with operator relatedTo")
	}
	if r.Value != nil {
		v.add(path+"/value", "is not allowed with operator relatedTo")
	}
	for _, f := range []struct{ name, value string }{{"blueprint", r.Blueprint}, {"identifier", r.Identifier}} {
		switch {
		case f.value == "":
			v.add(path+"/"+f.name, "is required with operator relatedTo")
		case !IdentifierPattern.MatchString(f.value) && (f.name != "blueprint" || blueprintIdentifierProblem(f.value) != ""):
			v.add(path+"/"+f.name, "is not a valid identifier")
		}
	}
	switch r.Direction {
	case "upstream", "downstream":
	case "":
		v.add(path+"/direction", `is required with operator relatedTo ("upstream" or "downstream")`)
	default:
		v.add(path+"/direction", `must be "upstream" or "downstream", not %q`, r.Direction)
	}
	if r.Relation != "" && !IdentifierPattern.MatchString(r.Relation) {
		v.add(path+"/relation", "is not a valid identifier")
	}
	if r.Depth < 0 || r.Depth > 3 {
		v.add(path+"/depth", "must be between 1 and 3")
	}
}
