package catalog

import (
	"context"
	"fmt"
)

// AppendEvent appends an event of a custom type (timer.expired, …) about
// an existing entity to the change stream and the entity's history,
// without changing the entity; the event's before and after are the
// entity as it is.
func (s *Service) AppendEvent(ctx context.Context, ref Ref, typ string) error {
	actor := ActorFrom(ctx)
	err := s.store.Update(ctx, func(tx Tx) error {
		bp, err := tx.Blueprint(ctx, ref.Blueprint)
		if err != nil {
			return err
		}
		ents, err := tx.Entities(ctx, []Ref{ref})
		if err != nil {
			return err
		}
		if len(ents) == 0 || ents[0] == nil {
			return fmt.Errorf("%w: entity %s/%s", ErrNotFound, ref.Blueprint, ref.Identifier)
		}
		tx.PutEntity(bp, ents[0], ents[0], Event{
			Type: typ, Blueprint: ref.Blueprint, Identifier: ref.Identifier, Actor: actor.ID, At: s.now().UTC(),
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %s event to %s/%s: %w", typ, ref.Blueprint, ref.Identifier, err)
	}
	return nil
}
