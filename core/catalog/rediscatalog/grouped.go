package rediscatalog

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

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

// groupNumbers adds every entity of blueprint bp to out. The number
// index and the group's sets are read at once on two connections (Redis
// answers one while the other is parsed), and the join goes through
// positions: each entity holding the number gets one, and every group
// member is looked up once.
func (s *Store) groupNumbers(ctx context.Context, bp string, group, num column, out *catalog.GroupedNumbers) (bool, error) {
	var (
		total   int64
		pos     map[string]int32 // entity → its index in nums
		nums    []float64
		members []valueMembers
		none    []string // entities in no group, when the field keeps them
		setsOK  = true
	)
	keepsNone := group.kind != absentColumn && hasNoneIndex(group.prop)
	g, gctx := errgroup.WithContext(ctx)
	if keepsNone {
		g.Go(func() (err error) {
			none, err = s.rdb.SMembers(gctx, s.keys.noneIndex(bp, group.prop)).Result()
			return err
		})
	}
	if !keepsNone { // else the none set says who holds no group value
		g.Go(func() (err error) {
			total, err = s.rdb.ZCard(gctx, s.keys.ids(bp)).Result()
			return err
		})
	}
	if num.kind == numberColumn {
		g.Go(func() error {
			zs, err := s.rdb.ZRangeWithScores(gctx, s.keys.numIndex(bp, num.prop), 0, -1).Result()
			if err != nil {
				return fmt.Errorf("%s.%s: %w", bp, num.prop, err)
			}
			pos, nums = make(map[string]int32, len(zs)), make([]float64, len(zs))
			for i, z := range zs {
				m, _ := z.Member.(string)
				pos[m], nums[i] = int32(i), z.Score
			}
			return nil
		})
	}
	if group.kind != absentColumn {
		g.Go(func() (err error) {
			members, setsOK, err = s.setMembers(gctx, bp, group)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", bp, group.prop, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return false, fmt.Errorf("group %w", err)
	}
	if !setsOK {
		return false, nil
	}
	if keepsNone {
		joinGroups(out, members, none, pos, nums)
		return true, nil
	}
	if total == 0 {
		return true, nil
	}
	grouped := make([]bool, len(nums)) // holds the number and is in a group
	distinct := map[string]struct{}{}  // in a group without the number
	for _, vm := range members {
		if len(vm.ids) == 0 {
			continue
		}
		out.Present[vm.value] = true
		vals := out.Groups[vm.value]
		for _, id := range vm.ids {
			if i, ok := pos[id]; ok {
				vals = append(vals, nums[i])
				grouped[i] = true
			} else {
				distinct[id] = struct{}{}
			}
		}
		out.Groups[vm.value] = vals
	}
	for i, g := range grouped {
		if !g {
			out.Present[nil] = true
			out.Groups[nil] = append(out.Groups[nil], nums[i])
		}
	}
	if int64(len(distinct)+len(nums)) < total {
		out.Present[nil] = true // some entity holds neither
	}
	return true, nil
}

// joinGroups adds each group's numbers to out when the entities in no
// group are known (none): no pass over the entities outside the groups.
func joinGroups(out *catalog.GroupedNumbers, members []valueMembers, none []string, pos map[string]int32, nums []float64) {
	members = append(members, valueMembers{value: nil, ids: none})
	// The lookups of each group go to one of two workers (the map is
	// only read); their numbers are added to out in order after.
	vals := make([][]float64, len(members))
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for g := w; g < len(members); g += 2 {
				var vs []float64
				for _, id := range members[g].ids {
					if i, ok := pos[id]; ok {
						vs = append(vs, nums[i])
					}
				}
				vals[g] = vs
			}
		})
	}
	wg.Wait()
	for g, vm := range members {
		if len(vm.ids) > 0 {
			out.Present[vm.value] = true
			out.Groups[vm.value] = append(out.Groups[vm.value], vals[g]...)
		}
	}
}
