package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

// TimerInput is a TTL timer: entity property Property of (Blueprint,
// Identifier) expires at ExpiresAt, then ExpiryAction (if any) runs on the
// entity.
type TimerInput struct {
	Blueprint    string    `json:"blueprint"`
	Identifier   string    `json:"identifier"`
	Property     string    `json:"property"`
	ExpiresAt    time.Time `json:"expiresAt"`
	ExpiryAction string    `json:"expiryAction,omitempty"`
}

// TimerID is the workflow id of an entity property's timer.
func TimerID(blueprint, identifier, property string) string {
	return "timer:" + blueprint + "/" + identifier + "/" + property
}

// Timer sleeps until the property expires (a reschedule signal carrying
// a new TimerInput moves the deadline), then expires it with an activity:
// a timer.expired catalog event and the expiry action. A timer that came
// due while no worker ran fires as soon as one does.
func Timer(ctx workflow.Context, in TimerInput) error {
	resched := workflow.GetSignalChannel(ctx, SignalReschedule)
	for {
		wait := in.ExpiresAt.Sub(workflow.Now(ctx))
		if wait <= 0 {
			break
		}
		tctx, cancel := workflow.WithCancel(ctx)
		fired := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(tctx, wait), func(f workflow.Future) { fired = f.Get(ctx, nil) == nil })
		sel.AddReceive(resched, func(c workflow.ReceiveChannel, _ bool) {
			var next TimerInput
			c.Receive(ctx, &next)
			in.ExpiresAt, in.ExpiryAction = next.ExpiresAt, next.ExpiryAction
		})
		sel.Select(ctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if fired {
			break
		}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 20},
	})
	deadline := in.ExpiresAt // the one that just fired
	var res ExpireResult
	if err := workflow.ExecuteActivity(actx, activityExpire, in).Get(ctx, &res); err != nil {
		return err
	}
	next, moved := in, false
	if res.Rescheduled != nil {
		// The value moved while the timer fired (its reschedule signal may
		// still be on the way): sleep until the new deadline instead.
		next.ExpiresAt, moved = *res.Rescheduled, true
	}
	if workflow.GetVersion(ctx, versionTimerDrains, workflow.DefaultVersion, 1) == 1 {
		// A reschedule signalled after Expire read the entity is newer than
		// what it read: the last one wins. (Before this change such a
		// signal was dropped and the new deadline never armed.)
		var sig TimerInput
		for resched.ReceiveAsync(&sig) {
			next.ExpiresAt, next.ExpiryAction = sig.ExpiresAt, sig.ExpiryAction
			moved = !sig.ExpiresAt.Equal(deadline)
		}
	}
	if moved {
		return workflow.NewContinueAsNewError(ctx, TimerWorkflow, next)
	}
	return nil
}

// ExpireResult says whether Expire expired the property or found it
// moved to a later time (Rescheduled).
type ExpireResult struct {
	Rescheduled *time.Time `json:"rescheduled,omitempty"`
}

const activityExpire = "Expire"

// Expire records a timer.expired event on the entity and triggers its
// expiry action (as the system). It first reads the property: a value
// moved to a later time is Rescheduled, not expired; a cleared value or a
// vanished entity expires quietly.
func (a *Activities) Expire(ctx context.Context, in TimerInput) (*ExpireResult, error) {
	ctx = catalog.WithActor(ctx, catalog.SystemActor("timer"))
	ref := catalog.Ref{Blueprint: in.Blueprint, Identifier: in.Identifier}
	e, err := a.Catalog.GetEntity(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return &ExpireResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	v, _ := e.Properties[in.Property].(string)
	if v == "" {
		return &ExpireResult{}, nil
	}
	if at, err := time.Parse(time.RFC3339Nano, v); err == nil && at.After(in.ExpiresAt) && at.After(time.Now()) {
		return &ExpireResult{Rescheduled: &at}, nil
	}
	return &ExpireResult{}, a.expire(ctx, ref, in)
}

// expire records the event (once across retries) and triggers the expiry
// action with a run id derived from the timer and its deadline.
func (a *Activities) expire(ctx context.Context, ref catalog.Ref, in TimerInput) error {
	// A retry after a failed trigger must not record the event twice: the
	// heartbeat details of the attempt that recorded it say so.
	if !activity.HasHeartbeatDetails(ctx) {
		if err := a.Catalog.AppendEvent(ctx, ref, catalog.EventTimerExpired); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return nil
			}
			return err
		}
		activity.RecordHeartbeat(ctx, "event recorded")
	}
	if in.ExpiryAction == "" || a.Actions == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(TimerID(in.Blueprint, in.Identifier, in.Property) + "@" + in.ExpiresAt.UTC().Format(time.RFC3339Nano)))
	runID := "run_t" + hex.EncodeToString(sum[:12])
	_, err := a.Actions.Trigger(ctx, in.ExpiryAction, actions.TriggerRequest{Entity: in.Identifier, Inputs: map[string]any{}, RunID: runID})
	var verr *catalog.ValidationError
	if errors.As(err, &verr) || errors.Is(err, actions.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("expiry action %s: %v", in.ExpiryAction, err), "ExpiryActionRejected", nil)
	}
	return err
}
