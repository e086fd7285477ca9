package rediscatalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// candidates is what the indexes say about one rule for one blueprint: all
// (no narrowing) or a set of identifiers; exact means the set is precisely
// the matches.
type candidates struct {
	all   bool
	ids   map[string]struct{}
	exact bool
}

func (c candidates) sorted() []string {
	out := make([]string, 0, len(c.ids))
	for id := range c.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// intersect narrows c by d.
func (c candidates) intersect(d candidates) candidates {
	exact := c.exact && d.exact
	switch {
	case d.all:
		c.exact = exact
		return c
	case c.all:
		d.exact = exact
		return d
	}
	small, large := c.ids, d.ids
	if len(large) < len(small) {
		small, large = large, small
	}
	out := make(map[string]struct{}, len(small))
	for id := range small {
		if _, ok := large[id]; ok {
			out[id] = struct{}{}
		}
	}
	// No candidates is an exact answer, whatever was approximate.
	return candidates{ids: out, exact: exact || len(out) == 0}
}

func idSet(ids []string) map[string]struct{} {
	out := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		out[id] = struct{}{}
	}
	return out
}

// errNoIndex: no index answers this rule; the documents will.
var errNoIndex = errors.New("no index for this rule")

// narrowEnough: once an and-node's candidates are this few, its remaining
// rules are checked on the documents instead of read from more indexes.
const narrowEnough = 1000

// planner evaluates one query against one blueprint's indexes. Within an
// and-node, the equality rules are answered together by one SINTER on the
// server; relatedTo sets (resolved beforehand) and nested nodes narrow
// further; range rules are read only while the candidates are still many.
type planner struct {
	s        *Store
	bp       *catalog.Blueprint
	computed map[string]bool
	// unsettled are this blueprint's properties being re-indexed (a
	// backfill in progress): both layouts are read (eitherLayout).
	unsettled map[string]bool
	related   catalog.Related
}

func (p *planner) run(ctx context.Context, q *catalog.Rule) (candidates, error) {
	if !q.IsCombinator() {
		return p.and(ctx, []catalog.Rule{*q}, q)
	}
	if q.Combinator == "or" {
		return p.or(ctx, q.Rules)
	}
	return p.and(ctx, q.Rules, nil)
}

func (p *planner) or(ctx context.Context, rules []catalog.Rule) (candidates, error) {
	out := candidates{ids: map[string]struct{}{}, exact: true}
	for i := range rules {
		c, err := p.run(ctx, &rules[i])
		if err != nil {
			return candidates{}, err
		}
		if c.all {
			return candidates{all: true, exact: c.exact}, nil
		}
		out.exact = out.exact && c.exact
		for id := range c.ids {
			out.ids[id] = struct{}{}
		}
	}
	return out, nil
}

// and plans the conjunction of rules. single is the original leaf when the
// query is one bare rule (so relatedTo lookups find their *Rule key).
func (p *planner) and(ctx context.Context, rules []catalog.Rule, single *catalog.Rule) (candidates, error) {
	out := candidates{all: true, exact: true}
	var eqKeys []string
	var ranged []*catalog.Rule
	for i := range rules {
		r := &rules[i]
		if single != nil {
			r = single
		}
		switch {
		case r.IsCombinator():
			c, err := p.run(ctx, r)
			if err != nil {
				return candidates{}, err
			}
			out = out.intersect(c)
		case r.Operator == "relatedTo" && p.edgeKey(r) != "":
			eqKeys = append(eqKeys, p.edgeKey(r))
		case r.Operator == "relatedTo":
			ids := map[string]struct{}{}
			for ref := range p.related[r] {
				if ref.Blueprint == p.bp.Identifier {
					ids[ref.Identifier] = struct{}{}
				}
			}
			out = out.intersect(candidates{ids: ids, exact: true})
		case metaIndex(r.Property) == catalog.IndexedByBlueprint:
			out = out.intersect(p.blueprintRule(r))
		case p.absent(r):
			out = out.intersect(candidates{ids: map[string]struct{}{}, exact: true})
		default:
			if key, ok := p.eqKey(r); ok {
				eqKeys = append(eqKeys, key)
			} else {
				ranged = append(ranged, r)
			}
		}
	}
	if len(eqKeys) > 0 {
		ids, err := p.s.rdb.SInter(ctx, eqKeys...).Result()
		if err != nil {
			return candidates{}, fmt.Errorf("search %s: %w", p.bp.Identifier, err)
		}
		out = out.intersect(candidates{ids: idSet(ids), exact: true})
	}
	for _, r := range ranged {
		if !out.all && len(out.ids) <= narrowEnough {
			c, ok, err := p.scoreFilter(ctx, r, out.ids)
			if err != nil {
				return candidates{}, err
			}
			if ok {
				out = out.intersect(c)
			} else {
				out.exact = false // the documents will be checked
			}
			continue
		}
		c, err := p.rangeLeaf(ctx, r)
		if err != nil {
			return candidates{}, err
		}
		out = out.intersect(c)
	}
	return out, nil
}

