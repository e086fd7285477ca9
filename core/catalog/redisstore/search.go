package redisstore

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// Search plans a query per blueprint: index-backed rules (equality, in,
// ranges, prefixes on stored properties and meta-properties, relatedTo)
// select candidates from the secondary indexes in one pipelined round trip;
// every candidate is then checked with the full rule (req.Match), so an index
// only ever narrows. When every rule was answered exactly by an index and the
// sort needs no document, only the requested page is fetched.
func (s *Store) Search(ctx context.Context, req catalog.SearchRequest) (*catalog.SearchResult, error) {
	all, err := s.Blueprints(ctx)
	if err != nil {
		return nil, err
	}
	bps := make(map[string]*catalog.Blueprint, len(all))
	for _, bp := range all {
		bps[bp.Identifier] = bp
	}
	related, err := s.resolveRelated(ctx, req.Query, bps)
	if err != nil {
		return nil, err
	}
	exact := true
	var refs []catalog.Ref
	for _, bp := range all {
		p := &planner{s: s, bp: bp, computed: req.Computed, related: related}
		c, err := p.run(ctx, req.Query)
		if err != nil {
			return nil, err
		}
		ids := c.sorted()
		if c.all {
			if ids, err = s.rdb.ZRange(ctx, s.keys.ids(bp.Identifier), 0, -1).Result(); err != nil {
				return nil, fmt.Errorf("search %s: %w", bp.Identifier, err)
			}
		}
		exact = exact && c.exact
		for _, id := range ids {
			refs = append(refs, catalog.Ref{Blueprint: bp.Identifier, Identifier: id})
		}
	}
	if exact {
		if page, ok, err := s.pageWithoutDocuments(ctx, refs, req, related); ok || err != nil {
			return page, err
		}
	}
	return s.pageWithDocuments(ctx, refs, req, related)
}

// pageWithoutDocuments orders refs by identifier or a numeric meta index and
// fetches only the page. ok is false when the sort needs documents.
func (s *Store) pageWithoutDocuments(ctx context.Context, refs []catalog.Ref, req catalog.SearchRequest, related catalog.Related) (*catalog.SearchResult, bool, error) {
	var desc bool
	var scoreProp string
	switch len(req.Sort) {
	case 0:
	case 1:
		desc = req.Sort[0].Order == "desc"
		switch req.Sort[0].Property {
		case "$identifier":
		case "$createdAt", "$updatedAt":
			scoreProp = req.Sort[0].Property
		default:
			return nil, false, nil
		}
	default:
		return nil, false, nil
	}
	var scores map[catalog.Ref]float64
	if scoreProp != "" {
		var err error
		if scores, err = s.scores(ctx, refs, scoreProp); err != nil {
			return nil, true, err
		}
	}
	sort.SliceStable(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if scores != nil && scores[a] != scores[b] {
			return (scores[a] < scores[b]) != desc
		}
		if scores == nil || a.Identifier != b.Identifier {
			if a.Identifier != b.Identifier {
				return (a.Identifier < b.Identifier) != desc
			}
		}
		return (a.Blueprint < b.Blueprint) != desc
	})
	total := len(refs)
	page := window(refs, req.Offset, req.Limit)
	ents, err := getEntities(ctx, s.rdb, s.keys, page)
	if err != nil {
		return nil, true, err
	}
	out := make([]*catalog.Entity, 0, len(ents))
	for _, e := range ents {
		// An exact plan admits only matching entities; the check guards
		// against an entity deleted between the index read and the fetch.
		if e != nil && req.Match(e, related) {
			out = append(out, e)
		}
	}
	return &catalog.SearchResult{Entities: out, Total: total}, true, nil
}

