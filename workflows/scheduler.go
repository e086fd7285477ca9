package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/portico-dev/portico/core/catalog"
)

// CursorStore remembers how far a change-stream consumer got.
type CursorStore interface {
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, id string) error
}

// TimerScheduler feeds TTL timers from the catalog change stream: a timer
// property set or changed (signal-with-start: arms or moves the timer),
// cleared, or its entity deleted (cancels it). It remembers the last
// event it handled, so a restarted worker resumes where it stopped.
type TimerScheduler struct {
	Catalog   *catalog.Service
	Client    client.Client
	Cursors   CursorStore
	TaskQueue string
	Logger    *slog.Logger
}

const timerCursor = "timers"

// Run consumes events until ctx ends.
func (s *TimerScheduler) Run(ctx context.Context) error {
	if s.TaskQueue == "" {
		s.TaskQueue = TaskQueue
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	after, err := s.Cursors.Cursor(ctx, timerCursor)
	if err != nil {
		return err
	}
	if after == "" {
		after = "0"
	}
	for ctx.Err() == nil {
		evs, err := s.Catalog.Events(ctx, after, 200, 2*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.Logger.Warn("timer scheduler: read events", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for _, ev := range evs {
			if err := s.handle(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.Logger.Warn("timer scheduler: event", "id", ev.ID, "err", err)
				sleep(ctx, time.Second)
				break // retry from this event
			}
			after = ev.ID
		}
		if len(evs) > 0 {
			if err := s.Cursors.SetCursor(ctx, timerCursor, after); err != nil && ctx.Err() == nil {
				s.Logger.Warn("timer scheduler: save cursor", "err", err)
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// handle arms, moves or cancels the timers one event concerns.
func (s *TimerScheduler) handle(ctx context.Context, ev catalog.Event) error {
	switch ev.Type {
	case catalog.EventEntityCreated, catalog.EventEntityUpdated, catalog.EventEntityDeleted:
	default:
		return nil
	}
	bp, err := s.Catalog.GetBlueprint(ctx, ev.Blueprint)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var props []string
	for name, p := range bp.Schema.Properties {
		if p.Format == "timer" {
			props = append(props, name)
		}
	}
	sort.Strings(props)
	before, after := timerValues(ev.Before), timerValues(ev.After)
	for _, name := range props {
		id := TimerID(ev.Blueprint, ev.Identifier, name)
		was, now := before[name], after[name]
		switch {
		case ev.Type == catalog.EventEntityDeleted || (now == "" && was != ""):
			if err := s.Client.CancelWorkflow(ctx, id, ""); err != nil && !isNotFound(err) {
				return err
			}
		case now != "" && (now != was || ev.Type == catalog.EventEntityCreated):
			at, err := time.Parse(time.RFC3339Nano, now)
			if err != nil {
				continue // the catalog validated it; tolerate old data
			}
			in := TimerInput{Blueprint: ev.Blueprint, Identifier: ev.Identifier, Property: name, ExpiresAt: at, ExpiryAction: bp.Schema.Properties[name].ExpiryAction}
			_, err = s.Client.SignalWithStartWorkflow(ctx, id, SignalReschedule, in,
				client.StartWorkflowOptions{ID: id, TaskQueue: s.TaskQueue}, TimerWorkflow, in)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// timerValues returns the string properties of an entity JSON document.
func timerValues(raw json.RawMessage) map[string]string {
	var e struct {
		Properties map[string]any `json:"properties"`
	}
	out := map[string]string{}
	if len(raw) == 0 || json.Unmarshal(raw, &e) != nil {
		return out
	}
	for k, v := range e.Properties {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func isNotFound(err error) bool {
	return errors.Is(mapErr(err), errNotFoundSentinel)
}
