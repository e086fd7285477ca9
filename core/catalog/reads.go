package catalog

import (
	"context"
	"fmt"
)

// GetEntity returns one entity with its computed properties.
// An entity the actor may not read is reported as not found.
func (s *Service) GetEntity(ctx context.Context, ref Ref) (*Entity, error) {
	bp, err := s.store.Blueprint(ctx, ref.Blueprint)
	if err != nil {
		return nil, err
	}
	ents, err := s.store.Entities(ctx, []Ref{ref})
	if err != nil {
		return nil, err
	}
	if ents[0] == nil || !s.newReadFilter(ctx, map[string]*Blueprint{bp.Identifier: bp}).allows(ents[0]) {
		return nil, fmt.Errorf("entity %s/%s: %w", ref.Blueprint, ref.Identifier, ErrNotFound)
	}
	return s.decorateOne(ctx, ents[0])
}

// EntityPage is one page of a blueprint's entities.
type EntityPage struct {
	Entities []*Entity
	Next     string // identifier to continue after; "" at the end
	Total    int
}

// ListEntities pages through a blueprint's entities in identifier order
// (limit ≤ 0 means DefaultSearchLimit). Entities the actor may not read
// are left out, also from the total.
func (s *Service) ListEntities(ctx context.Context, bp, after string, limit int) (*EntityPage, error) {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	def, err := s.store.Blueprint(ctx, bp)
	if err != nil {
		return nil, err
	}
	if f := s.newReadFilter(ctx, map[string]*Blueprint{bp: def}); f != nil {
		return s.listFiltered(ctx, f, bp, after, limit)
	}
	ids, total, err := s.store.EntityIDs(ctx, bp, after, limit+1)
	if err != nil {
		return nil, err
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	ents, err := s.entitiesOf(ctx, bp, ids)
	if err != nil {
		return nil, err
	}
	ents = compact(ents)
	if err := s.decorate(ctx, ents); err != nil {
		return nil, err
	}
	return &EntityPage{Entities: ents, Next: next, Total: total}, nil
}

func compact(ents []*Entity) []*Entity {
	out := ents[:0]
	for _, e := range ents {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

func (s *Service) decorateOne(ctx context.Context, e *Entity) (*Entity, error) {
	if err := s.decorate(ctx, []*Entity{e}); err != nil {
		return nil, err
	}
	return e, nil
}

// decorate adds mirror and calculation properties to entities in place
// (mirrors first, so calculations can read them). Mirror targets are read
// in one batch; a mirror reads only targets the actor may read (the value
// of a hidden one is null, or left out of a many relation's list).
func (s *Service) decorate(ctx context.Context, ents []*Entity) error {
	return s.decorateWith(ctx, ents, map[string]*Blueprint{})
}

// decorateWith is decorate with bps holding blueprints already read; it
// adds those it reads.
func (s *Service) decorateWith(ctx context.Context, ents []*Entity, bps map[string]*Blueprint) error {
	if len(ents) == 0 {
		return nil
	}
	compiled := map[string]*CompiledBlueprint{}
	for _, e := range ents {
		if _, ok := compiled[e.Blueprint]; ok {
			continue
		}
		bp, err := s.blueprintIn(ctx, bps, e.Blueprint)
		if err != nil {
			return err
		}
		if compiled[e.Blueprint], err = s.compile(bp); err != nil {
			return err
		}
	}
	mirrored, err := s.mirrorTargets(ctx, ents, compiled, bps)
	if err != nil {
		return err
	}
	for _, e := range ents {
		c := compiled[e.Blueprint]
		for _, m := range c.Mirrors() {
			if e.Properties == nil {
				e.Properties = map[string]any{}
			}
			e.Properties[m.Name] = mirrorValue(e, m, c.Blueprint, mirrored)
		}
		for name, v := range c.Calculate(e) {
			if e.Properties == nil {
				e.Properties = map[string]any{}
			}
			e.Properties[name] = v
		}
		showAggregations(c, e)
	}
	return nil
}

// showAggregations moves the stored values of the blueprint's aggregation
// properties among the properties, as reads show them (a value not
// computed yet reads as null).
func showAggregations(c *CompiledBlueprint, e *Entity) {
	for _, a := range c.aggregations {
		if e.Properties == nil {
			e.Properties = map[string]any{}
		}
		e.Properties[a.name] = e.Aggregations[a.name]
	}
	e.Aggregations = nil
}

// blueprintIn returns a blueprint from bps, reading (and adding) it when
// missing.
func (s *Service) blueprintIn(ctx context.Context, bps map[string]*Blueprint, id string) (*Blueprint, error) {
	if bp, ok := bps[id]; ok {
		return bp, nil
	}
	bp, err := s.store.Blueprint(ctx, id)
	if err != nil {
		return nil, err
	}
	bps[id] = bp
	return bp, nil
}

// mirrorTargets reads the entities ents' mirrors read, leaving out those
// the actor may not read.
func (s *Service) mirrorTargets(ctx context.Context, ents []*Entity, compiled map[string]*CompiledBlueprint, bps map[string]*Blueprint) (map[Ref]*Entity, error) {
	var refs []Ref
	seen := map[Ref]bool{}
	for _, e := range ents {
		c := compiled[e.Blueprint]
		for _, m := range c.Mirrors() {
			target := c.Blueprint.Relations[m.Relation].Target
			for _, id := range e.RelationTargets(m.Relation) {
				r := Ref{Blueprint: target, Identifier: id}
				if !seen[r] {
					seen[r] = true
					refs = append(refs, r)
				}
			}
		}
	}
	out := map[Ref]*Entity{}
	if len(refs) == 0 {
		return out, nil
	}
	got, err := s.store.Entities(ctx, refs)
	if err != nil {
		return nil, err
	}
	var targets map[string]*Blueprint
	if s.authz != nil {
		targets = map[string]*Blueprint{}
		for i, e := range got {
			if e == nil || targets[refs[i].Blueprint] != nil {
				continue
			}
			if targets[refs[i].Blueprint], err = s.blueprintIn(ctx, bps, refs[i].Blueprint); err != nil {
				return nil, err
			}
		}
	}
	f := s.newReadFilter(ctx, targets)
	for i, e := range got {
		if e != nil && f.allows(e) {
			out[refs[i]] = e
		}
	}
	return out, nil
}

// mirrorValue reads m through e's relation: one value for a single
// relation, a list for a many relation.
func mirrorValue(e *Entity, m Mirror, bp *Blueprint, targets map[Ref]*Entity) any {
	rel := bp.Relations[m.Relation]
	var vals []any
	for _, id := range e.RelationTargets(m.Relation) {
		t := targets[Ref{Blueprint: rel.Target, Identifier: id}]
		if t == nil {
			continue
		}
		v, ok := Lookup(t, t.Properties, m.Property)
		if !ok {
			v = nil
		}
		vals = append(vals, v)
	}
	if rel.Many {
		if vals == nil {
			return []any{}
		}
		return vals
	}
	if len(vals) == 0 {
		return nil
	}
	return vals[0]
}

// entitiesOf reads entities of blueprint bp by identifier, nil where one
// is missing.
func (s *Service) entitiesOf(ctx context.Context, bp string, ids []string) ([]*Entity, error) {
	refs := make([]Ref, len(ids))
	for i, id := range ids {
		refs[i] = Ref{Blueprint: bp, Identifier: id}
	}
	return s.store.Entities(ctx, refs)
}