func (s *Store) scores(ctx context.Context, refs []catalog.Ref, prop string) (map[catalog.Ref]float64, error) {
	byBP := map[string][]string{}
	for _, r := range refs {
		byBP[r.Blueprint] = append(byBP[r.Blueprint], r.Identifier)
	}
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.FloatSliceCmd{}
	for bp, ids := range byBP {
		cmds[bp] = pipe.ZMScore(ctx, s.keys.numIndex(bp, prop), ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("sort by %s: %w", prop, err)
	}
	out := make(map[catalog.Ref]float64, len(refs))
	for bp, ids := range byBP {
		vals := cmds[bp].Val()
		for i, id := range ids {
			if i < len(vals) {
				out[catalog.Ref{Blueprint: bp, Identifier: id}] = vals[i]
			}
		}
	}
	return out, nil
}

// pageWithDocuments fetches every candidate, keeps the matches, sorts and
// pages them.
func (s *Store) pageWithDocuments(ctx context.Context, refs []catalog.Ref, req catalog.SearchRequest, related catalog.Related) (*catalog.SearchResult, error) {
	var matched []*catalog.Entity
	const chunk = 2000
	for start := 0; start < len(refs); start += chunk {
		end := min(start+chunk, len(refs))
		ents, err := getEntities(ctx, s.rdb, s.keys, refs[start:end])
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e != nil && req.Match(e, related) {
				matched = append(matched, e)
			}
		}
	}
	sortEntities(matched, req)
	return &catalog.SearchResult{Entities: window(matched, req.Offset, req.Limit), Total: len(matched)}, nil
}

func sortEntities(ents []*catalog.Entity, req catalog.SearchRequest) {
	value := req.SortValue
	if value == nil {
		value = func(e *catalog.Entity, p string) any { v, _ := catalog.Lookup(e, e.Properties, p); return v }
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		for _, f := range req.Sort {
			va, vb := value(a, f.Property), value(b, f.Property)
			if va == nil && vb == nil {
				continue
			}
			if va == nil || vb == nil {
				return vb == nil // missing values sort last either way
			}
			c, ok := catalog.CompareValues(va, vb)
			if !ok || c == 0 {
				continue
			}
			return (c < 0) != (f.Order == "desc")
		}
		if a.Blueprint != b.Blueprint {
			return a.Blueprint < b.Blueprint
		}
		return a.Identifier < b.Identifier
	})
}

func window[T any](list []T, offset, limit int) []T {
	if offset >= len(list) {
		return nil
	}
	end := len(list)
	if limit > 0 && offset+limit < end {
		end = offset + limit
	}
	return list[offset:end]
}

// resolveRelated walks the graph once for every relatedTo rule in the tree.
func (s *Store) resolveRelated(ctx context.Context, q *catalog.Rule, bps map[string]*catalog.Blueprint) (catalog.Related, error) {
	related := catalog.Related{}
	var err error
	q.Walk(func(r *catalog.Rule) {
		if err != nil || r.IsCombinator() || r.Operator != "relatedTo" {
			return
		}
		var hops []catalog.Hop
		hops, err = catalog.Walk(ctx, s, catalog.Ref{Blueprint: r.Blueprint, Identifier: r.Identifier}, r.Direction, r.Relation, r.Depth, bps)
		set := make(map[catalog.Ref]struct{}, len(hops))
		for _, h := range hops {
			set[h.Ref] = struct{}{}
		}
		related[r] = set
	})
	return related, err
}

// ReferrersOf returns the referrers of many entities in one round trip.
func (s *Store) ReferrersOf(ctx context.Context, refs []catalog.Ref) ([][]catalog.Reference, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(refs))
	for i, r := range refs {
		cmds[i] = pipe.SMembers(ctx, s.keys.referrers(r.Blueprint, r.Identifier))
	}
	if len(refs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("referrers: %w", err)
		}
	}
	out := make([][]catalog.Reference, len(refs))
	for i, c := range cmds {
		out[i] = decodeReferrers(c.Val())
	}
	return out, nil
}

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

// planner evaluates one query against one blueprint's indexes: first every
// indexable leaf queues its lookups on one pipeline, then the tree combines
// the replies.
type planner struct {
	s        *Store
	bp       *catalog.Blueprint
	computed map[string]bool
	related  catalog.Related
	lookups  map[*catalog.Rule]*lookup
}

// lookup is the pending index reads of one leaf; their union is the leaf's
// candidate set.
type lookup struct {
	lex   []*redis.StringSliceCmd // members tag+value+\0+id
	num   []*redis.StringSliceCmd // members id or id\0k
	ids   []*redis.StringSliceCmd // plain identifiers
	long  []*redis.StringSliceCmd // identifiers with over-long string values
	exact bool
}