// scoreFilter answers a numeric or time comparison for a few candidates
// by reading their scores (ZMSCORE) rather than the whole range: `tier = 2`
// after `lang = go` reads 40 scores, not every tier-2 entity. ok is false
// when the rule is not such a comparison on a single-valued property.
func (p *planner) scoreFilter(ctx context.Context, r *catalog.Rule, ids map[string]struct{}) (candidates, bool, error) {
	typ, ok := p.indexedType(r.Property)
	if !ok || (typ != "number" && typ != "integer" && typ != "time") || len(ids) == 0 {
		return candidates{}, false, nil
	}
	num := func(v any) (float64, bool) {
		if typ == "time" {
			return timeMillis(v)
		}
		f, ok := v.(float64)
		return f, ok
	}
	var match func(float64) bool
	switch r.Operator {
	case "=", "<", "<=", ">", ">=":
		v, ok := num(r.Value)
		if !ok {
			return candidates{}, false, nil
		}
		match = func(f float64) bool {
			switch r.Operator {
			case "=":
				return f == v
			case "<":
				return f < v
			case "<=":
				return f <= v
			case ">":
				return f > v
			}
			return f >= v
		}
	case "between":
		a, b, ok := betweenBounds(r.Value)
		lo, ok1 := num(a)
		hi, ok2 := num(b)
		if !ok || !ok1 || !ok2 {
			return candidates{}, false, nil
		}
		match = func(f float64) bool { return f >= lo && f <= hi }
	case "in":
		list, _ := r.Value.([]any)
		set := map[float64]bool{}
		for _, x := range list {
			if f, ok := num(x); ok {
				set[f] = true
			}
		}
		match = func(f float64) bool { return set[f] }
	default:
		return candidates{}, false, nil
	}
	list := make([]any, 0, len(ids)+2)
	list = append(list, "ZMSCORE", p.s.keys.numIndex(p.bp.Identifier, r.Property))
	for id := range ids {
		list = append(list, id)
	}
	scores, err := p.s.rdb.Do(ctx, list...).Slice()
	if err != nil {
		return candidates{}, false, fmt.Errorf("search %s.%s: %w", p.bp.Identifier, r.Property, err)
	}
	out := map[string]struct{}{}
	for i, sc := range scores {
		var f float64
		switch t := sc.(type) {
		case float64:
			f = t
		case string:
			if f, err = strconv.ParseFloat(t, 64); err != nil {
				continue
			}
		default:
			continue // no score: no value (or an array property's elements)
		}
		if match(f) {
			out[list[i+2].(string)] = struct{}{}
		}
	}
	return candidates{ids: out, exact: true}, true, nil
}

