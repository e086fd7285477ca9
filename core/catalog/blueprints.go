package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// maxOffenders bounds how many invalidated entities a rejected blueprint
// change lists.
const maxOffenders = 100

// GetBlueprint returns one blueprint.
func (s *Service) GetBlueprint(ctx context.Context, id string) (*Blueprint, error) {
	return s.store.Blueprint(ctx, id)
}

// ListBlueprints returns every blueprint ordered by identifier.
func (s *Service) ListBlueprints(ctx context.Context) ([]*Blueprint, error) {
	return s.store.Blueprints(ctx)
}

// PutBlueprint creates or replaces a blueprint. With create set, an existing
// blueprint is ErrAlreadyExists. A replacement that would invalidate existing
// entities is rejected with the offending entities listed; nothing changes.
// It reports whether the blueprint was created.
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
	var out *Blueprint
	var created bool
	err = s.store.Update(ctx, func(tx Tx) error {
		out, created = nil, false
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
		bp := *in
		now := s.timestamp()
		bp.CreatedAt, bp.UpdatedAt = now, now
		if existing != nil {
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
			ents, err := s.checkExistingEntities(ctx, tx, existing, compiled)
			if err != nil {
				return err
			}
			tx.ReindexEntities(existing, &bp, ents)
		}
		typ := EventBlueprintCreated
		if existing != nil {
			typ = EventBlueprintUpdated
		}
		tx.PutBlueprint(&bp, s.event(ctx, typ, bp.Identifier, "", existing, &bp))
		out, created = &bp, existing == nil
		return nil
	})
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

// checkExistingEntities validates every stored entity against the new
// definition: a change that would make any of them invalid is refused.
// It returns the entities it read.
func (s *Service) checkExistingEntities(ctx context.Context, tx Tx, old *Blueprint, next *CompiledBlueprint) ([]*Entity, error) {
	ids, err := tx.EntityIDs(ctx, old.Identifier)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	refs := make([]Ref, len(ids))
	for i, id := range ids {
		refs[i] = Ref{Blueprint: old.Identifier, Identifier: id}
	}
	ents, err := tx.Entities(ctx, refs)
	if err != nil {
		return nil, err
	}
	var vs violations
	offenders := 0
	for _, e := range ents {
		if e == nil {
			continue
		}
		var problems []Violation
		var verr *ValidationError
		if err := next.ValidateEntity(e.copy()); errors.As(err, &verr) {
			problems = verr.Violations
		}
		for name, rel := range old.Relations {
			newRel, ok := next.Blueprint.Relations[name]
			if ok && newRel.Target != rel.Target && len(e.RelationTargets(name)) > 0 {
				problems = append(problems, Violation{Path: pointer("relations", name), Message: fmt.Sprintf("points at %s entities; the new target is %s", rel.Target, newRel.Target)})
			}
		}
		if len(problems) == 0 {
			continue
		}
		offenders++
		if offenders > maxOffenders {
			continue
		}
		for _, p := range problems {
			vs.add(pointer("entities", e.Identifier)+p.Path, "%s", p.Message)
		}
	}
	if offenders == 0 {
		return ents, nil
	}
	msg := fmt.Sprintf("the change would invalidate %d existing %s entities", offenders, old.Identifier)
	if offenders > maxOffenders {
		msg += fmt.Sprintf(" (first %d listed)", maxOffenders)
	}
	return nil, vs.err(msg)
}

// sameBlueprint compares definitions, ignoring timestamps.
func sameBlueprint(a, b *Blueprint) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt = y.CreatedAt, y.UpdatedAt
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
	}
	return s.store.Update(ctx, func(tx Tx) error {
		existing, err := tx.Blueprint(ctx, id)
		if err != nil {
			return err
		}
		ids, err := tx.EntityIDs(ctx, id)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return fmt.Errorf("%w: blueprint %s still has %d entities", ErrInUse, id, len(ids))
		}
		tx.DeleteBlueprint(id, s.event(ctx, EventBlueprintDeleted, id, "", existing, nil))
		return nil
	})
}
