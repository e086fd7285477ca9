package catalog

import (
	"context"
	"fmt"
)

// Emit appends an event that is no entity change (run.created,
// run.finished, …) to the change stream only; Actor, At and Depth default
// to ctx's actor, now and ctx's depth.
func (s *Service) Emit(ctx context.Context, ev Event) error {
	if ev.Actor == "" {
		ev.Actor = ActorFrom(ctx).ID
	}
	if ev.At.IsZero() {
		ev.At = s.timestamp()
	}
	if ev.Depth == 0 {
		ev.Depth = DepthFrom(ctx)
	}
	if err := s.store.Update(ctx, func(tx Tx) error { tx.Emit(ev); return nil }); err != nil {
		return fmt.Errorf("emit %s: %w", ev.Type, err)
	}
	return nil
}
