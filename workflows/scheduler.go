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
	// Timers are armed from every entity, whoever may read it.
	ctx = catalog.WithActor(ctx, catalog.SystemActor("timer"))
	after, err := s.Cursors.Cursor(ctx, timerCursor)
	if err != nil {
		return err
	}
	if after == "" {
		after = "0"
	}
	checkGap := true // at start, and whenever a full batch says we lag
	for ctx.Err() == nil {
		if checkGap {
			next, err := s.recoverGap(ctx, after)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				s.Logger.Warn("timer scheduler: re-arm timers after a gap", "err", err)
				sleep(ctx, time.Second)
				continue
			}
			if next != after {
				after = next
				if err := s.Cursors.SetCursor(ctx, timerCursor, after); err != nil && ctx.Err() == nil {
					s.Logger.Warn("timer scheduler: save cursor", "err", err)
				}
			}
		}
		evs, err := s.Catalog.Events(ctx, after, timerBatch, 2*time.Second)
		checkGap = len(evs) == timerBatch
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

// timerBatch is how many change events the scheduler reads at once.
const timerBatch = 200

// recoverGap handles a change stream trimmed past the scheduler's
// position (it lagged more than the stream's retention, e.g. a large
// import while no worker ran): the events it missed are gone, so it arms
// every timer property of every entity from the catalog (arming is
// idempotent) and returns the stream's newest id as the new position.
// Without a gap it returns after unchanged.
func (s *TimerScheduler) recoverGap(ctx context.Context, after string) (string, error) {
	if after == "0" {
		return after, nil
	}
	oldest, newest, err := s.Catalog.EventBounds(ctx)
	if err != nil || oldest == "" || !catalog.EventIDBefore(after, oldest) {
		return after, err
	}
	s.Logger.Warn("timer scheduler: the change stream was trimmed past its position; re-arming timers from the catalog",
		"position", after, "oldest", oldest)
	bps, err := s.Catalog.ListBlueprints(ctx)
	if err != nil {
		return after, err
	}
	armed := 0
	for _, bp := range bps {
		if !hasTimer(bp) {
			continue
		}
		for cursor := ""; ; {
			page, err := s.Catalog.ListEntities(ctx, bp.Identifier, cursor, 500)
			if err != nil {
				return after, err
			}
			for _, e := range page.Entities {
				raw, err := json.Marshal(e)
				if err != nil {
					return after, err
				}
				if err := s.handle(ctx, catalog.Event{Type: catalog.EventEntityCreated, Blueprint: bp.Identifier, Identifier: e.Identifier, After: raw}); err != nil {
					return after, err
				}
				armed++
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
	}
	s.Logger.Info("timer scheduler: timers re-armed from the catalog", "entities", armed, "position", newest)
	return newest, nil
}

func hasTimer(bp *catalog.Blueprint) bool {
	for _, p := range bp.Schema.Properties {
		if p.Format == "timer" {
			return true
		}
	}
	return false
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