// edgeKey returns the reverse-index set answering a relatedTo rule for this
// blueprint when one set does: upstream, one hop, exactly one relation of
// this blueprint able to point at the named entity, which is not of this
// blueprint (a walk never returns its start, a set could).
func (p *planner) edgeKey(r *catalog.Rule) string {
	if r.Direction != catalog.Upstream || r.Depth > 1 || r.Blueprint == p.bp.Identifier {
		return ""
	}
	var key string
	for name, rel := range p.bp.Relations {
		if rel.Target != r.Blueprint || (r.Relation != "" && r.Relation != name) {
			continue
		}
		if key != "" {
			return "" // several relations: the walk's union answers it
		}
		key = p.s.keys.referrers(r.Blueprint, r.Identifier, p.bp.Identifier, name)
	}
	return key
}

// metaIndex is how the meta-property prop is indexed (NotIndexed for any
// other name).
func metaIndex(prop string) catalog.MetaIndex {
	m, ok := catalog.LookupMeta(prop)
	if !ok {
		return catalog.NotIndexed
	}
	return m.Index()
}

// blueprintRule answers $blueprint rules without touching Redis.
func (p *planner) blueprintRule(r *catalog.Rule) candidates {
	var in bool
	switch r.Operator {
	case "=", "!=":
		in = r.Value == p.bp.Identifier
	case "in", "notIn":
		list, _ := r.Value.([]any)
		for _, v := range list {
			if v == p.bp.Identifier {
				in = true
			}
		}
	default:
		return candidates{all: true}
	}
	if r.Operator == "!=" || r.Operator == "notIn" {
		in = !in
	}
	if in {
		return candidates{all: true, exact: true}
	}
	return candidates{ids: map[string]struct{}{}, exact: true}
}

// indexedType tells how a property is indexed for this blueprint: a
// meta-property, or a stored property declared in the schema (a relation
// or computed property of the same name is not in the property indexes).
func (p *planner) indexedType(prop string) (string, bool) {
	if m, ok := catalog.LookupMeta(prop); ok {
		switch m.Index() {
		case catalog.IndexedAsIdentifier:
			return "$identifier", true
		case catalog.IndexedAsText, catalog.IndexedAsLabel:
			if m.IsList() {
				return "array", true
			}
			return "string", true
		case catalog.IndexedAsTime:
			return "time", true
		}
		return "", false
	}
	if p.computed[prop] {
		return "", false
	}
	if t, ok := p.bp.DerivedType(prop); ok {
		return t, true
	}
	def, ok := p.bp.Schema.Properties[prop]
	if !ok || def.Type == "object" {
		return "", false
	}
	return def.Type, true
}

// absent reports a rule that no entity of this blueprint can satisfy
// because it names a property the blueprint does not have at all (not
// stored, computed, relation or meta) with an operator that needs a value.
func (p *planner) absent(r *catalog.Rule) bool {
	prop := r.Property
	if strings.HasPrefix(prop, "$") || p.computed[prop] {
		return false
	}
	if _, ok := p.bp.Schema.Properties[prop]; ok {
		return false
	}
	if _, ok := p.bp.Relations[prop]; ok {
		return false
	}
	if _, ok := p.bp.DerivedType(prop); ok {
		return false
	}
	switch r.Operator {
	case "=", "<", "<=", ">", ">=", "in", "contains", "containsAny", "beginsWith", "endsWith", "between", "isNotEmpty", "isExpired", "isNotExpired":
		return true
	}
	return false
}

// eqKey returns the equality set answering r, when r is one equality:
// `= v`, `in [v]`, or `contains v` / `containsAny [v]` on an array, of a
// boolean or a low-cardinality string (numbers are score ranges).
func (p *planner) eqKey(r *catalog.Rule) (string, bool) {
	typ, ok := p.indexedType(r.Property)
	if !ok || typ == "$identifier" || typ == "time" {
		return "", false
	}
	var v any
	switch r.Operator {
	case "=":
		v = r.Value
	case "in", "containsAny":
		list, _ := r.Value.([]any)
		if len(list) != 1 || (r.Operator == "containsAny" && typ != "array") {
			return "", false
		}
		v = list[0]
	case "contains":
		if typ != "array" {
			return "", false
		}
		v = r.Value
	default:
		return "", false
	}
	var tagged string
	switch t := v.(type) {
	case string:
		// High-cardinality values have no set: a range over the pair
		// index; while a backfill moves them, both (stringRange).
		if len(t) > maxIndexedValue || highCardinality(p.bp, r.Property) || p.unsettled[r.Property] {
			return "", false
		}
		tagged = taggedString(t)
	case bool:
		tagged = taggedBool(t)
	default:
		return "", false
	}
	return p.s.keys.eqIndex(p.bp.Identifier, r.Property, tagged), true
}

