package workflows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/egress"
)

// AutomationWorkflow is the registered name of AutomationDelivery.
const AutomationWorkflow = "AutomationDelivery"

const (
	activityDeliverAutomation = "DeliverAutomation"
	activityAutomationFailed  = "RecordAutomationFailure"
)

// AutomationDelivery delivers one event to one automation: an activity
// does what the automation says (retried with the automation's policy),
// and a final failure is recorded on the delivery. Its workflow id is
// automations.DeliveryID, so each (automation, event) runs once. A
// schedule's firing arrives without an event: the workflow id names it.
func AutomationDelivery(ctx workflow.Context, req automations.Request) error {
	if req.Event.ID == "" {
		info := workflow.GetInfo(ctx)
		req.Event.ID = strings.TrimPrefix(info.WorkflowExecution.ID, automations.DeliveryID(req.Automation, ""))
		req.Event.Type = automations.EventSchedule
		req.Event.At = workflow.Now(ctx).UTC()
	}
	retry := req.Retry
	actx, _ := activityOptions(ctx, actions.Step{Retry: &retry})
	err := workflow.ExecuteActivity(actx, activityDeliverAutomation, req).Get(ctx, nil)
	if err == nil {
		return nil
	}
	cause := err.Error()
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		cause = app.Error()
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 5 * time.Second},
	})
	if lerr := workflow.ExecuteLocalActivity(lctx, activityAutomationFailed, req, cause).Get(ctx, nil); lerr != nil {
		workflow.GetLogger(ctx).Warn("record automation failure", "automation", req.Automation, "err", lerr)
	}
	return err
}

// AutomationActivities execute deliveries with an automations.Service.
type AutomationActivities struct {
	Service *automations.Service
}

// DeliverAutomation is one delivery attempt.
func (a *AutomationActivities) DeliverAutomation(ctx context.Context, req automations.Request) error {
	_, err := a.Service.Deliver(ctx, req, int(activity.GetInfo(ctx).Attempt))
	var perm *automations.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "DeliveryRejected", nil)
	}
	return err
}

// RecordAutomationFailure records a delivery's final failure.
func (a *AutomationActivities) RecordAutomationFailure(ctx context.Context, req automations.Request, cause string) error {
	return a.Service.Fail(ctx, req, 0, cause)
}

// Automations start deliveries and keep automation schedules on Temporal
// (automations.Starter and automations.Scheduler).
type Automations struct {
	c         client.Client
	taskQueue string
}

var (
	_ automations.Starter   = (*Automations)(nil)
	_ automations.Scheduler = (*Automations)(nil)
)

// NewAutomations returns the automations engine of c on taskQueue ("" =
// TaskQueue).
func NewAutomations(c client.Client, taskQueue string) *Automations {
	if taskQueue == "" {
		taskQueue = TaskQueue
	}
	return &Automations{c: c, taskQueue: taskQueue}
}

// Start starts a delivery's workflow; one already started or finished
// (its id is taken, whatever its outcome) is not started again.
func (s *Automations) Start(ctx context.Context, req automations.Request) error {
	_, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       automations.DeliveryID(req.Automation, req.Event.ID),
		TaskQueue:                s.taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, AutomationWorkflow, req)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return mapErr(err)
}

// AutomationScheduleID is the Temporal schedule id of an automation.
func AutomationScheduleID(id string) string { return "automation:" + id }

// Schedule creates or replaces the schedule of a cron-triggered
// automation; each firing starts an AutomationDelivery whose id is
// DeliveryID(id, "schedule-<time>").
func (s *Automations) Schedule(ctx context.Context, a *automations.Automation) error {
	retry := automations.DefaultRetry
	if a.Invoke.Retry != nil {
		retry = *a.Invoke.Retry
	}
	action := &client.ScheduleWorkflowAction{
		ID:        automations.DeliveryID(a.Identifier, "schedule"),
		Workflow:  AutomationWorkflow,
		Args:      []any{automations.Request{Automation: a.Identifier, Retry: retry}},
		TaskQueue: s.taskQueue,
	}
	spec := client.ScheduleSpec{CronExpressions: []string{a.Trigger.Schedule}}
	_, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: AutomationScheduleID(a.Identifier), Spec: spec, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: time.Minute,
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return scheduleErr(err)
	}
	h := s.c.ScheduleClient().GetHandle(ctx, AutomationScheduleID(a.Identifier))
	return scheduleErr(h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			cur := in.Description.Schedule
			cur.Spec = &spec
			cur.Action = action
			return &client.ScheduleUpdate{Schedule: &cur}, nil
		},
	}))
}

// Unschedule deletes an automation's schedule, if any.
func (s *Automations) Unschedule(ctx context.Context, id string) error {
	err := s.c.ScheduleClient().GetHandle(ctx, AutomationScheduleID(id)).Delete(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return scheduleErr(err)
}

// AutomationWebhooks sends automations' webhooks with the client, the
// signature and the egress rules of action webhooks (see
// Activities.Webhook).
type AutomationWebhooks struct{ Activities *Activities }

var _ automations.WebhookSender = AutomationWebhooks{}

// Send delivers a signed webhook: 5xx, 408 and 429 answers and transport
// errors are retried, other non-2xx answers and refused addresses are
// permanent failures.
func (w AutomationWebhooks) Send(ctx context.Context, wh automations.Webhook) (int, error) {
	hreq, err := http.NewRequestWithContext(ctx, wh.Method, wh.URL, bytes.NewReader(wh.Body))
	if err != nil {
		return 0, &automations.PermanentError{Err: fmt.Errorf("webhook request: %w", err)}
	}
	for k, v := range wh.Headers {
		hreq.Header.Set(k, v)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", "Portico-Webhook/1")
	hreq.Header.Set("X-Portico-Timestamp", ts)
	hreq.Header.Set("X-Portico-Signature", Signature(wh.Secret, ts, wh.Body))
	hreq.Header.Set("Idempotency-Key", wh.IdempotencyKey)
	resp, err := w.Activities.webhookClient().Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, egress.ErrRefused) {
			return 0, &automations.PermanentError{Err: fmt.Errorf("webhook %s: %w", wh.URL, err)}
		}
		return 0, fmt.Errorf("webhook %s: %w", wh.URL, err)
	}
	resp.Body.Close()
	msg := fmt.Errorf("webhook %s answered %d", wh.URL, resp.StatusCode)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return resp.StatusCode, msg
	}
	return resp.StatusCode, &automations.PermanentError{Err: msg}
}

// AutomationPlugins runs automations' plugin invocations through the
// plugin host.
func AutomationPlugins(p PluginActor) automations.PluginActor {
	if p == nil {
		return nil
	}
	return func(ctx context.Context, integration, action string, entity *catalog.Ref, inputs []byte) error {
		_, err := p.Act(ctx, integration, action, entity, inputs)
		return err
	}
}
