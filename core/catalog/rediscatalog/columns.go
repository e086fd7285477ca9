package rediscatalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// Columns answers an aggregate's reads from the secondary indexes: the
// query's candidates from the planner (when its plan is exact), each
// field's values from its index — the per-value sets of a low-cardinality
// string, boolean or label ($team, $datasource), the pair index of a
// high-cardinality string, the score index of a number or a time. No
// document is read: an aggregate over 100,000 entities reads a few sets
// and zsets instead of 100,000 documents.
func (s *Store) Columns(ctx context.Context, req catalog.ColumnsRequest) (*catalog.Columns, bool, error) {
	sc, err := s.scopeOf(ctx, req.Query, nil)
	if err != nil {
		return nil, false, err
	}
	out := &catalog.Columns{Values: make([][]any, len(req.Fields))}
	for _, bp := range sc.all {
		unset := unsettled(sc.changes[bp.Identifier])
		cols := make([]column, len(req.Fields))
		for f, name := range req.Fields {
			var ok bool
			if cols[f], ok = columnOf(bp, name, unset, req.Computed); !ok {
				return nil, false, nil
			}
		}
		p := sc.planner(s, bp, req.Computed)
		c, err := p.run(ctx, req.Query)
		if err != nil {
			return nil, false, err
		}
		if !c.exact {
			return nil, false, nil
		}
		if req.CountOnly && len(cols) <= 1 {
			var col *column
			if len(cols) == 1 {
				col = &cols[0]
			}
			if ok, err := s.countRows(ctx, bp.Identifier, col, c, out); err != nil || ok {
				if err != nil {
					return nil, false, fmt.Errorf("aggregate %s: %w", bp.Identifier, err)
				}
				continue
			}
		}
		ids := c.sorted()
		if c.all {
			if ids, err = s.rdb.ZRange(ctx, s.keys.ids(bp.Identifier), 0, -1).Result(); err != nil {
				return nil, false, fmt.Errorf("aggregate %s: %w", bp.Identifier, err)
			}
		}
		if len(ids) == 0 {
			continue
		}
		rows := make(map[string]int, len(ids))
		for i, id := range ids {
			rows[id] = i
			out.Refs = append(out.Refs, catalog.Ref{Blueprint: bp.Identifier, Identifier: id})
		}
		for f, col := range cols {
			vals := make([]any, len(ids))
			ok, err := s.readColumn(ctx, bp.Identifier, col, ids, rows, vals)
			if err != nil {
				return nil, false, fmt.Errorf("aggregate %s.%s: %w", bp.Identifier, col.prop, err)
			}
			if !ok {
				return nil, false, nil
			}
			out.Values[f] = append(out.Values[f], vals...)
		}
	}
	return out, true, nil
}

// columnKind is the index a field's values are read from.
type columnKind uint8

const (
	absentColumn     columnKind = iota // no entity of the blueprint has it
	identifierColumn                   // $identifier
	blueprintColumn                    // $blueprint
	setsColumn                         // per-value sets of strings (values index)
	boolColumn                         // per-value sets of true and false
	pairColumn                         // pair index
	numberColumn                       // score index of numbers
	timeColumn                         // score index of milliseconds
)

// column is how one field of a blueprint is read; list fields give each
// entity a []any of its (distinct) values.
type column struct {
	kind columnKind
	prop string
	list bool
}

