package catalog

import (
	"context"
	"fmt"
	"strings"
)

// MaxCascade bounds how many entities one cascading delete removes.
const MaxCascade = 10_000

// DeleteEntity deletes an entity. Entities whose *required* relation points
// at it block the delete (ErrInUse) unless cascade is set, in which case
// they are deleted too, recursively. Optional relations pointing at a
// deleted entity are cleared, so no relation ever dangles. It returns every
// deleted entity, the requested one first. An entity the actor may not
// read is not found; one that depends on the deleted entity blocks it,
// cascade or not, without being named.
func (s *Service) DeleteEntity(ctx context.Context, ref Ref, cascade bool) ([]Ref, error) {
	var deleted []Ref
	err := s.store.Update(ctx, func(tx Tx) error {
		d := &deletion{s: s, tx: tx, cascade: cascade, bps: map[string]*Blueprint{}}
		d.reads = s.newReadChecks(d.blueprint)
		var err error
		deleted, err = d.run(ctx, ref)
		return err
	})
	return deleted, err
}

type deletion struct {
	s       *Service
	tx      Tx
	cascade bool
	bps     map[string]*Blueprint
	reads   *readChecks
}

func (d *deletion) blueprint(ctx context.Context, id string) (*Blueprint, error) {
	if bp, ok := d.bps[id]; ok {
		return bp, nil
	}
	bp, err := d.tx.Blueprint(ctx, id)
	if err != nil {
		return nil, err
	}
	d.bps[id] = bp
	return bp, nil
}

func (d *deletion) run(ctx context.Context, start Ref) ([]Ref, error) {
	if _, err := d.blueprint(ctx, start.Blueprint); err != nil {
		return nil, err
	}
	doomed := map[Ref]*Entity{}
	order := []Ref{start}
	queued := map[Ref]bool{start: true}
	detach := map[Ref]bool{}
	var blockers []string
	unreadable := 0 // blockers the actor may not read
	for i := 0; i < len(order); i++ {
		ref := order[i]
		ents, err := d.tx.Entities(ctx, []Ref{ref})
		if err != nil {
			return nil, err
		}
		hidden, err := d.reads.hidden(ctx, ents[0])
		if err != nil {
			return nil, err
		}
		if ents[0] == nil || hidden {
			if i == 0 {
				return nil, fmt.Errorf("entity %s/%s: %w", ref.Blueprint, ref.Identifier, ErrNotFound)
			}
			if hidden {
				unreadable++
			}
			continue
		}
		doomed[ref] = ents[0]
		refs, err := d.tx.Referrers(ctx, ref)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if _, done := doomed[r.From]; done {
				continue
			}
			bp, err := d.blueprint(ctx, r.From.Blueprint)
			if err != nil {
				return nil, err
			}
			if !bp.Relations[r.Relation].Required {
				detach[r.From] = true
				continue
			}
			if !d.cascade {
				hidden, err := d.hiddenRef(ctx, r.From)
				if err != nil {
					return nil, err
				}
				if hidden {
					unreadable++
				} else {
					blockers = append(blockers, fmt.Sprintf("%s/%s (%s)", r.From.Blueprint, r.From.Identifier, r.Relation))
				}
				continue
			}
			if !queued[r.From] {
				queued[r.From] = true
				order = append(order, r.From)
			}
		}
		if len(order) > MaxCascade {
			return nil, fmt.Errorf("%w: cascade would delete more than %d entities", ErrInUse, MaxCascade)
		}
	}
	switch {
	case unreadable == 1:
		blockers = append(blockers, "1 entity you cannot read")
	case unreadable > 1:
		blockers = append(blockers, fmt.Sprintf("%d entities you cannot read", unreadable))
	}
	switch {
	case unreadable > 0:
		return nil, fmt.Errorf("%w: required relations point at %s/%s from %s; entities you cannot read are not deleted, even with cascade=true",
			ErrInUse, start.Blueprint, start.Identifier, strings.Join(blockers, ", "))
	case len(blockers) > 0:
		return nil, fmt.Errorf("%w: required relations point at %s/%s from %s; delete with cascade=true to delete them too",
			ErrInUse, start.Blueprint, start.Identifier, strings.Join(blockers, ", "))
	}
	if err := d.authorize(ctx, order, doomed); err != nil {
		return nil, err
	}
	if err := d.detach(ctx, detach, doomed); err != nil {
		return nil, err
	}
	var deleted []Ref
	for _, ref := range order {
		e, ok := doomed[ref]
		if !ok {
			continue
		}
		bp, err := d.blueprint(ctx, ref.Blueprint)
		if err != nil {
			return nil, err
		}
		d.tx.DeleteEntity(bp, e, d.s.entityEvent(ctx, EventEntityDeleted, ref))
		markDependents(d.tx, bp, e, nil, DepthFrom(ctx))
		deleted = append(deleted, ref)
	}
	return deleted, nil
}

// hiddenRef reports whether ref names an entity the actor may not read
// (it is read only when its blueprint's reads are filtered).
func (d *deletion) hiddenRef(ctx context.Context, ref Ref) (bool, error) {
	bp, err := d.reads.filteredBlueprint(ctx, ref.Blueprint)
	if bp == nil || err != nil {
		return false, err
	}
	ents, err := d.tx.Entities(ctx, []Ref{ref})
	if err != nil {
		return false, err
	}
	return d.reads.hidden(ctx, ents[0])
}

// detach clears the relations of surviving entities that point at doomed
// ones.
func (d *deletion) detach(ctx context.Context, detach map[Ref]bool, doomed map[Ref]*Entity) error {
	var refs []Ref
	for r := range detach {
		if _, gone := doomed[r]; !gone {
			refs = append(refs, r)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	ents, err := d.tx.Entities(ctx, refs)
	if err != nil {
		return err
	}
	actor := ActorFrom(ctx)
	for _, e := range ents {
		if e == nil {
			continue
		}
		bp, err := d.blueprint(ctx, e.Blueprint)
		if err != nil {
			return err
		}
		after := e.copy()
		for _, name := range after.RelationNames() {
			target := bp.Relations[name].Target
			var keep []string
			for _, id := range after.RelationTargets(name) {
				if _, gone := doomed[Ref{Blueprint: target, Identifier: id}]; !gone {
					keep = append(keep, id)
				}
			}
			switch {
			case bp.Relations[name].Many:
				after.Relations[name] = append([]string{}, keep...)
			case len(keep) == 0:
				delete(after.Relations, name)
			}
		}
		after.UpdatedAt, after.UpdatedBy = changedAt(e, d.s.timestamp()), actor.ID
		d.tx.PutEntity(bp, e, after, d.s.entityEvent(ctx, EventEntityUpdated, e.Ref()))
		markDependents(d.tx, bp, e, after, DepthFrom(ctx))
		if len(bp.Scorecards) > 0 {
			d.tx.MarkDirty(e.Ref(), DepthFrom(ctx)) // regraded without what it pointed at
		}
	}
	return nil
}
