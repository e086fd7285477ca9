package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/host/integrations"
)

// Resyncer runs scheduled resyncs (the integrations Manager).
type Resyncer interface {
	// StartScheduledResync starts a resync of integration id in this
	// process; started is false when one was already running.
	StartScheduledResync(ctx context.Context, id string) (s *integrations.Sync, started bool, err error)
	Sync(ctx context.Context, id, sid string) (*integrations.Sync, error)
}

// PluginHost is what a worker's activities need of the plugin host.
type PluginHost interface {
	PluginActor
	Resyncer
}

// ResyncInput names the integration a scheduled resync is for.
type ResyncInput struct {
	Integration string `json:"integration"`
}

// Outcomes of a Resync besides the sync states.
const ResyncSkipped = "skipped"

// ResyncResult is what one scheduled resync did.
type ResyncResult struct {
	// Sync is the id of the sync it ran (GET /integrations/{id}/syncs/{sid}).
	Sync string `json:"sync,omitempty"`
	// Status is the sync's final state, or "skipped".
	Status  string `json:"status"`
	Skipped string `json:"skipped,omitempty"`
	Items   int    `json:"items"`
	Upserts int    `json:"upserts"`
	Deletes int    `json:"deletes"`
	Errors  int    `json:"errors"`
}

// Resync tuning: a resync may take long, a worker that died while running
// one is noticed within the heartbeat timeout and the activity retried.
const (
	resyncTimeout   = 12 * time.Hour
	resyncHeartbeat = time.Minute
	resyncPoll      = time.Second
)

// Resync is one turn of an integration's resync schedule (started by its
// Temporal Schedule, which skips a turn while the previous one runs): an
// activity runs a full resync in the worker's plugin host and waits for
// it to end. A resync already running, or an integration deleted since,
// skips the turn; a failed sync fails the workflow.
func Resync(ctx workflow.Context, in ResyncInput) (*ResyncResult, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: resyncTimeout,
		HeartbeatTimeout:    resyncHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Second, MaximumInterval: time.Minute, MaximumAttempts: 3},
	})
	var res ResyncResult
	if err := workflow.ExecuteActivity(actx, activityRunResync, in).Get(ctx, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// RunResync starts a scheduled resync of the integration and waits for
// it, heartbeating. The sync runs in this process's plugin host, so it
// cannot outlive the activity unnoticed: if the worker dies, the retry
// finds the sync lock free (or still held: skipped) and starts anew.
func (a *Activities) RunResync(ctx context.Context, in ResyncInput) (*ResyncResult, error) {
	if a.Resyncs == nil {
		return nil, temporal.NewNonRetryableApplicationError("no plugin host in this worker", "NoPluginHost", nil)
	}
	s, started, err := a.Resyncs.StartScheduledResync(ctx, in.Integration)
	switch {
	case errors.Is(err, integrations.ErrNotFound):
		return &ResyncResult{Status: ResyncSkipped, Skipped: "integration not found"}, nil
	case err != nil:
		return nil, fmt.Errorf("start resync of %s: %w", in.Integration, err)
	case !started:
		res := &ResyncResult{Status: ResyncSkipped, Skipped: "a resync is already running"}
		if s != nil {
			res.Sync = s.ID
		}
		return res, nil
	}
	t := time.NewTicker(resyncPoll)
	defer t.Stop()
	for s.Status == integrations.SyncRunning {
		activity.RecordHeartbeat(ctx, s.ID)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		if s, err = a.Resyncs.Sync(ctx, in.Integration, s.ID); err != nil {
			return nil, fmt.Errorf("resync of %s: %w", in.Integration, err)
		}
	}
	if s.Status == integrations.SyncFailed {
		msg := fmt.Sprintf("resync %s of %s failed", s.ID, in.Integration)
		if n := len(s.Errors); n > 0 {
			msg += ": " + s.Errors[n-1].Message
		}
		return nil, temporal.NewNonRetryableApplicationError(msg, "ResyncFailed", nil)
	}
	return &ResyncResult{Sync: s.ID, Status: s.Status, Items: s.Items, Upserts: s.Upserts, Deletes: s.Deletes, Errors: s.ErrorCount}, nil
}
