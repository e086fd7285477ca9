package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portico-dev/portico/internal/jqeval"
)

// ErrMalformed marks input that is not a well-formed JSON object of the
// expected shape: syntax errors, unknown, duplicate or mistyped fields,
// trailing data. The HTTP layer answers it with 400.
var ErrMalformed = errors.New("malformed")

// MaxTitleLength is the longest entity title accepted, in characters.
const MaxTitleLength = 1000

// CalcLimits bound one calculation-property evaluation: it runs on every
// read of an entity, so it gets a tenth of a mapping's steps.
var CalcLimits = jqeval.Limits{Timeout: 100 * time.Millisecond, Steps: 100_000}

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

// schemaMetaProperties are the entity fields a mirror property may read.
var schemaMetaProperties = map[string]bool{
	"$identifier": true, "$title": true, "$blueprint": true, "$icon": true,
	"$team": true, "$createdAt": true, "$updatedAt": true,
	"$createdBy": true, "$updatedBy": true, "$datasource": true,
}

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

	for _, name := range schemaSortedKeys(bp.Schema.Properties) {
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

	for _, name := range schemaSortedKeys(bp.Relations) {
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

	for _, name := range schemaSortedKeys(bp.CalculationProperties) {
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

	for _, name := range schemaSortedKeys(bp.MirrorProperties) {
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
	if !schemaMetaProperties[prop] && !schemaIsIdentifier(prop) {
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

// ValidateEntity checks e against the blueprint: identifier, title, team,
// properties and relations. It normalises e in place: null properties are
// removed (null means unset), as are calculation and mirror properties
// echoed back by a client; relation values become a string (single) or a
// []string without duplicates (many), null relations are removed. Every
// violation is reported in one *ValidationError, with pointers like
// "/properties/port" or "/relations/owner/1". Relation targets are not
// looked up. e.Blueprint is neither checked nor set.
func (c *CompiledBlueprint) ValidateEntity(e *Entity) error {
	var vs violations
	if msg := schemaIdentifierProblem(e.Identifier); msg != "" {
		vs.add("/identifier", "%s", msg)
	}
	if len(e.Title) > MaxTitleLength && utf8.RuneCountInString(e.Title) > MaxTitleLength {
		vs.add("/title", "must be at most %d characters", MaxTitleLength)
	}
	for i, t := range e.Team {
		if msg := schemaIdentifierProblem(t); msg != "" {
			vs.add("/team/"+strconv.Itoa(i), "%s", msg)
		}
	}

	for name, v := range e.Properties {
		r := c.props[name]
		if r == nil {
			if _, ok := c.computed[name]; ok {
				delete(e.Properties, name)
				continue
			}
			vs.add(pointer("properties", name), "not defined in blueprint %s", c.Blueprint.Identifier)
			continue
		}
		if v == nil {
			delete(e.Properties, name)
			continue
		}
		r.check(v, r.path, -1, &vs)
	}
	for _, r := range c.required {
		if v, ok := e.Properties[r.name]; !ok || v == nil {
			vs.add(r.path, "required property missing")
		}
	}

	for name, v := range e.Relations {
		r := c.relations[name]
		if r == nil {
			vs.add(pointer("relations", name), "not defined in blueprint %s", c.Blueprint.Identifier)
			continue
		}
		if v == nil {
			delete(e.Relations, name)
			continue
		}
		if r.many {
			if ids, ok := r.checkMany(v, &vs); ok {
				e.Relations[name] = ids
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			vs.add(r.path, "expected string, got %s", schemaValueTypeName(v))
		} else if msg := schemaIdentifierProblem(s); msg != "" {
			vs.add(r.path, "%s", msg)
		}
	}
	for _, r := range c.requiredRels {
		switch v := e.Relations[r.name].(type) {
		case nil:
			vs.add(r.path, "required relation missing")
		case []string:
			if len(v) == 0 {
				vs.add(r.path, "required relation missing")
			}
		case []any:
			if len(v) == 0 {
				vs.add(r.path, "required relation missing")
			}
		}
	}

	if len(vs.list) > 1 {
		sort.SliceStable(vs.list, func(i, j int) bool {
			return schemaComparePointers(vs.list[i].Path, vs.list[j].Path) < 0
		})
	}
	return vs.err("invalid entity")
}

// checkMany validates a many-relation value and returns it as a
// duplicate-free []string; ok is false when it had violations.
func (r *schemaRelRule) checkMany(v any, vs *violations) ([]string, bool) {
	switch t := v.(type) {
	case string:
		if msg := schemaIdentifierProblem(t); msg != "" {
			vs.add(r.path, "%s", msg)
			return nil, false
		}
		return []string{t}, true
	case []string:
		ok := true
		for i, s := range t {
			if msg := schemaIdentifierProblem(s); msg != "" {
				vs.add(r.path+"/"+strconv.Itoa(i), "%s", msg)
				ok = false
			}
		}
		if !ok {
			return nil, false
		}
		return schemaDedupeStrings(t), true
	case []any:
		out := make([]string, 0, len(t))
		ok := true
		for i, x := range t {
			s, isStr := x.(string)
			if !isStr {
				vs.add(r.path+"/"+strconv.Itoa(i), "expected string, got %s", schemaValueTypeName(x))
				ok = false
				continue
			}
			if msg := schemaIdentifierProblem(s); msg != "" {
				vs.add(r.path+"/"+strconv.Itoa(i), "%s", msg)
				ok = false
				continue
			}
			out = append(out, s)
		}
		if !ok {
			return nil, false
		}
		return schemaDedupeStrings(out), true
	default:
		vs.add(r.path, "expected array of strings, got %s", schemaValueTypeName(v))
		return nil, false
	}
}

// schemaDedupeStrings removes later duplicates, preserving order; it returns s
// itself when there are none.
func schemaDedupeStrings(s []string) []string {
	if len(s) < 2 {
		return s
	}
	if len(s) <= 16 {
		for i := 1; i < len(s); i++ {
			for j := 0; j < i; j++ {
				if s[i] == s[j] {
					return schemaDedupeStringsSlow(s)
				}
			}
		}
		return s
	}
	return schemaDedupeStringsSlow(s)
}

func schemaDedupeStringsSlow(s []string) []string {
	seen := make(map[string]struct{}, len(s))
	out := make([]string, 0, len(s))
	for _, x := range s {
		if _, dup := seen[x]; dup {
			continue
		}
		seen[x] = struct{}{}
		out = append(out, x)
	}
	return out
}

// schemaAt is the pointer of a value: base, or base's element idx when idx ≥ 0.
// It is only called on the error path.
func schemaAt(base string, idx int) string {
	if idx < 0 {
		return base
	}
	return base + "/" + strconv.Itoa(idx)
}

// check validates one non-null value against r, reporting at base (or at
// base's element idx when idx ≥ 0).
func (r *schemaPropRule) check(v any, base string, idx int, vs *violations) {
	switch r.kind {
	case schemaKindString:
		s, ok := v.(string)
		if !ok {
			vs.add(schemaAt(base, idx), "expected string, got %s", schemaValueTypeName(v))
			return
		}
		r.checkString(s, base, idx, vs)
	case schemaKindNumber, schemaKindInteger:
		f, ok := schemaNumberValue(v)
		if !ok {
			vs.add(schemaAt(base, idx), "expected %s, got %s", r.kind, schemaValueTypeName(v))
			return
		}
		if r.kind == schemaKindInteger && !schemaIsWhole(f) {
			vs.add(schemaAt(base, idx), "expected integer, got number")
			return
		}
		if r.hasEnum {
			found := false
			for _, x := range r.enumNum {
				if x == f {
					found = true
					break
				}
			}
			if !found {
				vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
			}
		}
		if r.hasMin && f < r.min {
			vs.add(schemaAt(base, idx), "must be ≥ %s", schemaFormatNumber(r.min))
		}
		if r.hasMax && f > r.max {
			vs.add(schemaAt(base, idx), "must be ≤ %s", schemaFormatNumber(r.max))
		}
	case schemaKindBoolean:
		b, ok := v.(bool)
		if !ok {
			vs.add(schemaAt(base, idx), "expected boolean, got %s", schemaValueTypeName(v))
			return
		}
		if r.hasEnum {
			found := false
			for _, x := range r.enumBool {
				if x == b {
					found = true
					break
				}
			}
			if !found {
				vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
			}
		}
	case schemaKindArray:
		path := schemaAt(base, idx)
		switch a := v.(type) {
		case []any:
			if r.items != nil {
				for i, x := range a {
					if x == nil {
						vs.add(path+"/"+strconv.Itoa(i), "expected %s, got null", r.items.kind)
						continue
					}
					r.items.check(x, path, i, vs)
				}
			}
		case []string:
			if r.items != nil {
				for i, x := range a {
					r.items.check(x, path, i, vs)
				}
			}
		default:
			vs.add(path, "expected array, got %s", schemaValueTypeName(v))
		}
	case schemaKindObject:
		if _, ok := v.(map[string]any); !ok {
			vs.add(schemaAt(base, idx), "expected object, got %s", schemaValueTypeName(v))
		}
	}
}

func (r *schemaPropRule) checkString(s, base string, idx int, vs *violations) {
	if r.minLen >= 0 || r.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if r.minLen >= 0 && n < r.minLen {
			vs.add(schemaAt(base, idx), "must be at least %d characters", r.minLen)
		}
		if r.maxLen >= 0 && n > r.maxLen {
			vs.add(schemaAt(base, idx), "must be at most %d characters", r.maxLen)
		}
	}
	if r.re != nil && !r.re.MatchString(s) {
		vs.add(schemaAt(base, idx), "must match pattern %q", r.re.String())
	}
	if r.format != schemaFormatNone {
		if msg := schemaFormatProblem(r.format, s); msg != "" {
			vs.add(schemaAt(base, idx), "%s", msg)
		}
	}
	if r.hasEnum {
		found := false
		for _, x := range r.enumStr {
			if x == s {
				found = true
				break
			}
		}
		if !found {
			vs.add(schemaAt(base, idx), "must be one of %s", r.enumText)
		}
	}
}

// schemaFormatProblem returns why s does not satisfy f, or "".
func schemaFormatProblem(f schemaStringFormat, s string) string {
	switch f {
	case schemaFormatURL:
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "must be an absolute http or https URL"
		}
	case schemaFormatEmail:
		if !schemaIsEmail(s) {
			return "must be an email address"
		}
	case schemaFormatUser:
		if !schemaIsEmail(s) {
			return "must be a user's email address"
		}
	case schemaFormatDateTime, schemaFormatTimer:
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "must be an RFC 3339 date-time, e.g. 2024-01-02T15:04:05Z"
		}
	case schemaFormatTeam:
		if !schemaIsIdentifier(s) {
			return "must be a team identifier"
		}
	}
	return ""
}

// schemaIsEmail reports whether s is a bare email address (no display name, no
// angle brackets).
func schemaIsEmail(s string) bool {
	if s == "" || len(s) > 320 || strings.IndexByte(s, '@') < 0 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// schemaIdentChars marks the bytes allowed after the first identifier character.
var schemaIdentChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "@_.:/=+-" {
		t[c] = true
	}
	return t
}()

// schemaIsIdentifier is IdentifierPattern.MatchString without the regexp engine.
func schemaIsIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	c := s[0]
	if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !schemaIdentChars[s[i]] {
			return false
		}
	}
	return true
}

// schemaIdentifierProblem describes why s is not an identifier, or returns "".
func schemaIdentifierProblem(s string) string {
	if schemaIsIdentifier(s) {
		return ""
	}
	if s == "" {
		return "required"
	}
	return "must match " + IdentifierPattern.String()
}

// schemaNumberValue returns v as a float64 when it is a number (JSON numbers
// decode as float64; the other kinds come from Go callers).
func schemaNumberValue(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case float32:
		f := float64(n)
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func schemaIsWhole(f float64) bool { return f == math.Trunc(f) && !math.IsInf(f, 0) }

// schemaValueTypeName names v's JSON type for messages.
func schemaValueTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, float32, int, int64, int32, uint64, uint32, json.Number:
		return "number"
	case []any, []string:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("unsupported value %T", v)
}

// schemaFormatNumber prints a limit without exponent for ordinary magnitudes.
func schemaFormatNumber(f float64) string {
	if math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// schemaComparePointers orders JSON pointers token by token, numeric tokens
// numerically, so "/tags/2" sorts before "/tags/10".
func schemaComparePointers(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		var ta, tb string
		ta, a = schemaNextToken(a)
		tb, b = schemaNextToken(b)
		if ta == tb {
			continue
		}
		na, errA := strconv.Atoi(ta)
		nb, errB := strconv.Atoi(tb)
		if errA == nil && errB == nil {
			if na < nb {
				return -1
			}
			return 1
		}
		return strings.Compare(ta, tb)
	}
	return 0
}

func schemaNextToken(p string) (tok, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

func schemaSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Calculate evaluates the calculation properties with gojq over the entity
// as JSON (identifier, title, blueprint, icon, team, properties, relations,
// createdAt, updatedAt, createdBy, updatedBy, datasource). The first output
// of each expression is its value; an expression that fails, yields
// nothing, exceeds CalcLimits or yields a value of the wrong declared type
// gives nil, never an error. It returns nil when there are no
// calculation properties.
func (c *CompiledBlueprint) Calculate(e *Entity) map[string]any {
	if len(c.calcs) == 0 {
		return nil
	}
	in := schemaEntityJQInput(e, c.Blueprint.Identifier)
	out := make(map[string]any, len(c.calcs))
	for _, cr := range c.calcs {
		out[cr.name] = cr.eval(in)
	}
	return out
}

// checkCalculations evaluates every calculation property over an entity
// without properties and rejects those that exceed CalcLimits there: they
// would on every read. (One that exceeds them only for some entities gives
// nil for those.)
func (c *CompiledBlueprint) checkCalculations() error {
	var vs violations
	in := schemaEntityJQInput(&Entity{Identifier: "probe"}, c.Blueprint.Identifier)
	for _, cr := range c.calcs {
		if _, _, err := cr.prog.First(context.Background(), in); errors.Is(err, jqeval.ErrLimit) {
			vs.add(pointer("calculationProperties", cr.name)+"/jq", "%v", err)
		}
	}
	return vs.err("invalid blueprint")
}

func (cr *schemaCalcRule) eval(in any) (result any) {
	defer func() {
		if recover() != nil {
			result = nil
		}
	}()
	v, ok, err := cr.prog.First(context.Background(), in)
	if !ok || err != nil {
		return nil
	}
	switch n := v.(type) {
	case int:
		v = float64(n)
	case *big.Int:
		f, _ := new(big.Float).SetInt(n).Float64()
		v = f
	}
	switch cr.kind {
	case 0:
		return v
	case schemaKindString:
		if _, ok := v.(string); ok {
			return v
		}
	case schemaKindNumber:
		if f, ok := v.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return v
		}
	case schemaKindInteger:
		if f, ok := v.(float64); ok && schemaIsWhole(f) {
			return v
		}
	case schemaKindBoolean:
		if _, ok := v.(bool); ok {
			return v
		}
	case schemaKindArray:
		if _, ok := v.([]any); ok {
			return v
		}
	case schemaKindObject:
		if _, ok := v.(map[string]any); ok {
			return v
		}
	}
	return nil
}

// schemaEntityJQInput is e as a gojq value: a deep copy made of the types gojq
// accepts, so expressions can neither fail on Go types nor alias e.
func schemaEntityJQInput(e *Entity, blueprint string) map[string]any {
	if e.Blueprint != "" {
		blueprint = e.Blueprint
	}
	team := make([]any, len(e.Team))
	for i, t := range e.Team {
		team[i] = t
	}
	stamp := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{
		"identifier": e.Identifier,
		"title":      e.Title,
		"blueprint":  blueprint,
		"icon":       e.Icon,
		"team":       team,
		"properties": schemaJqValue(e.Properties),
		"relations":  schemaJqValue(e.Relations),
		"createdAt":  stamp(e.CreatedAt),
		"updatedAt":  stamp(e.UpdatedAt),
		"createdBy":  e.CreatedBy,
		"updatedBy":  e.UpdatedBy,
		"datasource": e.Datasource,
	}
}

// schemaJqValue deep-copies v into the value types gojq understands.
func schemaJqValue(v any) any {
	switch t := v.(type) {
	case nil, bool, string, float64, int, json.Number:
		return v
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = schemaJqValue(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = schemaJqValue(x)
		}
		return a
	case []string:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = x
		}
		return a
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano)
	}
	if f, ok := schemaNumberValue(v); ok {
		return f
	}
	// Anything else goes through its JSON form.
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(data, &out) != nil {
		return nil
	}
	return out
}