// rangeLeaf answers a leaf that is not a single equality from the indexes,
// or returns "all" when no index can.
func (p *planner) rangeLeaf(ctx context.Context, r *catalog.Rule) (candidates, error) {
	typ, ok := p.indexedType(r.Property)
	if !ok {
		return candidates{all: true}, nil
	}
	var values []any
	op := r.Operator
	switch op {
	case "=", "<", "<=", ">", ">=", "beginsWith":
		values = []any{r.Value}
	case "in":
		op = "="
		values, _ = r.Value.([]any)
	case "contains", "containsAny":
		if typ != "array" {
			return candidates{all: true}, nil // substring search: no index
		}
		values = []any{r.Value}
		if op == "containsAny" {
			values, _ = r.Value.([]any)
		}
		op = "="
	case "between":
		from, to, ok := betweenBounds(r.Value)
		if !ok {
			return candidates{all: true}, nil
		}
		return p.lookup(ctx, typ, r.Property, "between", from, to)
	default:
		return candidates{all: true}, nil
	}
	out := candidates{ids: map[string]struct{}{}, exact: true}
	for _, v := range values {
		c, err := p.lookup(ctx, typ, r.Property, op, v, nil)
		if err != nil || c.all {
			return c, err
		}
		out.exact = out.exact && c.exact
		for id := range c.ids {
			out.ids[id] = struct{}{}
		}
	}
	return out, nil
}

func betweenBounds(v any) (any, any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t["from"], t["to"], t["from"] != nil && t["to"] != nil
	case []any:
		if len(t) == 2 {
			return t[0], t[1], true
		}
	}
	return nil, nil, false
}

// lookup reads the identifiers for `prop op v` (between: v..v2).
func (p *planner) lookup(ctx context.Context, typ, prop, op string, v, v2 any) (candidates, error) {
	k := p.s.keys
	bp := p.bp.Identifier
	all := candidates{all: true}
	var ids []string
	var err error
	exact := true
	switch {
	case typ == "$identifier":
		min, max, ok := lexRange(op, v, v2)
		if !ok {
			return all, nil
		}
		ids, err = p.s.rdb.ZRangeByLex(ctx, k.ids(bp), &redis.ZRangeBy{Min: min, Max: max}).Result()
	case typ == "time":
		lo, ok1 := timeMillis(v)
		hi, ok2 := timeMillis(v2)
		if !ok1 || (op == "between" && !ok2) {
			return all, nil
		}
		ids, err = p.scoreRange(ctx, k.numIndex(bp, prop), op, lo, hi)
	default:
		switch t := v.(type) {
		case float64:
			hi, ok := v2.(float64)
			if op == "between" && !ok {
				return all, nil
			}
			ids, err = p.scoreRange(ctx, k.numIndex(bp, prop), op, t, hi)
		case bool:
			if op != "=" {
				return all, nil
			}
			ids, err = p.s.rdb.SMembers(ctx, k.eqIndex(bp, prop, taggedBool(t))).Result()
		case string:
			if v2 != nil {
				if _, ok := v2.(string); !ok {
					return all, nil
				}
			}
			ids, exact, err = p.stringRange(ctx, prop, op, t, v2)
		default:
			return all, nil
		}
	}
	if errors.Is(err, errNoIndex) {
		return all, nil
	}
	if err != nil {
		return candidates{}, fmt.Errorf("search %s.%s: %w", bp, prop, err)
	}
	return candidates{ids: idSet(ids), exact: exact}, nil
}

