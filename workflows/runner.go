package workflows

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/portico-dev/portico/core/actions"
)

// Runner implements actions.Runner with a Temporal client: one ActionRun
// workflow per run, its workflow id the run id.
type Runner struct {
	c         client.Client
	taskQueue string
}

var _ actions.Runner = (*Runner)(nil)

// NewRunner returns a runner starting runs on taskQueue ("" = TaskQueue).
func NewRunner(c client.Client, taskQueue string) *Runner {
	if taskQueue == "" {
		taskQueue = TaskQueue
	}
	return &Runner{c: c, taskQueue: taskQueue}
}

// Start starts the run's workflow; starting it again is a no-op.
func (r *Runner) Start(ctx context.Context, req actions.StartRequest) error {
	_, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       req.Run.ID,
		TaskQueue:                r.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, ActionRunWorkflow, req)
	return mapErr(err)
}

// Decide signals an approver's decision.
func (r *Runner) Decide(ctx context.Context, runID string, d actions.Decision) error {
	return mapErr(r.c.SignalWorkflow(ctx, runID, "", SignalDecision, d))
}

// Cancel requests the run's cancellation.
func (r *Runner) Cancel(ctx context.Context, runID string) error {
	return mapErr(r.c.CancelWorkflow(ctx, runID, ""))
}

// Describe queries the run's live state.
func (r *Runner) Describe(ctx context.Context, runID string) (*actions.Run, error) {
	v, err := r.c.QueryWorkflow(ctx, runID, "", QueryRun)
	if err != nil {
		return nil, mapErr(err)
	}
	var run actions.Run
	if err := v.Get(&run); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return &run, nil
}

// Ping reports whether the Temporal frontend answers.
func (r *Runner) Ping(ctx context.Context) error {
	_, err := r.c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// errNotFoundSentinel is what mapErr wraps a Temporal NotFound in.
var errNotFoundSentinel = actions.ErrNotFound

func mapErr(err error) error {
	var nf *serviceerror.NotFound
	var unavailable *serviceerror.Unavailable
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return fmt.Errorf("%w: %v", actions.ErrNotFound, err)
	case errors.As(err, &unavailable):
		return fmt.Errorf("%w: %v", actions.ErrUnavailable, err)
	}
	return err
}