func (p *planner) run(ctx context.Context, q *catalog.Rule) (candidates, error) {
	p.lookups = map[*catalog.Rule]*lookup{}
	pipe := p.s.rdb.Pipeline()
	queued := false
	q.Walk(func(r *catalog.Rule) {
		if r.IsCombinator() {
			return
		}
		if l := p.queue(ctx, pipe, r); l != nil {
			p.lookups[r] = l
			queued = true
		}
	})
	if queued {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return candidates{}, fmt.Errorf("search %s: %w", p.bp.Identifier, err)
		}
	}
	return p.combine(q), nil
}

func (p *planner) combine(r *catalog.Rule) candidates {
	if !r.IsCombinator() {
		return p.leaf(r)
	}
	if r.Combinator == "or" {
		out := candidates{ids: map[string]struct{}{}, exact: true}
		for i := range r.Rules {
			c := p.combine(&r.Rules[i])
			if c.all {
				return candidates{all: true, exact: c.exact && isTrue(c)}
			}
			out.exact = out.exact && c.exact
			for id := range c.ids {
				out.ids[id] = struct{}{}
			}
		}
		return out
	}
	out := candidates{all: true, exact: true}
	for i := range r.Rules {
		c := p.combine(&r.Rules[i])
		out.exact = out.exact && c.exact
		if c.all {
			continue
		}
		if out.all {
			out = candidates{ids: c.ids, exact: out.exact}
			continue
		}
		for id := range out.ids {
			if _, ok := c.ids[id]; !ok {
				delete(out.ids, id)
			}
		}
	}
	return out
}

// isTrue: an exact "all" is a rule every entity of the blueprint satisfies.
func isTrue(c candidates) bool { return c.all && c.exact }