func (p *planner) scoreRange(ctx context.Context, key, op string, lo, hi float64) ([]string, error) {
	min, max, ok := scoreRange(op, lo, hi)
	if !ok {
		return nil, nil
	}
	members, err := p.s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: min, Max: max}).Result()
	for i, m := range members {
		members[i] = idFromNumMember(m)
	}
	return members, err
}

// stringRange picks the matching distinct values from the values index and
// unions their equality sets, plus the over-long values (checked later).
func (p *planner) stringRange(ctx context.Context, prop, op string, v string, v2 any) ([]string, bool, error) {
	if p.unsettled[prop] {
		return p.eitherLayout(ctx, prop, op, v, v2)
	}
	if highCardinality(p.bp, prop) {
		return p.pairRange(ctx, prop, op, v, v2)
	}
	return p.setRange(ctx, prop, op, v, v2)
}

// eitherLayout answers a string rule on a property whose entries a
// backfill is moving between the per-value sets and the pair index: each
// entry is in exactly one of them, and the layout being emptied is read
// first, so an entry moved between the two reads is still seen: the
// union is as exact as each read.
func (p *planner) eitherLayout(ctx context.Context, prop, op, v string, v2 any) ([]string, bool, error) {
	reads := []func(context.Context, string, string, string, any) ([]string, bool, error){p.setRange, p.pairRange}
	if !highCardinality(p.bp, prop) { // moving to sets: pairs first
		reads[0], reads[1] = reads[1], reads[0]
	}
	var ids []string
	exact := true
	for _, read := range reads {
		got, ok, err := read(ctx, prop, op, v, v2)
		if err != nil {
			return nil, false, err
		}
		ids, exact = append(ids, got...), exact && ok
	}
	return ids, exact, nil
}

// setRange answers a string rule from the per-value sets.
func (p *planner) setRange(ctx context.Context, prop, op, v string, v2 any) ([]string, bool, error) {
	k := p.s.keys
	bp := p.bp.Identifier
	tag := string(rune(tagString))
	if op == "=" {
		return p.stringEquals(ctx, prop, v)
	}
	min, max, ok := lexRange(op, tag+v, prefixed(tag, v2))
	if !ok {
		return nil, false, nil
	}
	// Bound the range to string values (tag 's').
	if min == "-" {
		min = "[" + tag
	}
	if max == "+" {
		max = "(" + string(rune(tagString+1))
	}
	values, err := p.s.rdb.ZRangeByLex(ctx, k.valuesIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max}).Result()
	if err != nil {
		return nil, false, err
	}
	keys := make([]string, 0, len(values)+1)
	for _, tv := range values {
		keys = append(keys, k.eqIndex(bp, prop, tv))
	}
	keys = append(keys, k.longIndex(bp, prop))
	ids, err := p.s.rdb.SUnion(ctx, keys...).Result()
	if err != nil {
		return nil, false, err
	}
	long, err := p.s.rdb.SCard(ctx, k.longIndex(bp, prop)).Result()
	return ids, long == 0 && len(v) <= maxIndexedValue, err
}

// stringEquals reads the equality set of one string value, plus the
// over-long values (checked later), in one round trip.
func (p *planner) stringEquals(ctx context.Context, prop, v string) ([]string, bool, error) {
	k := p.s.keys
	bp := p.bp.Identifier
	pipe := p.s.rdb.Pipeline()
	ids := pipe.SUnion(ctx, k.eqIndex(bp, prop, taggedString(v)), k.longIndex(bp, prop))
	long := pipe.SCard(ctx, k.longIndex(bp, prop))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, err
	}
	return ids.Val(), long.Val() == 0 && len(v) <= maxIndexedValue, nil
}

