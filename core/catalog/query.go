package catalog

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rule is one node of a search query: either a combinator ("and"/"or" over
// Rules) or a leaf comparing Property with Value through Operator. The
// relatedTo leaf names an entity (Blueprint, Identifier) instead and says
// where it sits relative to the results. The same language is used by
// search, scorecards, action conditions, automations and permissions.
type Rule struct {
	Combinator string `json:"combinator,omitempty"`
	Rules      []Rule `json:"rules,omitempty"`
	Property   string `json:"property,omitempty"`
	Operator   string `json:"operator,omitempty"`
	Value      any    `json:"value,omitempty"`
	// relatedTo only:
	Blueprint  string `json:"blueprint,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	Direction  string `json:"direction,omitempty"` // "upstream" | "downstream"
	Relation   string `json:"relation,omitempty"`
	Depth      int    `json:"depth,omitempty"` // 1..3, 0 means 1
}

// Related is the set of entities each relatedTo rule admits, as resolved by
// the store through its graph index before matching. It is keyed by the
// *Rule pointer inside the tree (see Rule.Walk).
type Related map[*Rule]map[Ref]struct{}

// Query size limits: generous for any query a person or a UI writes, small
// enough that one request cannot make a search evaluate an unbounded
// expression against every candidate entity.
const (
	// MaxQueryNesting is how deep combinators may nest: the root
	// combinator is level 1.
	MaxQueryNesting = 10
	// MaxQueryRules is how many nodes (combinators and leaves) a query
	// holds at most.
	MaxQueryRules = 256
	// MaxQueryListValues is how many values the value of in, notIn and
	// containsAny lists at most.
	MaxQueryListValues = 1000
)

// queryOperators lists every leaf operator with the kind of value it takes.
var queryOperators = map[string]queryValueKind{
	"=":            queryScalar,
	"!=":           queryScalar,
	"<":            queryScalar,
	"<=":           queryScalar,
	">":            queryScalar,
	">=":           queryScalar,
	"in":           queryList,
	"notIn":        queryList,
	"contains":     queryScalar,
	"containsAny":  queryList,
	"beginsWith":   queryScalar,
	"endsWith":     queryScalar,
	"isEmpty":      queryNoValue,
	"isNotEmpty":   queryNoValue,
	"between":      queryRange,
	"relatedTo":    queryNoValue,
	"isExpired":    queryNoValue,
	"isNotExpired": queryNoValue,
}

type queryValueKind int

const (
	queryNoValue queryValueKind = iota
	queryScalar
	queryList
	queryRange
)

// queryMetaProperties are the "$" names Lookup understands.
var queryMetaProperties = map[string]bool{
	"$identifier": true,
	"$title":      true,
	"$blueprint":  true,
	"$team":       true,
	"$createdAt":  true,
	"$updatedAt":  true,
	"$datasource": true,
}

// IsCombinator reports whether r is an "and"/"or" node rather than a leaf.
// A node carrying rules counts as a combinator even without one (Validate
// rejects it).
func (r *Rule) IsCombinator() bool {
	return r.Combinator != "" || r.Rules != nil
}

// Walk calls fn for r and every node below it, parents first. The pointers
// point into the tree, so they can key a Related map.
func (r *Rule) Walk(fn func(*Rule)) {
	if r == nil {
		return
	}
	fn(r)
	for i := range r.Rules {
		r.Rules[i].Walk(fn)
	}
}

// ---------------------------------------------------------------------------
// Decoding

// DecodeQuery strictly decodes one query JSON object and validates it.
// Field names must match exactly (no case folding); unknown or duplicate
// fields, wrongly typed fields and trailing data are rejected. Every error
// is a *ValidationError whose paths are JSON pointers relative to the query.
func DecodeQuery(data []byte) (*Rule, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	d := queryDecoder{dec: dec}
	var r Rule
	if err := d.rule(&r, "", 1); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, queryDecodeError("", "unexpected data after the query")
	}
	if err := r.Validate(""); err != nil {
		return nil, err
	}
	return &r, nil
}

type queryDecoder struct {
	dec   *json.Decoder
	count int // rules decoded so far
}

func queryDecodeError(path, format string, args ...any) error {
	var v violations
	v.add(path, format, args...)
	return v.err("invalid query")
}

func (d *queryDecoder) token(path string) (json.Token, error) {
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, queryDecodeError(path, "unexpected end of JSON input")
	}
	if err != nil {
		return nil, queryDecodeError(path, "invalid JSON: %v", err)
	}
	return tok, nil
}

// rule decodes one rule object at path; level is its nesting level (root 1).
func (d *queryDecoder) rule(r *Rule, path string, level int) error {
	if d.count++; d.count > MaxQueryRules {
		return queryDecodeError(path, "a query holds at most %d rules", MaxQueryRules)
	}
	tok, err := d.token(path)
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return queryDecodeError(path, "must be a JSON object")
	}
	seen := make(map[string]bool, 4)
	for d.dec.More() {
		tok, err := d.token(path)
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return queryDecodeError(path, "invalid JSON: expected a field name")
		}
		fp := path + pointer(key)
		if seen[key] {
			return queryDecodeError(fp, "duplicate field")
		}
		seen[key] = true
		switch key {
		case "combinator":
			r.Combinator, err = d.str(fp)
		case "property":
			r.Property, err = d.str(fp)
		case "operator":
			r.Operator, err = d.str(fp)
		case "blueprint":
			r.Blueprint, err = d.str(fp)
		case "identifier":
			r.Identifier, err = d.str(fp)
		case "direction":
			r.Direction, err = d.str(fp)
		case "relation":
			r.Relation, err = d.str(fp)
		case "depth":
			r.Depth, err = d.int(fp)
		case "value":
			r.Value, err = d.value(fp)
		case "rules":
			if level > MaxQueryNesting {
				return queryDecodeError(path, "combinators nest deeper than %d levels", MaxQueryNesting)
			}
			r.Rules, err = d.rules(fp, level)
		default:
			return queryDecodeError(fp, "unknown field")
		}
		if err != nil {
			return err
		}
	}
	tok, err = d.token(path)
	if err != nil {
		return err
	}
	if tok != json.Delim('}') {
		return queryDecodeError(path, "invalid JSON: unterminated object")
	}
	return nil
}

func (d *queryDecoder) str(path string) (string, error) {
	tok, err := d.token(path)
	if err != nil {
		return "", err
	}
	switch t := tok.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	}
	return "", queryDecodeError(path, "must be a string")
}

func (d *queryDecoder) int(path string) (int, error) {
	tok, err := d.token(path)
	if err != nil {
		return 0, err
	}
	switch t := tok.(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := strconv.Atoi(t.String())
		if err != nil {
			return 0, queryDecodeError(path, "must be an integer")
		}
		return n, nil
	}
	return 0, queryDecodeError(path, "must be an integer")
}

func (d *queryDecoder) value(path string) (any, error) {
	var v any
	if err := d.dec.Decode(&v); err != nil {
		return nil, queryDecodeError(path, "invalid JSON: %v", err)
	}
	return queryFloats(v, path)
}

// queryFloats turns the json.Numbers of a decoded value into float64, the
// type encoding/json would have produced.
func queryFloats(v any, path string) (any, error) {
	switch t := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(t.String(), 64)
		if err != nil {
			return nil, queryDecodeError(path, "number %s is out of range", t)
		}
		return f, nil
	case []any:
		for i, x := range t {
			y, err := queryFloats(x, path+pointer(strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
	case map[string]any:
		for k, x := range t {
			y, err := queryFloats(x, path+pointer(k))
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
	}
	return v, nil
}

func (d *queryDecoder) rules(path string, level int) ([]Rule, error) {
	tok, err := d.token(path)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('[') {
		return nil, queryDecodeError(path, "must be an array of rules")
	}
	rules := []Rule{}
	for d.dec.More() {
		rules = append(rules, Rule{})
		i := len(rules) - 1
		if err := d.rule(&rules[i], path+pointer(strconv.Itoa(i)), level+1); err != nil {
			return nil, err
		}
	}
	tok, err = d.token(path)
	if err != nil {
		return nil, err
	}
	if tok != json.Delim(']') {
		return nil, queryDecodeError(path, "invalid JSON: unterminated array")
	}
	return rules, nil
}

// ---------------------------------------------------------------------------
// Validation

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
		if !queryMetaProperties[r.Property] {
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

// ---------------------------------------------------------------------------
// Matching

// Match reports whether entity e satisfies the rule tree r. props is the
// entity's property view (stored plus computed properties; pass
// e.Properties when there are none computed), now decides isExpired and
// isNotExpired, related holds the resolved relatedTo sets. A nil rule
// matches everything; an unknown combinator or operator matches nothing.
//
// Semantics, per leaf operator (an "array" is a list property, e.g. $team):
//   - = < <= > >= between in beginsWith endsWith: true if the value, or any
//     element of an array, satisfies it. between is inclusive.
//   - != notIn: true if neither the value nor any element equals; a missing
//     property is != anything.
//   - contains: substring of a string, or an element equal to the value of
//     an array. containsAny: contains holds for any listed value.
//   - isEmpty: missing, null, "", empty array or empty object.
//   - isExpired: an RFC 3339 string (or time.Time) before now.
//     isNotExpired: such a time not before now. A missing or non-time
//     property is neither expired nor not expired.
//   - relatedTo: e.Ref() is in related[r].
//
// Comparisons follow CompareValues: types never coerce.
func Match(r *Rule, e *Entity, props map[string]any, now time.Time, related Related) bool {
	if r == nil {
		return true
	}
	if e == nil {
		return false
	}
	if r.IsCombinator() {
		switch r.Combinator {
		case "and":
			for i := range r.Rules {
				if !Match(&r.Rules[i], e, props, now, related) {
					return false
				}
			}
			return true
		case "or":
			for i := range r.Rules {
				if Match(&r.Rules[i], e, props, now, related) {
					return true
				}
			}
		}
		return false
	}
	return r.matchLeaf(e, props, now, related)
}

func (r *Rule) matchLeaf(e *Entity, props map[string]any, now time.Time, related Related) bool {
	if r.Operator == "relatedTo" {
		_, ok := related[r][e.Ref()]
		return ok
	}
	val, found := Lookup(e, props, r.Property)
	switch r.Operator {
	case "isEmpty":
		return !found || queryIsEmpty(val)
	case "isNotEmpty":
		return found && !queryIsEmpty(val)
	case "isExpired", "isNotExpired":
		if !found {
			return false
		}
		t, ok := queryAsTime(val)
		if !ok {
			return false
		}
		return t.Before(now) == (r.Operator == "isExpired")
	case "!=":
		return !found || !queryAny(val, func(x any) bool { return queryEqual(x, r.Value) })
	case "notIn":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		return !found || !queryAny(val, func(x any) bool { return queryIn(x, list) })
	}
	if !found {
		return false
	}
	switch r.Operator {
	case "=":
		return queryAny(val, func(x any) bool { return queryEqual(x, r.Value) })
	case "<", "<=", ">", ">=":
		op := r.Operator
		return queryAny(val, func(x any) bool {
			c, ok := CompareValues(x, r.Value)
			if !ok {
				return false
			}
			switch op {
			case "<":
				return c < 0
			case "<=":
				return c <= 0
			case ">":
				return c > 0
			}
			return c >= 0
		})
	case "between":
		lo, hi, ok := queryBounds(r.Value)
		if !ok {
			return false
		}
		return queryAny(val, func(x any) bool {
			c1, ok1 := CompareValues(x, lo)
			c2, ok2 := CompareValues(x, hi)
			return ok1 && ok2 && c1 >= 0 && c2 <= 0
		})
	case "in":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		return queryAny(val, func(x any) bool { return queryIn(x, list) })
	case "contains":
		return queryContains(val, r.Value)
	case "containsAny":
		list, ok := queryAsList(r.Value)
		if !ok {
			return false
		}
		for _, want := range list {
			if queryContains(val, want) {
				return true
			}
		}
		return false
	case "beginsWith", "endsWith":
		want, ok := r.Value.(string)
		if !ok {
			return false
		}
		has := strings.HasPrefix
		if r.Operator == "endsWith" {
			has = strings.HasSuffix
		}
		return queryAny(val, func(x any) bool {
			s, ok := x.(string)
			return ok && has(s, want)
		})
	}
	return false
}

// Lookup returns the value property names for an entity. Meta-properties:
// $identifier, $title, $blueprint and $datasource are strings, $team is a
// []string, $createdAt and $updatedAt are time.Time (missing when zero).
// Any other name is looked up in props, falling back to e.Relations (a
// string or []string) when props has no such key. Unknown "$" names are
// missing.
func Lookup(e *Entity, props map[string]any, property string) (any, bool) {
	if e == nil {
		return nil, false
	}
	if strings.HasPrefix(property, "$") {
		switch property {
		case "$identifier":
			return e.Identifier, true
		case "$title":
			return e.Title, true
		case "$blueprint":
			return e.Blueprint, true
		case "$team":
			return e.Team, true
		case "$createdAt":
			return e.CreatedAt, !e.CreatedAt.IsZero()
		case "$updatedAt":
			return e.UpdatedAt, !e.UpdatedAt.IsZero()
		case "$datasource":
			return e.Datasource, true
		}
		return nil, false
	}
	if v, ok := props[property]; ok {
		return v, true
	}
	v, ok := e.Relations[property]
	if !ok {
		return nil, false
	}
	if list, isList := v.([]any); isList {
		ids := make([]string, 0, len(list))
		for _, x := range list {
			if s, ok := x.(string); ok && s != "" {
				ids = append(ids, s)
			}
		}
		return ids, true
	}
	return v, true
}

// CompareValues orders two scalar values: -1, 0 or +1, with ok false when
// they are not comparable. Numbers (any Go numeric type) compare as float64,
// strings byte-wise, booleans false < true. A time.Time compares with
// another time.Time or with an RFC 3339 string, as instants truncated to
// milliseconds (the precision the store indexes). Nothing else coerces:
// "2" and 2, or "true" and true, are not comparable.
func CompareValues(a, b any) (int, bool) {
	if ta, ok := a.(time.Time); ok {
		tb, ok := queryAsTime(b)
		if !ok {
			return 0, false
		}
		return queryCompareInstants(ta, tb), true
	}
	if tb, ok := b.(time.Time); ok {
		ta, ok := queryAsTime(a)
		if !ok {
			return 0, false
		}
		return queryCompareInstants(ta, tb), true
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	x, ok := queryNumber(a)
	if !ok {
		return 0, false
	}
	y, ok := queryNumber(b)
	if !ok {
		return 0, false
	}
	switch {
	case x < y:
		return -1, true
	case x > y:
		return 1, true
	case x == y:
		return 0, true
	}
	return 0, false // NaN
}

func queryCompareInstants(a, b time.Time) int {
	x, y := a.UnixMilli(), b.UnixMilli()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func queryEqual(a, b any) bool {
	c, ok := CompareValues(a, b)
	return ok && c == 0
}

func queryIn(x any, list []any) bool {
	for _, y := range list {
		if queryEqual(x, y) {
			return true
		}
	}
	return false
}

// queryAny reports whether pred holds for v or, when v is an array, for any
// of its elements.
func queryAny(v any, pred func(any) bool) bool {
	if list, ok := queryAsList(v); ok {
		for _, x := range list {
			if pred(x) {
				return true
			}
		}
		return false
	}
	return pred(v)
}

func queryContains(v, want any) bool {
	if s, ok := v.(string); ok {
		sub, ok := want.(string)
		return ok && strings.Contains(s, sub)
	}
	list, ok := queryAsList(v)
	if !ok {
		return false
	}
	return queryIn(want, list)
}

// queryBounds returns the two ends of a between value.
func queryBounds(v any) (lo, hi any, ok bool) {
	if m, isMap := v.(map[string]any); isMap {
		lo, ok1 := m["from"]
		hi, ok2 := m["to"]
		return lo, hi, ok1 && ok2
	}
	list, isList := queryAsList(v)
	if !isList || len(list) != 2 {
		return nil, nil, false
	}
	return list[0], list[1], true
}

// queryAsList returns the elements of an array value ([]any, []string or
// any other slice).
func queryAsList(v any) ([]any, bool) {
	switch t := v.(type) {
	case []any:
		return t, true
	case []string:
		out := make([]any, len(t))
		for i, s := range t {
			out[i] = s
		}
		return out, true
	case nil, string, float64, bool, map[string]any:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func queryIsScalar(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	}
	f, ok := queryNumber(v)
	return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func queryNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	case int:
		return float64(t), true
	case int8:
		return float64(t), true
	case int16:
		return float64(t), true
	case int32:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint:
		return float64(t), true
	case uint8:
		return float64(t), true
	case uint16:
		return float64(t), true
	case uint32:
		return float64(t), true
	case uint64:
		return float64(t), true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}

func queryAsTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		ts, err := time.Parse(time.RFC3339, t)
		return ts, err == nil
	}
	return time.Time{}, false
}

func queryIsEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case []string:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	case float64, bool, time.Time:
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	}
	return false
}
