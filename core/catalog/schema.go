package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/internal/jqeval"
)

// Mirror is one mirror property, split: the value of Property (a property
// name or a meta-property such as "$title") of the entity that Relation
// points at.
type Mirror struct {
	Name     string
	Relation string
	Property string
}

// CompiledBlueprint is a validated blueprint ready to validate entities
// fast. It is immutable and safe for concurrent use; Blueprint must not be
// modified after compilation.
type CompiledBlueprint struct {
	// Blueprint is the definition this was compiled from.
	Blueprint *Blueprint

	props        map[string]*schemaPropRule
	required     []*schemaPropRule
	relations    map[string]*schemaRelRule
	requiredRels []*schemaRelRule
	computed     map[string]struct{} // calculation and mirror names
	calcs        []schemaCalcRule
	mirrors      []Mirror
	// aggregations are the blueprint's aggregation properties, by name.
	aggregations []compiledAggregation
	// scorecards grade entities (sorted by identifier); paths are the
	// "<relation>.<property>" names their rules read, as mirrors.
	scorecards []*compiledScorecard
	paths      []Mirror
}

type schemaValueKind uint8

const (
	schemaKindString schemaValueKind = iota + 1
	schemaKindNumber
	schemaKindInteger
	schemaKindBoolean
	schemaKindArray
	schemaKindObject
)

var schemaKinds = map[string]schemaValueKind{
	"string": schemaKindString, "number": schemaKindNumber, "integer": schemaKindInteger,
	"boolean": schemaKindBoolean, "array": schemaKindArray, "object": schemaKindObject,
}

var schemaKindNames = [...]string{
	schemaKindString: "string", schemaKindNumber: "number", schemaKindInteger: "integer",
	schemaKindBoolean: "boolean", schemaKindArray: "array", schemaKindObject: "object",
}

func (k schemaValueKind) String() string { return schemaKindNames[k] }

const schemaTypeList = "string, number, integer, boolean, array, object"

type schemaStringFormat uint8

const (
	schemaFormatNone schemaStringFormat = iota
	schemaFormatURL
	schemaFormatEmail
	schemaFormatDateTime
	schemaFormatTimer
	schemaFormatTeam
	schemaFormatUser
)

var schemaFormats = map[string]schemaStringFormat{
	"url": schemaFormatURL, "email": schemaFormatEmail, "date-time": schemaFormatDateTime,
	"timer": schemaFormatTimer, "team": schemaFormatTeam, "user": schemaFormatUser,
}

const schemaFormatList = "url, email, date-time, timer, team, user"

// schemaPropRule is one compiled property (or array items) definition.
type schemaPropRule struct {
	name   string
	path   string // "/properties/<name>"; unused for items
	kind   schemaValueKind
	format schemaStringFormat

	hasMin, hasMax bool
	min, max       float64
	minLen, maxLen int // -1: no limit

	re *regexp.Regexp

	hasEnum  bool
	enumStr  []string
	enumNum  []float64
	enumBool []bool
	enumText string // JSON text of the enum, for messages

	items *schemaPropRule
}

type schemaRelRule struct {
	name     string
	path     string
	many     bool
	required bool
}

type schemaCalcRule struct {
	name string
	kind schemaValueKind // 0: any
	prog *jqeval.Program
}