// pairRange answers `op v` (between: v..v2) over a high-cardinality
// property's pair index, plus the over-long values (checked later), in one
// round trip.
func (p *planner) pairRange(ctx context.Context, prop, op, v string, v2 any) ([]string, bool, error) {
	hi, _ := v2.(string)
	if strings.IndexByte(v, 0) >= 0 || strings.IndexByte(hi, 0) >= 0 {
		return nil, false, errNoIndex // NUL values are not pair-indexed
	}
	min, max, ok := pairBounds(op, v, hi)
	if !ok {
		return nil, false, errNoIndex
	}
	k := p.s.keys
	bp := p.bp.Identifier
	pipe := p.s.rdb.Pipeline()
	members := pipe.ZRangeByLex(ctx, k.pairIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max})
	long := pipe.SMembers(ctx, k.longIndex(bp, prop))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, err
	}
	ids := make([]string, 0, len(members.Val())+len(long.Val()))
	for _, m := range members.Val() {
		ids = append(ids, idFromPairMember(m))
	}
	ids = append(ids, long.Val()...)
	return ids, len(long.Val()) == 0 && len(v) <= maxIndexedValue && len(hi) <= maxIndexedValue, nil
}

// pairBounds returns ZRANGEBYLEX bounds over pair members (s<value>\x00<id>)
// for values `op v` (between: v..hi). A value w sorts before v exactly when
// "s"+w+"\x00" sorts before "s"+v+"\x00", as values hold no NUL.
func pairBounds(op, v, hi string) (min, max string, ok bool) {
	const tag = string(rune(tagString))
	const anyString, noString = "[" + tag, "(" + string(rune(tagString+1))
	at := func(s string) string { return tag + s + "\x00" }    // first member of value s
	after := func(s string) string { return tag + s + "\x01" } // past every member of s
	switch op {
	case "=":
		return "[" + at(v), "(" + after(v), true
	case "<":
		return anyString, "(" + at(v), true
	case "<=":
		return anyString, "(" + after(v), true
	case ">":
		return "[" + after(v), noString, true
	case ">=":
		return "[" + at(v), noString, true
	case "beginsWith":
		return "[" + tag + v, "(" + tag + v + "\xff", true
	case "between":
		return "[" + at(v), "(" + after(hi), true
	}
	return "", "", false
}

func prefixed(tag string, v any) any {
	if s, ok := v.(string); ok {
		return tag + s
	}
	return v
}

// lexRange returns ZRANGEBYLEX bounds for `op v` (between: v..v2) over a
// zset whose members are the values themselves.
func lexRange(op string, v, v2 any) (string, string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", "", false
	}
	switch op {
	case "=":
		return "[" + s, "[" + s, true
	case "<":
		return "-", "(" + s, true
	case "<=":
		return "-", "[" + s, true
	case ">":
		return "(" + s, "+", true
	case ">=":
		return "[" + s, "+", true
	case "beginsWith":
		return "[" + s, "(" + s + "\xff", true
	case "between":
		s2, ok := v2.(string)
		if !ok {
			return "", "", false
		}
		return "[" + s, "[" + s2, true
	}
	return "", "", false
}

// scoreRange returns ZRANGEBYSCORE bounds for `op v` (between: v..v2).
func scoreRange(op string, v, v2 float64) (string, string, bool) {
	if math.IsInf(v, 0) || math.IsNaN(v) || math.IsInf(v2, 0) || math.IsNaN(v2) {
		return "", "", false
	}
	f := strconv.FormatFloat(v, 'g', -1, 64)
	switch op {
	case "=":
		return f, f, true
	case "<":
		return "-inf", "(" + f, true
	case "<=":
		return "-inf", f, true
	case ">":
		return "(" + f, "+inf", true
	case ">=":
		return f, "+inf", true
	case "between":
		return f, strconv.FormatFloat(v2, 'g', -1, 64), true
	}
	return "", "", false
}

func timeMillis(v any) (float64, bool) {
	switch t := v.(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return 0, false
		}
		return float64(ts.UnixMilli()), true
	case float64:
		return t, true
	}
	return 0, false
}