// columnOf says how to read field name of bp from its indexes; ok is
// false when they do not hold it exactly.
func columnOf(bp *catalog.Blueprint, name string, unset, computed map[string]bool) (column, bool) {
	if unset[name] || computed[name] {
		return column{}, false
	}
	if m, ok := catalog.LookupMeta(name); ok {
		switch m.Index() {
		case catalog.IndexedAsIdentifier:
			return column{kind: identifierColumn, prop: name}, true
		case catalog.IndexedByBlueprint:
			return column{kind: blueprintColumn, prop: name}, true
		case catalog.IndexedAsLabel:
			return column{kind: setsColumn, prop: name, list: m.IsList()}, true
		case catalog.IndexedAsText:
			return column{kind: pairColumn, prop: name}, true
		case catalog.IndexedAsTime:
			return column{kind: timeColumn, prop: name}, true
		}
		return column{}, false
	}
	if typ, ok := bp.DerivedType(name); ok { // indexed like properties
		if typ == "number" {
			return column{kind: numberColumn, prop: name}, true
		}
		return column{kind: setsColumn, prop: name}, true
	}
	def, ok := bp.Schema.Properties[name]
	if !ok {
		if _, rel := bp.Relations[name]; rel {
			return column{}, false // in the documents only
		}
		return column{kind: absentColumn, prop: name}, true // a scorecard of other blueprints too
	}
	typ, list := def.Type, false
	if typ == "array" {
		if def.Items == nil {
			return column{}, false
		}
		typ, list = def.Items.Type, true
	}
	switch typ {
	case "string":
		if def.HighCardinality() {
			return column{kind: pairColumn, prop: name, list: list}, true
		}
		return column{kind: setsColumn, prop: name, list: list}, true
	case "boolean":
		return column{kind: boolColumn, prop: name, list: list}, true
	case "number", "integer":
		if !list { // array elements' scores lose their order and duplicates
			return column{kind: numberColumn, prop: name}, true
		}
	}
	return column{}, false
}

// readColumn fills vals (by rows) with col's values for the blueprint's
// entities ids; ok is false when some value is not indexed (too long).
func (s *Store) readColumn(ctx context.Context, bp string, col column, ids []string, rows map[string]int, vals []any) (bool, error) {
	switch col.kind {
	case absentColumn:
		return true, nil
	case identifierColumn:
		for i, id := range ids {
			vals[i] = id
		}
		return true, nil
	case blueprintColumn:
		for i := range ids {
			vals[i] = bp
		}
		return true, nil
	}
	return s.scanColumn(ctx, bp, col, func(id string, v any) {
		r, ok := rows[id]
		if !ok {
			return // not a match (or written since the candidates were read)
		}
		if !col.list {
			vals[r] = v
			return
		}
		list, _ := vals[r].([]any)
		vals[r] = append(list, v)
	})
}

// scanColumn calls fn with every (identifier, value) pair col's index
// holds (each element of a list); ok is false when some value is not
// indexed (too long).
func (s *Store) scanColumn(ctx context.Context, bp string, col column, fn func(id string, v any)) (bool, error) {
	k := s.keys
	switch col.kind {
	case numberColumn, timeColumn:
		zs, err := s.rdb.ZRangeWithScores(ctx, k.numIndex(bp, col.prop), 0, -1).Result()
		if err != nil {
			return false, err
		}
		for _, z := range zs {
			m, _ := z.Member.(string)
			if col.kind == timeColumn {
				fn(m, time.UnixMilli(int64(z.Score)).UTC())
			} else {
				fn(m, z.Score)
			}
		}
		return true, nil
	case pairColumn:
		pipe := s.rdb.Pipeline()
		members := pipe.ZRange(ctx, k.pairIndex(bp, col.prop), 0, -1)
		long := pipe.SCard(ctx, k.longIndex(bp, col.prop))
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		if long.Val() > 0 {
			return false, nil
		}
		for _, m := range members.Val() {
			if i := strings.IndexByte(m, 0); i > 0 {
				fn(m[i+1:], m[1:i])
			}
		}
		return true, nil
	}
	members, ok, err := s.setMembers(ctx, bp, col)
	if !ok || err != nil {
		return false, err
	}
	for _, vm := range members {
		for _, id := range vm.ids {
			fn(id, vm.value)
		}
	}
	return true, nil
}

// valueMembers is one value of a sets or bool column and the entities
// holding it.
type valueMembers struct {
	value any
	ids   []string
}

// setMembers reads every equality set of a sets or bool column; ok is
// false when some value is too long for one.
func (s *Store) setMembers(ctx context.Context, bp string, col column) ([]valueMembers, bool, error) {
	tagged, ok, err := s.setValues(ctx, bp, col)
	if !ok || err != nil {
		return nil, ok, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(tagged))
	for i, tv := range tagged {
		cmds[i] = pipe.SMembers(ctx, s.keys.eqIndex(bp, col.prop, tv))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, err
	}
	out := make([]valueMembers, len(tagged))
	for i, tv := range tagged {
		out[i] = valueMembers{value: untag(tv), ids: cmds[i].Val()}
	}
	return out, true, nil
}

