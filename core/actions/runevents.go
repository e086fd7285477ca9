package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// RunEvent is the Detail of the run.created and run.finished catalog
// events: what automations triggered by runs match and template on.
type RunEvent struct {
	ID          string         `json:"id"`
	Action      string         `json:"action"`
	Status      string         `json:"status"`
	Blueprint   string         `json:"blueprint"`
	Entity      string         `json:"entity,omitempty"`
	Inputs      map[string]any `json:"inputs"`
	TriggeredBy string         `json:"triggeredBy"`
	Error       string         `json:"error,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	EndedAt     *time.Time     `json:"endedAt,omitempty"`
}

// RunFinished appends the run.finished event of a run whose final record
// was saved (the worker calls it; a retried save may append it twice).
func (s *Service) RunFinished(ctx context.Context, r *Run) error {
	if !r.Finished() {
		return nil
	}
	return s.emitRun(ctx, catalog.EventRunFinished, r)
}

// emitRun appends a run event to the catalog's change stream; its
// identifier is the run's entity, its actor and depth the run's.
func (s *Service) emitRun(ctx context.Context, typ string, r *Run) error {
	detail, err := json.Marshal(RunEvent{
		ID: r.ID, Action: r.Action, Status: r.Status, Blueprint: r.Blueprint, Entity: r.Entity,
		Inputs: r.Inputs, TriggeredBy: r.TriggeredBy, Error: r.Error, CreatedAt: r.CreatedAt, EndedAt: r.EndedAt,
	})
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	ev := catalog.Event{Type: typ, Blueprint: r.Blueprint, Identifier: r.Entity, Before: json.RawMessage("null"),
		After: json.RawMessage("null"), Actor: r.TriggeredBy, Detail: detail, Depth: r.Depth}
	if err := s.cat.Emit(ctx, ev); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	return nil
}