// CompileBlueprint validates a blueprint definition and precompiles it.
// Errors are *ValidationError with JSON pointers into the blueprint
// document, e.g. "/schema/properties/tier/type" or "/relations/owner/target".
// Relation targets are only checked for syntax: whether the target
// blueprint exists is the caller's business.
func CompileBlueprint(bp *Blueprint) (*CompiledBlueprint, error) {
	var vs violations
	if bp == nil {
		vs.add("", "blueprint is required")
		return nil, vs.err("invalid blueprint")
	}
	c := &CompiledBlueprint{
		Blueprint: bp,
		props:     make(map[string]*schemaPropRule, len(bp.Schema.Properties)),
		relations: make(map[string]*schemaRelRule, len(bp.Relations)),
		computed:  make(map[string]struct{}, len(bp.CalculationProperties)+len(bp.MirrorProperties)),
	}
	if msg := blueprintIdentifierProblem(bp.Identifier); msg != "" {
		vs.add("/identifier", "%s", msg)
	}
	names := make(map[string]string) // name -> what declared it first

	claim := func(path, name, what string) {
		if msg := schemaIdentifierProblem(name); msg != "" {
			vs.add(path, "name %s", msg)
		}
		if prev, ok := names[name]; ok {
			vs.add(path, "name collides with %s %q", prev, name)
			return
		}
		names[name] = what
	}

	for _, name := range sortedKeys(bp.Schema.Properties) {
		path := pointer("schema", "properties", name)
		claim(path, name, "property")
		p := bp.Schema.Properties[name]
		if r := schemaCompileProperty(&p, path, &vs); r != nil {
			r.name = name
			r.path = pointer("properties", name)
			c.props[name] = r
		}
	}
	seenRequired := make(map[string]bool, len(bp.Schema.Required))
	for i, name := range bp.Schema.Required {
		if _, ok := bp.Schema.Properties[name]; !ok {
			vs.add(pointer("schema", "required", strconv.Itoa(i)), "property %q is not defined", name)
			continue
		}
		if r := c.props[name]; r != nil && !seenRequired[name] {
			c.required = append(c.required, r)
		}
		seenRequired[name] = true
	}

	for _, name := range sortedKeys(bp.Relations) {
		path := pointer("relations", name)
		claim(path, name, "relation")
		rel := bp.Relations[name]
		if msg := blueprintIdentifierProblem(rel.Target); msg != "" {
			vs.add(path+"/target", "%s", msg)
		}
		r := &schemaRelRule{name: name, path: path, many: rel.Many, required: rel.Required}
		c.relations[name] = r
		if rel.Required {
			c.requiredRels = append(c.requiredRels, r)
		}
	}

	for _, name := range sortedKeys(bp.CalculationProperties) {
		path := pointer("calculationProperties", name)
		claim(path, name, "calculation property")
		c.computed[name] = struct{}{}
		cp := bp.CalculationProperties[name]
		var kind schemaValueKind
		if cp.Type != "" {
			k, ok := schemaKinds[cp.Type]
			if !ok {
				vs.add(path+"/type", "must be one of %s", schemaTypeList)
			}
			kind = k
		}
		if strings.TrimSpace(cp.JQ) == "" {
			vs.add(path+"/jq", "required")
			continue
		}
		prog, err := jqeval.Compile(cp.JQ, CalcLimits)
		if err != nil {
			vs.add(path+"/jq", "invalid jq: %v", err)
			continue
		}
		c.calcs = append(c.calcs, schemaCalcRule{name: name, kind: kind, prog: prog})
	}

	for _, name := range sortedKeys(bp.MirrorProperties) {
		path := pointer("mirrorProperties", name)
		claim(path, name, "mirror property")
		c.computed[name] = struct{}{}
		mp := bp.MirrorProperties[name]
		rel, prop, msg := schemaSplitMirrorPath(mp.Path, bp)
		if msg != "" {
			vs.add(path+"/path", "%s", msg)
			continue
		}
		c.mirrors = append(c.mirrors, Mirror{Name: name, Relation: rel, Property: prop})
	}
	for _, name := range sortedKeys(bp.AggregationProperties) {
		path := pointer("aggregationProperties", name)
		claim(path, name, "aggregation property")
		if a := compileAggregation(name, bp.AggregationProperties[name], path, &vs); a != nil {
			c.aggregations = append(c.aggregations, *a)
		}
	}
	c.compileScorecards(&vs)
	validateAccess(bp, &vs)

	if err := vs.err("invalid blueprint"); err != nil {
		return nil, err
	}
	return c, nil
}

// schemaCompileProperty checks one property definition (path points at it in the
// blueprint document) and compiles it; nil when its type is unusable.
func schemaCompileProperty(p *Property, path string, vs *violations) *schemaPropRule {
	before := len(vs.list)
	kind, ok := schemaKinds[p.Type]
	if !ok {
		if p.Type == "" {
			vs.add(path+"/type", "required")
		} else {
			vs.add(path+"/type", "must be one of %s", schemaTypeList)
		}
		return nil
	}
	r := &schemaPropRule{kind: kind, minLen: -1, maxLen: -1}
	numeric := kind == schemaKindNumber || kind == schemaKindInteger

	if p.Format != "" {
		f, ok := schemaFormats[p.Format]
		switch {
		case !ok:
			vs.add(path+"/format", "must be one of %s", schemaFormatList)
		case kind != schemaKindString:
			vs.add(path+"/format", "only allowed on string properties (use items.format for arrays)")
		default:
			r.format = f
		}
	}
	switch {
	case p.Cardinality == "":
	case p.Cardinality != CardinalityLow && p.Cardinality != CardinalityHigh:
		vs.add(path+"/cardinality", "must be %s or %s", CardinalityLow, CardinalityHigh)
	case kind != schemaKindString && kind != schemaKindArray:
		vs.add(path+"/cardinality", "only allowed on string and array properties")
	}
	if p.ExpiryAction != "" {
		if p.Format != "timer" {
			vs.add(path+"/expiryAction", "only allowed on properties of format timer")
		} else if msg := schemaIdentifierProblem(p.ExpiryAction); msg != "" {
			vs.add(path+"/expiryAction", "%s", msg)
		}
	}

	if p.Minimum != nil {
		if !numeric {
			vs.add(path+"/minimum", "only allowed on number and integer properties")
		} else {
			r.hasMin, r.min = true, *p.Minimum
		}
	}
	if p.Maximum != nil {
		if !numeric {
			vs.add(path+"/maximum", "only allowed on number and integer properties")
		} else {
			r.hasMax, r.max = true, *p.Maximum
		}
	}
	if r.hasMin && r.hasMax && r.min > r.max {
		vs.add(path+"/minimum", "must be ≤ maximum (%s)", schemaFormatNumber(r.max))
	}

	if p.MinLength != nil {
		switch {
		case kind != schemaKindString:
			vs.add(path+"/minLength", "only allowed on string properties")
		case *p.MinLength < 0:
			vs.add(path+"/minLength", "must be ≥ 0")
		default:
			r.minLen = *p.MinLength
		}
	}
	if p.MaxLength != nil {
		switch {
		case kind != schemaKindString:
			vs.add(path+"/maxLength", "only allowed on string properties")
		case *p.MaxLength < 0:
			vs.add(path+"/maxLength", "must be ≥ 0")
		default:
			r.maxLen = *p.MaxLength
		}
	}
	if r.minLen >= 0 && r.maxLen >= 0 && r.minLen > r.maxLen {
		vs.add(path+"/minLength", "must be ≤ maxLength (%d)", r.maxLen)
	}

	if p.Pattern != "" {
		if kind != schemaKindString {
			vs.add(path+"/pattern", "only allowed on string properties")
		} else if re, err := regexp.Compile(p.Pattern); err != nil {
			vs.add(path+"/pattern", "invalid regular expression: %v", err)
		} else {
			r.re = re
		}
	}

	if p.Items != nil {
		switch {
		case kind != schemaKindArray:
			vs.add(path+"/items", "only allowed on array properties")
		case p.Items.Type == "array":
			vs.add(path+"/items/type", "nested arrays are not supported")
		default:
			r.items = schemaCompileProperty(p.Items, path+"/items", vs)
		}
	}

	if len(p.Enum) > 0 {
		schemaCompileEnum(r, p.Enum, path+"/enum", vs)
	}

	if p.Default != nil && len(vs.list) == before {
		r.check(p.Default, path+"/default", -1, vs)
	}
	return r
}