// setValues lists the tagged values with an equality set of a sets or
// bool column; ok is false when some value is too long for one.
func (s *Store) setValues(ctx context.Context, bp string, col column) ([]string, bool, error) {
	if col.kind == boolColumn {
		return []string{taggedBool(false), taggedBool(true)}, true, nil
	}
	pipe := s.rdb.Pipeline()
	values := pipe.ZRange(ctx, s.keys.valuesIndex(bp, col.prop), 0, -1)
	long := pipe.SCard(ctx, s.keys.longIndex(bp, col.prop))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, err
	}
	return values.Val(), long.Val() == 0, nil
}

// untag is the value of a tagged string or boolean.
func untag(tv string) any {
	switch tv {
	case taggedBool(true):
		return true
	case taggedBool(false):
		return false
	}
	return tv[1:]
}

// countRows appends to out weighted rows of the blueprint's matching
// entities (c): one per value of col (nil: no field) with the number of
// entities holding it, and one for those holding none. Equality sets
// answer by their cardinalities when every entity matches. ok is false
// when col is not counted this way.
func (s *Store) countRows(ctx context.Context, bp string, col *column, c candidates, out *catalog.Columns) (bool, error) {
	k := s.keys
	total := len(c.ids)
	if c.all {
		n, err := s.rdb.ZCard(ctx, k.ids(bp)).Result()
		if err != nil {
			return false, err
		}
		total = int(n)
	}
	add := func(v any, w int) {
		if w <= 0 {
			return
		}
		out.Refs = append(out.Refs, catalog.Ref{Blueprint: bp})
		out.Weights = append(out.Weights, w)
		if col != nil {
			out.Values[0] = append(out.Values[0], v)
		}
	}
	if col == nil || col.kind == absentColumn {
		add(nil, total)
		return true, nil
	}
	switch col.kind {
	case identifierColumn:
		return false, nil
	case blueprintColumn:
		add(bp, total)
		return true, nil
	case setsColumn, boolColumn:
		if !c.all {
			break
		}
		tagged, ok, err := s.setValues(ctx, bp, *col)
		if !ok || err != nil {
			return false, err
		}
		keys := make([]string, len(tagged))
		pipe := s.rdb.Pipeline()
		cards := make([]*redis.IntCmd, len(tagged))
		for i, tv := range tagged {
			keys[i] = k.eqIndex(bp, col.prop, tv)
			cards[i] = pipe.SCard(ctx, keys[i])
		}
		// An entity holding several values is in several sets: how
		// many hold none is the size of the none set where there is
		// one ($team), else total minus the size of their union,
		// counted on the server in a scratch key (returning it would
		// cost a member per entity).
		var union, none *redis.IntCmd
		if hasNoneIndex(col.prop) {
			none = pipe.SCard(ctx, k.noneIndex(bp, col.prop))
		} else if col.list && len(keys) > 0 {
			scratch := k.scratch()
			pipe.SUnionStore(ctx, scratch, keys...)
			pipe.PExpire(ctx, scratch, time.Minute) // should the process die here
			union = pipe.SCard(ctx, scratch)
			pipe.Unlink(ctx, scratch)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		holding := 0
		for i, tv := range tagged {
			add(untag(tv), int(cards[i].Val()))
			holding += int(cards[i].Val())
		}
		switch {
		case none != nil:
			holding = total - int(none.Val())
		case union != nil:
			holding = int(union.Val())
		}
		add(nil, total-holding)
		return true, nil
	}
	counts := map[any]int{}
	holders := map[string]struct{}{}
	holding := 0
	ok, err := s.scanColumn(ctx, bp, *col, func(id string, v any) {
		if !c.all {
			if _, in := c.ids[id]; !in {
				return
			}
		}
		switch {
		case col.list:
			counts[v]++
			holders[id] = struct{}{}
		case col.kind == pairColumn:
			add(v, 1) // nearly one value per entity: no use counting
			holding++
		default:
			counts[v]++
			holding++
		}
	})
	if !ok || err != nil {
		return false, err
	}
	for v, n := range counts {
		add(v, n)
	}
	if col.list {
		holding = len(holders)
	}
	add(nil, total-holding)
	return true, nil
}
