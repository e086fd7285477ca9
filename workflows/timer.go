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
	return workflow.ExecuteActivity(actx, activityExpire, in).Get(ctx, nil)
}

const activityExpire = "Expire"

// Expire records a timer.expired event on the entity and triggers its
// expiry action (as the system). A vanished entity expires quietly.
func (a *Activities) Expire(ctx context.Context, in TimerInput) error {
	ctx = catalog.WithActor(ctx, catalog.Actor{ID: "timer"})
	ref := catalog.Ref{Blueprint: in.Blueprint, Identifier: in.Identifier}
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
