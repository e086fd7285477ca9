package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// GetBlueprint returns one blueprint, with its change in progress.
func (s *Service) GetBlueprint(ctx context.Context, id string) (*Blueprint, error) {
	bp, err := s.store.Blueprint(ctx, id)
	if err != nil {
		return nil, err
	}
	if bp.Change, err = s.changeStatus(ctx, id); err != nil {
		return nil, err
	}
	return bp, nil
}

// ListBlueprints returns every blueprint ordered by identifier, with their
// changes in progress.
func (s *Service) ListBlueprints(ctx context.Context) ([]*Blueprint, error) {
	bps, err := s.store.Blueprints(ctx)
	if err != nil {
		return nil, err
	}
	changing, err := s.store.Changes(ctx)
	if err != nil || len(changing) == 0 {
		return bps, err
	}
	for _, bp := range bps {
		if slices.Contains(changing, bp.Identifier) {
			if bp.Change, err = s.changeStatus(ctx, bp.Identifier); err != nil {
				return nil, err
			}
		}
	}
	return bps, nil
}

// PutBlueprint creates or replaces a blueprint. With create set, an existing
// blueprint is ErrAlreadyExists. It reports whether the blueprint was
// created.
//
// A replacement touches stored entities only as far as it must (see
// changes.go): one that no stored entity can fail is applied at once; one
// that some could fail is first checked against every stored entity,
// streaming, and refused with the offenders listed (nothing changes) or
// applied; one that moves an index layout is applied at once and the
// indexes are backfilled in the background (RunChanges).
func (s *Service) PutBlueprint(ctx context.Context, in *Blueprint, create bool) (*Blueprint, bool, error) {
	if err := s.authorizeBlueprint(ctx, OpPut, in); err != nil {
		return nil, false, err
	}
	compiled, err := CompileBlueprint(in)
	if err != nil {
		return nil, false, err
	}
	if err := compiled.checkCalculations(); err != nil {
		return nil, false, err
	}
	in.Change = nil
	in.Scorecards = nil // managed by PutScorecard: the stored ones are kept
	if err := s.abandonStale(ctx, in.Identifier); err != nil {
		return nil, false, err
	}
	var out, old *Blueprint
	var created bool
	var pending *BlueprintChange
	err = s.store.Update(ctx, func(tx Tx) error {
		out, old, created, pending = nil, nil, false, nil
		existing, err := tx.Blueprint(ctx, in.Identifier)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if existing != nil && create {
			return fmt.Errorf("blueprint %q: %w", in.Identifier, ErrAlreadyExists)
		}
		if err := s.checkRelationTargets(ctx, tx, in); err != nil {
			return err
		}
		if err := s.checkAggregations(ctx, tx, in); err != nil {
			return err
		}
		bp := *in
		now := s.timestamp()
		bp.CreatedAt, bp.UpdatedAt = now, now
		if existing == nil {
			if err := s.syncDependents(ctx, tx, &bp, ""); err != nil {
				return err
			}
			tx.PutBlueprint(&bp, s.event(ctx, EventBlueprintCreated, bp.Identifier, "", nil, &bp))
			out, created = &bp, true
			return nil
		}
		bp.Scorecards, bp.Dependents = existing.Scorecards, existing.Dependents
		if sameBlueprint(existing, &bp) {
			out = existing
			return nil
		}
		bp.CreatedAt = existing.CreatedAt
		// UpdatedAt versions the compiled-blueprint cache (compile):
		// every change must move it, even within one clock tick or
		// when this replica's clock lags the last writer's.
		if !bp.UpdatedAt.After(existing.UpdatedAt) {
			bp.UpdatedAt = existing.UpdatedAt.Add(time.Microsecond)
		}
		if pending, err = s.beginChange(ctx, tx, existing, &bp); err != nil || pending != nil {
			old = existing
			return err
		}
		out = &bp
		return s.applyDefinition(ctx, tx, existing, &bp)
	})
	if err == nil && pending != nil {
		out, err = s.validateChange(ctx, old, pending, compiled)
	}
	if err == nil && !created {
		s.wakeRunner() // a replacement may have started a backfill
	}
	return out, created, err
}