// schemaJsonIgnored accepts and discards any JSON value.
type schemaJsonIgnored struct{}

func (*schemaJsonIgnored) UnmarshalJSON([]byte) error { return nil }

// schemaEntityFields are the fields DecodeEntity accepts, numbered.
var schemaEntityFields = map[string]int{
	"identifier": 0, "title": 1, "icon": 2, "blueprint": 3, "team": 4,
	"properties": 5, "relations": 6, "createdAt": 7, "updatedAt": 8,
	"createdBy": 9, "updatedBy": 10, "datasource": 11,
}

// DecodeEntity strictly decodes one entity JSON object. Field names must
// match exactly; unknown and duplicate fields, non-objects and trailing
// data are rejected with an error wrapping ErrMalformed. "blueprint" is
// decoded into Entity.Blueprint (the bulk API needs it); the other
// server-managed fields (createdAt, updatedAt, createdBy, updatedBy,
// datasource) are accepted and dropped. Properties and Relations are never
// nil. Numbers decode as float64. The result still needs ValidateEntity.
func DecodeEntity(data []byte) (*Entity, error) {
	if e, ok := decodeEntityFast(data); ok {
		return e, nil
	}
	return decodeEntityStrict(data)
}

// decodeEntityStrict is the token-by-token decoder that explains exactly
// what is wrong with a document.
func decodeEntityStrict(data []byte) (*Entity, error) {
	if err := schemaExpectJSONObject(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, schemaMalformedJSON(err)
	}
	e := &Entity{}
	var seen [16]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, schemaMalformedJSON(err)
		}
		key, _ := tok.(string)
		if i, known := schemaEntityFields[key]; known {
			if seen[i] {
				return nil, fmt.Errorf("%w: duplicate field %q", ErrMalformed, key)
			}
			seen[i] = true
		}
		var target any
		switch key {
		case "identifier":
			target = &e.Identifier
		case "title":
			target = &e.Title
		case "icon":
			target = &e.Icon
		case "blueprint":
			target = &e.Blueprint
		case "team":
			target = &e.Team
		case "properties":
			target = &e.Properties
		case "relations":
			target = &e.Relations
		case "createdAt", "updatedAt", "createdBy", "updatedBy", "datasource":
			target = &schemaJsonIgnored{}
		default:
			return nil, fmt.Errorf("%w: unknown field %q", ErrMalformed, key)
		}
		if err := dec.Decode(target); err != nil {
			return nil, schemaMalformedField(key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, schemaMalformedJSON(err)
	}
	if err := schemaExpectEOF(dec); err != nil {
		return nil, err
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	if e.Relations == nil {
		e.Relations = map[string]any{}
	}
	return e, nil
}

// schemaBlueprintFields is Blueprint without its methods, so decoding it does not
// recurse into a custom UnmarshalJSON should one appear.
type schemaBlueprintFields Blueprint

// schemaBlueprintWire shadows the server-managed fields so any value is accepted
// and dropped.
type schemaBlueprintWire struct {
	schemaBlueprintFields
	CreatedAt schemaJsonIgnored `json:"createdAt"`
	UpdatedAt schemaJsonIgnored `json:"updatedAt"`
}

// DecodeBlueprint strictly decodes one blueprint JSON object: unknown fields
// (at any depth), mistyped fields, non-objects and trailing data are
// rejected with an error wrapping ErrMalformed; the server-managed
// createdAt/updatedAt are accepted and dropped. The result still needs
// CompileBlueprint.
func DecodeBlueprint(data []byte) (*Blueprint, error) {
	if err := schemaExpectJSONObject(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w schemaBlueprintWire
	if err := dec.Decode(&w); err != nil {
		return nil, schemaMalformedField("", err)
	}
	if err := schemaExpectEOF(dec); err != nil {
		return nil, err
	}
	bp := Blueprint(w.schemaBlueprintFields)
	return &bp, nil
}

func schemaExpectJSONObject(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty body, expected a JSON object", ErrMalformed)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: expected a JSON object", ErrMalformed)
	}
	return nil
}

func schemaExpectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: unexpected data after the JSON object", ErrMalformed)
	}
	return nil
}

func schemaMalformedJSON(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%w: invalid JSON at byte %d: %s", ErrMalformed, syn.Offset, syn.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: unexpected end of JSON input", ErrMalformed)
	}
	return fmt.Errorf("%w: %s", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
}

// schemaMalformedField describes a decoding error of field (or of the document
// when field is "").
func schemaMalformedField(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		name := field
		if te.Field != "" {
			name = strings.TrimPrefix(te.Field, "schemaBlueprintFields.")
			if field != "" {
				name = field + "." + name
			}
		}
		if name == "" {
			name = "value"
		}
		return fmt.Errorf("%w: field %s: expected %s, got %s", ErrMalformed, name, schemaGoTypeJSONName(te.Type.String()), te.Value)
	}
	return schemaMalformedJSON(err)
}

// schemaGoTypeJSONName names the JSON shape a Go type decodes from.
func schemaGoTypeJSONName(t string) string {
	switch {
	case t == "string":
		return "string"
	case t == "bool":
		return "boolean"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "integer"
	case strings.HasPrefix(t, "float"):
		return "number"
	case strings.HasPrefix(t, "[]"):
		return "array"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "catalog."), strings.HasPrefix(t, "struct"):
		return "object"
	case strings.HasPrefix(t, "*"):
		return schemaGoTypeJSONName(t[1:])
	}
	return t
}
