package rediscatalog

import (
	"context"
	"fmt"
	"math"

	"github.com/portico-dev/portico/core/catalog"
)

// GroupedNumbers answers "a number property of every entity of whole
// blueprints, by the values of a field held in equality sets" ($team, a
// low-cardinality string, a boolean) from two indexes: the property's
// score index (read once into a map) and the field's sets (each member
// looked up in it). Rows are never materialised: an average by team over
// 100,000 entities is one pass over each index. ok is false unless the
// query selects whole blueprints exactly and both fields are indexed so.
func (s *Store) GroupedNumbers(ctx context.Context, req catalog.ColumnsRequest) (*catalog.GroupedNumbers, bool, error) {
	if len(req.Fields) != 2 {
		return nil, false, nil
	}
	sc, err := s.scopeOf(ctx, req.Query, nil)
	if err != nil {
		return nil, false, err
	}
	out := &catalog.GroupedNumbers{Groups: map[any][]float64{}, Present: map[any]bool{}}
	for _, bp := range sc.all {
		unset := unsettled(sc.changes[bp.Identifier])
		group, ok := columnOf(bp, req.Fields[0], unset, req.Computed)
		if !ok || (group.kind != setsColumn && group.kind != boolColumn && group.kind != absentColumn) {
			return nil, false, nil
		}
		num, ok := columnOf(bp, req.Fields[1], unset, req.Computed)
		if !ok || (num.kind != numberColumn && num.kind != absentColumn) {
			return nil, false, nil
		}
		p := sc.planner(s, bp, req.Computed)
		c, err := p.run(ctx, req.Query)
		if err != nil {
			return nil, false, err
		}
		switch {
		case !c.exact:
			return nil, false, nil
		case !c.all && len(c.sorted()) == 0:
			continue // none of this blueprint matches
		case !c.all:
			return nil, false, nil
		}
		if ok, err := s.groupNumbers(ctx, bp.Identifier, group, num, out); err != nil || !ok {
			return nil, ok, err
		}
	}
	return out, true, nil
}

// groupNumbers adds every entity of blueprint bp to out.
func (s *Store) groupNumbers(ctx context.Context, bp string, group, num column, out *catalog.GroupedNumbers) (bool, error) {
	total, err := s.rdb.ZCard(ctx, s.keys.ids(bp)).Result()
	if err != nil {
		return false, fmt.Errorf("group %s: %w", bp, err)
	}
	if total == 0 {
		return true, nil
	}
	// entry is an entity holding the number or a group value: its number
	// (NaN: none) and whether it is in some group.
	type entry struct {
		num     float64
		grouped bool
	}
	seen := make(map[string]entry, total)
	if num.kind == numberColumn {
		if _, err := s.scanColumn(ctx, bp, num, func(id string, v any) {
			seen[id] = entry{num: v.(float64)}
		}); err != nil {
			return false, fmt.Errorf("group %s.%s: %w", bp, num.prop, err)
		}
	}
	if group.kind != absentColumn {
		present := map[any][]float64{}
		ok, err := s.scanColumn(ctx, bp, group, func(id string, v any) {
			e, found := seen[id]
			if !found {
				e.num = math.NaN()
			}
			if !e.grouped {
				e.grouped = true
				seen[id] = e
			}
			if !math.IsNaN(e.num) {
				present[v] = append(present[v], e.num)
			} else if _, ok := present[v]; !ok {
				present[v] = nil
			}
		})
		for v, nums := range present {
			out.Present[v] = true
			out.Groups[v] = append(out.Groups[v], nums...)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	if int64(len(seen)) < total {
		out.Present[nil] = true // some entity holds neither
	}
	for _, e := range seen {
		if e.grouped {
			continue
		}
		out.Present[nil] = true
		if !math.IsNaN(e.num) {
			out.Groups[nil] = append(out.Groups[nil], e.num)
		}
	}
	return true, nil
}