func (s *Service) checkRelationTargets(ctx context.Context, tx Tx, bp *Blueprint) error {
	var vs violations
	for _, name := range sortedKeys(bp.Relations) {
		target := bp.Relations[name].Target
		if target == bp.Identifier {
			continue
		}
		if _, err := tx.Blueprint(ctx, target); errors.Is(err, ErrNotFound) {
			vs.add(pointer("relations", name, "target"), "blueprint %q does not exist", target)
		} else if err != nil {
			return err
		}
	}
	return vs.err("invalid blueprint")
}

// sameBlueprint compares definitions, ignoring timestamps.
func sameBlueprint(a, b *Blueprint) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt = y.CreatedAt, y.UpdatedAt
	x.Change, y.Change = nil, nil
	ra, _ := json.Marshal(x)
	rb, _ := json.Marshal(y)
	return bytes.Equal(ra, rb)
}

// DeleteBlueprint deletes a blueprint that has no entities and that no
// other blueprint's relation targets.
func (s *Service) DeleteBlueprint(ctx context.Context, id string) error {
	if err := s.authorizeBlueprint(ctx, OpDelete, &Blueprint{Identifier: id}); err != nil {
		return err
	}
	all, err := s.store.Blueprints(ctx)
	if err != nil {
		return err
	}
	for _, other := range all {
		if other.Identifier == id {
			continue
		}
		for _, name := range sortedKeys(other.Relations) {
			if other.Relations[name].Target == id {
				return fmt.Errorf("%w: blueprint %s has relation %s targeting %s", ErrInUse, other.Identifier, name, id)
			}
		}
		for _, name := range sortedKeys(other.AggregationProperties) {
			if other.AggregationProperties[name].Target == id {
				return fmt.Errorf("%w: blueprint %s has aggregation property %s over %s", ErrInUse, other.Identifier, name, id)
			}
		}
	}
	return s.store.Update(ctx, func(tx Tx) error {
		existing, err := tx.Blueprint(ctx, id)
		if err != nil {
			return err
		}
		n, err := tx.EntityCount(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: blueprint %s still has %d entities", ErrInUse, id, n)
		}
		if err := s.syncDependents(ctx, tx, nil, id); err != nil {
			return err
		}
		tx.DeleteChange(id)
		tx.DeleteBlueprint(id, s.event(ctx, EventBlueprintDeleted, id, "", existing, nil))
		return nil
	})
}

// gradingChanged reports whether a blueprint change can change its
// entities' derived values: anything but its presentation and access
// rules.
func gradingChanged(old, next *Blueprint) bool {
	strip := func(bp *Blueprint) Blueprint {
		r := *bp
		r.Title, r.Description, r.Icon = "", "", ""
		r.Permissions, r.Ownership = nil, nil
		r.CreatedAt, r.UpdatedAt, r.Change, r.Dependents = time.Time{}, time.Time{}, nil, nil
		return r
	}
	x, y := strip(old), strip(next)
	return !sameBlueprint(&x, &y)
}

// applyDefinition replaces blueprint existing with next in tx (the new
// definition, as a PUT gave it): the stored scorecards stay, the other
// blueprints' dependents follow, derived values are recomputed when what
// they read changed, and index layouts move (applyChange).
func (s *Service) applyDefinition(ctx context.Context, tx Tx, existing, next *Blueprint) error {
	next.Scorecards = existing.Scorecards
	if err := s.syncDependents(ctx, tx, next, ""); err != nil {
		return err
	}
	if (len(next.Scorecards) > 0 || len(next.AggregationProperties) > 0 || len(existing.AggregationProperties) > 0) && gradingChanged(existing, next) {
		tx.MarkAll(next.Identifier)
	}
	return s.applyChange(ctx, tx, existing, next)
}