func (p *planner) leaf(r *catalog.Rule) candidates {
	switch {
	case r.Operator == "relatedTo":
		out := candidates{ids: map[string]struct{}{}, exact: true}
		for ref := range p.related[r] {
			if ref.Blueprint == p.bp.Identifier {
				out.ids[ref.Identifier] = struct{}{}
			}
		}
		return out
	case r.Property == "$blueprint":
		return p.blueprintRule(r)
	}
	l := p.lookups[r]
	if l == nil {
		return candidates{all: true}
	}
	out := candidates{ids: map[string]struct{}{}, exact: l.exact}
	for _, c := range l.lex {
		for _, m := range c.Val() {
			out.ids[idFromLexMember(m)] = struct{}{}
		}
	}
	for _, c := range l.num {
		for _, m := range c.Val() {
			out.ids[idFromNumMember(m)] = struct{}{}
		}
	}
	for _, c := range l.ids {
		for _, m := range c.Val() {
			out.ids[m] = struct{}{}
		}
	}
	for _, c := range l.long {
		for _, m := range c.Val() {
			out.ids[m] = struct{}{}
			out.exact = false
		}
	}
	return out
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

// queue adds the index reads for one leaf to pipe, or returns nil when no
// index can answer it.
func (p *planner) queue(ctx context.Context, pipe redis.Pipeliner, r *catalog.Rule) *lookup {
	propType, ok := p.indexedType(r.Property)
	if !ok {
		return nil
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
		if propType != "array" {
			return nil // substring search: no index
		}
		values = []any{r.Value}
		if op == "containsAny" {
			values, _ = r.Value.([]any)
		}
		op = "="
	case "between":
		from, to, ok := betweenBounds(r.Value)
		if !ok {
			return nil
		}
		l := &lookup{exact: true}
		if !p.queueRange(ctx, pipe, l, r.Property, propType, "between", from, to) {
			return nil
		}
		return l
	default:
		return nil
	}
	l := &lookup{exact: true}
	for _, v := range values {
		if !p.queueRange(ctx, pipe, l, r.Property, propType, op, v, nil) {
			return nil
		}
	}
	return l
}

// indexedType tells how a property is indexed for this blueprint: a
// meta-property, or a stored property declared in the schema (a relation
// or computed property of the same name is not in the property indexes).
func (p *planner) indexedType(prop string) (string, bool) {
	switch prop {
	case "$identifier":
		return "$identifier", true
	case "$title", "$datasource":
		return "string", true
	case "$team":
		return "array", true
	case "$createdAt", "$updatedAt":
		return "time", true
	}
	if p.computed[prop] {
		return "", false
	}
	def, ok := p.bp.Schema.Properties[prop]
	if !ok || def.Type == "object" {
		return "", false
	}
	return def.Type, true
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

// queueRange queues the index read for `prop op v` (for between, v..v2);
// false means no index can answer it.
func (p *planner) queueRange(ctx context.Context, pipe redis.Pipeliner, l *lookup, prop, propType, op string, v, v2 any) bool {
	k := p.s.keys
	bp := p.bp.Identifier
	switch propType {
	case "$identifier":
		min, max, ok := lexRange("", op, v, v2)
		if !ok {
			return false
		}
		l.ids = append(l.ids, pipe.ZRangeByLex(ctx, k.ids(bp), &redis.ZRangeBy{Min: min, Max: max}))
		return true
	case "time":
		lo, ok1 := timeMillis(v)
		hi, ok2 := timeMillis(v2)
		if !ok1 || (op == "between" && !ok2) {
			return false
		}
		min, max, ok := scoreRange(op, lo, hi)
		if !ok {
			return false
		}
		l.num = append(l.num, pipe.ZRangeByScore(ctx, k.numIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max}))
		return true
	}
	switch t := v.(type) {
	case float64:
		hi, ok := v2.(float64)
		if op == "between" && !ok {
			return false
		}
		min, max, ok := scoreRange(op, t, hi)
		if !ok {
			return false
		}
		l.num = append(l.num, pipe.ZRangeByScore(ctx, k.numIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max}))
		return true
	case bool:
		if op != "=" {
			return false
		}
		min, max, _ := lexRange(string(tagBool), "=", strconv.FormatBool(t), nil)
		l.lex = append(l.lex, pipe.ZRangeByLex(ctx, k.lexIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max}))
		return true
	case string:
		min, max, ok := lexRange(string(tagString), op, t, v2)
		if !ok {
			return false
		}
		l.lex = append(l.lex, pipe.ZRangeByLex(ctx, k.lexIndex(bp, prop), &redis.ZRangeBy{Min: min, Max: max}))
		// Values too long for the lex index are candidates for any string
		// rule; the final Match decides.
		l.long = append(l.long, pipe.SMembers(ctx, k.longIndex(bp, prop)))
		if len(t) > maxLexValue {
			l.exact = false
		}
		return true
	}
	return false
}

// lexRange returns ZRANGEBYLEX bounds for `op v` (between: v..v2) over
// members tag+value+\0+id; tag "" is the plain identifier set.
func lexRange(tag, op string, v, v2 any) (string, string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", "", false
	}
	if op == "between" {
		s2, ok := v2.(string)
		if !ok {
			return "", "", false
		}
		lo, _, _ := lexRange(tag, ">=", s, nil)
		_, hi, _ := lexRange(tag, "<=", s2, nil)
		return lo, hi, true
	}
	// In the identifier set a member is the value itself; in a property
	// index it is followed by \0 and the id, so "value ≤ v" is "member < v\1".
	end, after := "", "\x01"
	lowest, highest := "-", "+"
	if tag != "" {
		end = "\x00"
		lowest, highest = "["+tag, "("+string(tag[0]+1)
	} else {
		after = "\x00"
	}
	switch op {
	case "=":
		if tag == "" {
			return "[" + s, "[" + s, true
		}
		return "[" + tag + s + end, "(" + tag + s + after, true
	case "<":
		return lowest, "(" + tag + s + end, true
	case "<=":
		if tag == "" {
			return lowest, "[" + s, true
		}
		return lowest, "(" + tag + s + after, true
	case ">":
		if tag == "" {
			return "(" + s, highest, true
		}
		return "[" + tag + s + after, highest, true
	case ">=":
		return "[" + tag + s + end, highest, true
	case "beginsWith":
		return "[" + tag + s, "(" + tag + s + "\xff", true
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