func schemaCompileEnum(r *schemaPropRule, enum []any, path string, vs *violations) {
	switch r.kind {
	case schemaKindArray, schemaKindObject:
		vs.add(path, "only allowed on string, number, integer and boolean properties")
		return
	}
	ok := true
	for i, v := range enum {
		switch r.kind {
		case schemaKindString:
			if s, isStr := v.(string); isStr {
				r.enumStr = append(r.enumStr, s)
				continue
			}
		case schemaKindNumber, schemaKindInteger:
			if f, isNum := schemaNumberValue(v); isNum && (r.kind == schemaKindNumber || schemaIsWhole(f)) {
				r.enumNum = append(r.enumNum, f)
				continue
			}
		case schemaKindBoolean:
			if b, isBool := v.(bool); isBool {
				r.enumBool = append(r.enumBool, b)
				continue
			}
		}
		ok = false
		vs.add(path+"/"+strconv.Itoa(i), "expected %s, got %s", r.kind, schemaValueTypeName(v))
	}
	if !ok {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(enum); err != nil {
		vs.add(path, "cannot be encoded: %v", err)
		return
	}
	r.hasEnum = true
	r.enumText = strings.TrimSuffix(buf.String(), "\n")
}

// schemaSplitMirrorPath splits "relation.property" against bp's relations; the
// relation name may itself contain dots, so the longest defined relation
// that prefixes the path wins. msg describes the problem, if any.
func schemaSplitMirrorPath(path string, bp *Blueprint) (rel, prop, msg string) {
	if path == "" {
		return "", "", "required"
	}
	if !strings.Contains(path, ".") {
		return "", "", `must be "<relation>.<property>"`
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		if _, ok := bp.Relations[path[:i]]; ok {
			rel, prop = path[:i], path[i+1:]
			break
		}
	}
	if rel == "" {
		first, _, _ := strings.Cut(path, ".")
		return "", "", fmt.Sprintf("relation %q is not defined in blueprint %s", first, bp.Identifier)
	}
	if metaFields[prop] == nil && !schemaIsIdentifier(prop) {
		return "", "", fmt.Sprintf("property %q must be a property identifier or a meta-property such as $title", prop)
	}
	return rel, prop, ""
}

// MirrorPath splits a mirror path "relation.property" against this
// blueprint's relations (property may be a meta-property like $title);
// ok is false when the path does not name a defined relation.
func (c *CompiledBlueprint) MirrorPath(path string) (relation, property string, ok bool) {
	rel, prop, msg := schemaSplitMirrorPath(path, c.Blueprint)
	return rel, prop, msg == ""
}

// Mirrors returns the blueprint's mirror properties, split and sorted by
// Name. The slice is a copy.
func (c *CompiledBlueprint) Mirrors() []Mirror {
	if len(c.mirrors) == 0 {
		return nil
	}
	return append([]Mirror(nil), c.mirrors...)
}

// HasProperty reports whether name is a stored property of the blueprint.
func (c *CompiledBlueprint) HasProperty(name string) bool {
	_, ok := c.props[name]
	return ok
}

// IsComputed reports whether name is a calculation or mirror property.
func (c *CompiledBlueprint) IsComputed(name string) bool {
	_, ok := c.computed[name]
	return ok
}
