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
	all, changes, err := s.blueprints(ctx, true)
	if err != nil {
		return nil, false, err
	}
	bps := make(map[string]*catalog.Blueprint, len(all))
	for _, bp := range all {
		bps[bp.Identifier] = bp
	}
	related, err := s.resolveRelated(ctx, req.Query, bps, nil)
	if err != nil {
		return nil, false, err
	}
	out := &catalog.Columns{Values: make([][]any, len(req.Fields))}
	for _, bp := range all {
		unset := unsettled(changes[bp.Identifier])
		cols := make([]column, len(req.Fields))
		for f, name := range req.Fields {
			var ok bool
			if cols[f], ok = columnOf(bp, name, unset, req.Computed); !ok {
				return nil, false, nil
			}
		}
		p := &planner{s: s, bp: bp, computed: req.Computed, unsettled: unset, related: related}
		c, err := p.run(ctx, req.Query)
		if err != nil {
			return nil, false, err
		}
		if !c.exact {
			return nil, false, nil
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
	def, ok := bp.Schema.Properties[name]
	if !ok {
		if _, rel := bp.Relations[name]; rel || strings.HasPrefix(name, "scorecards.") {
			return column{}, false // in the documents only
		}
		return column{kind: absentColumn, prop: name}, true
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
	k := s.keys
	set := func(id string, v any) {
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
	}
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
	case numberColumn, timeColumn:
		zs, err := s.rdb.ZRangeWithScores(ctx, k.numIndex(bp, col.prop), 0, -1).Result()
		if err != nil {
			return false, err
		}
		for _, z := range zs {
			m, _ := z.Member.(string)
			if col.kind == timeColumn {
				set(m, time.UnixMilli(int64(z.Score)).UTC())
			} else {
				set(m, z.Score)
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
				set(m[i+1:], m[1:i])
			}
		}
		return true, nil
	}
	var tagged []string
	if col.kind == boolColumn {
		tagged = []string{taggedBool(false), taggedBool(true)}
	} else {
		pipe := s.rdb.Pipeline()
		values := pipe.ZRange(ctx, k.valuesIndex(bp, col.prop), 0, -1)
		long := pipe.SCard(ctx, k.longIndex(bp, col.prop))
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		if long.Val() > 0 {
			return false, nil
		}
		tagged = values.Val()
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(tagged))
	for i, tv := range tagged {
		cmds[i] = pipe.SMembers(ctx, k.eqIndex(bp, col.prop, tv))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, err
	}
	for i, tv := range tagged {
		var v any = tv[1:]
		if col.kind == boolColumn {
			v = tv == taggedBool(true)
		}
		for _, id := range cmds[i].Val() {
			set(id, v)
		}
	}
	return true, nil
}
