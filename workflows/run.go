package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/core/actions"
)

// RunInput is the ActionRun workflow's input: the initial run record, the
// plan at the definition versions the run started with, and the entity as
// it was when triggered.
type RunInput = actions.StartRequest

// stopError ends a run early with a final status other than FAILURE
// (DECLINED, TIMED_OUT, CANCELLED) or a step failure.
type stopError struct {
	status string
	reason string
}

func (e *stopError) Error() string { return e.status + ": " + e.reason }

// interpreter is the state of one ActionRun execution.
type interpreter struct {
	run       *actions.Run
	plan      actions.Plan
	entity    any
	outputs   map[string]json.RawMessage
	decisions workflow.ReceiveChannel
	// compensations holds, per started step, its onFailure steps.
	compensations [][]actions.Step
}

// ActionRun executes a run's plan: steps in order, parallel groups as a
// dependency graph, per-step retries, and on failure every started step's
// compensations in reverse order followed by the plan's onFailure steps.
// Its state is the run record: exposed by the "run" query and mirrored to
// the store (a local activity) on every transition.
func ActionRun(ctx workflow.Context, in RunInput) (*actions.Run, error) {
	it := &interpreter{run: in.Run, plan: in.Plan, outputs: map[string]json.RawMessage{}}
	if len(in.Entity) > 0 {
		if err := json.Unmarshal(in.Entity, &it.entity); err != nil {
			return nil, fmt.Errorf("decode entity: %w", err)
		}
	}
	if it.run.Steps == nil {
		it.run.Steps = actions.PlannedSteps(in.Plan)
	}
	it.decisions = workflow.GetSignalChannel(ctx, SignalDecision)
	if err := workflow.SetQueryHandler(ctx, QueryRun, func() (*actions.Run, error) { return it.snapshot(), nil }); err != nil {
		return nil, fmt.Errorf("query handler: %w", err)
	}
	it.log(ctx, "info", "", "run started by %s", it.run.TriggeredBy)
	if len(in.Plan.Steps) == 0 || in.Plan.Steps[0].Type != actions.StepApproval {
		it.run.Status = actions.StatusInProgress
		it.save(ctx)
	}

	err := it.sequence(ctx, in.Plan.Steps)
	final := actions.StatusSuccess
	var stop *stopError
	switch {
	case err == nil:
	case isCancel(ctx, err):
		final = actions.StatusCancelled
		it.log(ctx, "warn", "", "run cancelled")
	case errors.As(err, &stop):
		final = stop.status
		it.log(ctx, "warn", "", "%s", stop.reason)
	default:
		final = actions.StatusFailure
		it.run.Error = err.Error()
		it.log(ctx, "error", "", "run failed: %v", err)
	}
	switch final {
	case actions.StatusFailure, actions.StatusTimedOut:
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		it.compensate(dctx, true)
	case actions.StatusDeclined, actions.StatusCancelled:
		// A run stopped after steps with compensations ran (an approval
		// in mid-plan declined, a cancel) undoes them, but does not run
		// the plan's onFailure: nothing failed. Histories recorded before
		// this change did not, and replay so.
		if len(it.compensations) > 0 && workflow.GetVersion(ctx, versionCompensateStopped, workflow.DefaultVersion, 1) == 1 {
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			it.compensate(dctx, false)
		}
	}
	if final == actions.StatusCancelled {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	now := workflow.Now(ctx).UTC()
	it.run.Status = final
	it.run.Pending = nil
	it.run.EndedAt = &now
	for i := range it.run.Steps {
		if it.run.Steps[i].Status == actions.StepPending {
			it.run.Steps[i].Status = actions.StepSkipped
		}
	}
	it.log(ctx, "info", "", "run finished: %s", final)
	it.saveNow(ctx)
	return it.snapshot(), nil
}

// snapshot is a deep copy of the run (queries and mirrors must not share
// the slices the workflow keeps mutating).
func (it *interpreter) snapshot() *actions.Run {
	raw, _ := json.Marshal(it.run)
	var out actions.Run
	_ = json.Unmarshal(raw, &out)
	return &out
}

func isCancel(ctx workflow.Context, err error) bool {
	return temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled)
}

// log appends a log line stamped with workflow time.
func (it *interpreter) log(ctx workflow.Context, level, step, format string, args ...any) {
	it.run.Logs = append(it.run.Logs, actions.LogLine{At: workflow.Now(ctx).UTC(), Level: level, Step: step, Message: fmt.Sprintf(format, args...)})
}

// save mirrors the run to the store without waiting for the write.
func (it *interpreter) save(ctx workflow.Context) {
	it.run.Revision++
	it.run.UpdatedAt = workflow.Now(ctx).UTC()
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 5 * time.Second},
	})
	f := workflow.ExecuteLocalActivity(lctx, activitySaveRun, it.snapshot())
	workflow.Go(ctx, func(gctx workflow.Context) {
		if err := f.Get(gctx, nil); err != nil && !temporal.IsCanceledError(err) {
			workflow.GetLogger(gctx).Warn("mirror run", "run", it.run.ID, "err", err)
		}
	})
}

// saveNow mirrors the run and waits for the write (the final record).
func (it *interpreter) saveNow(ctx workflow.Context) {
	it.run.Revision++
	it.run.UpdatedAt = workflow.Now(ctx).UTC()
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 5 * time.Second},
	})
	if err := workflow.ExecuteLocalActivity(lctx, activitySaveRun, it.snapshot()).Get(lctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("mirror final run", "run", it.run.ID, "err", err)
	}
}

// setStep updates the record of step id (appending one if missing).
func (it *interpreter) setStep(id, typ string, fn func(*actions.StepRun)) {
	for i := range it.run.Steps {
		if it.run.Steps[i].ID == id {
			fn(&it.run.Steps[i])
			return
		}
	}
	it.run.Steps = append(it.run.Steps, actions.StepRun{ID: id, Type: typ, Status: actions.StepPending})
	fn(&it.run.Steps[len(it.run.Steps)-1])
}

// sequence runs steps in order.
func (it *interpreter) sequence(ctx workflow.Context, steps []actions.Step) error {
	for _, s := range steps {
		if err := it.step(ctx, s, false); err != nil {
			return err
		}
	}
	return nil
}

// step runs one step and records its outcome.
func (it *interpreter) step(ctx workflow.Context, s actions.Step, compensation bool) error {
	kind := s.Kind()
	start := workflow.Now(ctx).UTC()
	it.setStep(s.ID, kind, func(r *actions.StepRun) {
		r.Status, r.StartedAt, r.Compensation = actions.StatusInProgress, &start, compensation
	})
	if !compensation && len(s.OnFailure) > 0 {
		it.compensations = append(it.compensations, s.OnFailure)
	}
	if kind != actions.StepApproval {
		it.log(ctx, "info", s.ID, "step %s (%s) started", s.ID, kind)
		it.save(ctx)
	}
	var (
		out      json.RawMessage
		attempts = 1
		err      error
	)
	switch kind {
	case actions.StepApproval:
		out, err = it.approval(ctx, s)
	case actions.StepWebhook:
		out, attempts, err = it.webhook(ctx, s)
	case actions.StepPlugin:
		out, attempts, err = it.plugin(ctx, s)
	case actions.StepSleep:
		d, _ := actions.ParseDuration(s.Duration)
		err = workflow.Sleep(ctx, d)
	case actions.StepWait:
		out, attempts, err = it.wait(ctx, s)
	case actions.StepUpdate:
		out, attempts, err = it.update(ctx, s)
	case actions.StepParallel:
		err = it.parallel(ctx, s.Steps)
	default:
		err = temporal.NewNonRetryableApplicationError("unknown step type "+s.Type, "InvalidStep", nil)
	}
	end := workflow.Now(ctx).UTC()
	status := actions.StatusSuccess
	var stop *stopError
	switch {
	case err == nil:
	case isCancel(ctx, err):
		status = actions.StatusCancelled
	case errors.As(err, &stop):
		status = stop.status
	default:
		status = actions.StatusFailure
	}
	if out != nil {
		it.outputs[s.ID] = out
	}
	it.setStep(s.ID, kind, func(r *actions.StepRun) {
		r.Status, r.EndedAt, r.Attempts, r.Output = status, &end, attempts, out
		if err != nil {
			r.Error = rootMessage(err)
		}
	})
	if status == actions.StatusSuccess {
		it.log(ctx, "info", s.ID, "step %s succeeded", s.ID)
	} else {
		it.log(ctx, "error", s.ID, "step %s ended %s: %s", s.ID, status, rootMessage(err))
	}
	if it.run.Status != actions.StatusInProgress && err == nil {
		it.run.Status = actions.StatusInProgress
	}
	if status != actions.StatusCancelled {
		it.save(ctx)
	}
	if err != nil && status == actions.StatusFailure {
		return fmt.Errorf("step %s: %s", s.ID, rootMessage(err))
	}
	return err
}

// rootMessage is the innermost message of an activity or application
// error, without Temporal's wrapping.
func rootMessage(err error) string {
	if err == nil {
		return ""
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "timed out (" + timeout.TimeoutType().String() + ")"
	}
	return err.Error()
}

// runContext is the jq input of templated step fields.
func (it *interpreter) runContext() json.RawMessage {
	steps := map[string]any{}
	for _, r := range it.run.Steps {
		entry := map[string]any{"status": r.Status}
		if out, ok := it.outputs[r.ID]; ok {
			var v any
			_ = json.Unmarshal(out, &v)
			entry["output"] = v
		}
		steps[r.ID] = entry
	}
	doc := map[string]any{
		"run":    it.runSummary(),
		"inputs": it.run.Inputs,
		"entity": it.entity,
		"steps":  steps,
	}
	raw, _ := json.Marshal(doc) // map keys are sorted: deterministic
	return raw
}

// runSummary is the "run" object of webhook bodies (DESIGN §4).
func (it *interpreter) runSummary() map[string]any {
	return map[string]any{
		"id": it.run.ID, "action": it.run.Action, "inputs": it.run.Inputs,
		"entity": it.run.Entity, "blueprint": it.run.Blueprint, "triggeredBy": it.run.TriggeredBy,
	}
}

// activityOptions derives activity options from a step's timeout and retry.
func activityOptions(ctx workflow.Context, s actions.Step) (workflow.Context, int) {
	timeout := defaultStepTimeout
	if s.Timeout != "" {
		if d, err := actions.ParseDuration(s.Timeout); err == nil && d > 0 {
			timeout = d
		}
	}
	rp := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: defaultAttempts}
	if r := s.Retry; r != nil {
		if r.MaximumAttempts > 0 {
			rp.MaximumAttempts = int32(r.MaximumAttempts)
		}
		if d, err := actions.ParseDuration(r.InitialInterval); err == nil && d > 0 {
			rp.InitialInterval = d
		}
		if r.BackoffCoefficient >= 1 {
			rp.BackoffCoefficient = r.BackoffCoefficient
		}
		if d, err := actions.ParseDuration(r.MaximumInterval); err == nil && d > 0 {
			rp.MaximumInterval = d
		}
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: timeout, RetryPolicy: rp}), int(rp.MaximumAttempts)
}

func (it *interpreter) webhook(ctx workflow.Context, s actions.Step) (json.RawMessage, int, error) {
	actx, maxAttempts := activityOptions(ctx, s)
	req := WebhookRequest{
		RunID: it.run.ID, Step: s.ID, Action: it.run.Action, URL: s.URL, Method: s.Method,
		Headers: s.Headers, Body: s.Body, Context: it.runContext(), Run: it.runSummary(),
	}
	if len(s.HeadersSet) > 0 {
		ref := actions.HeaderRefOf(it.run, s.ID)
		req.HeadersFrom = &ref
	}
	var res WebhookResult
	if err := workflow.ExecuteActivity(actx, activityWebhook, req).Get(ctx, &res); err != nil {
		// A non-2xx answer carries the result: it is the step's output.
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.HasDetails() && app.Details(&res) == nil {
			out, _ := json.Marshal(res)
			return out, res.Attempt, err
		}
		return nil, maxAttempts, err
	}
	it.log(ctx, "info", s.ID, "webhook %s answered %d", s.URL, res.Status)
	out, _ := json.Marshal(res)
	return out, res.Attempt, nil
}

func (it *interpreter) plugin(ctx workflow.Context, s actions.Step) (json.RawMessage, int, error) {
	actx, maxAttempts := activityOptions(ctx, s)
	req := ActRequest{Integration: s.Integration, Action: s.Action, Inputs: s.Inputs, Context: it.runContext()}
	if it.run.Entity != "" {
		req.Blueprint, req.Entity = it.run.Blueprint, it.run.Entity
	}
	var res ActResult
	if err := workflow.ExecuteActivity(actx, activityAct, req).Get(ctx, &res); err != nil {
		return nil, maxAttempts, err
	}
	for _, l := range res.Logs {
		it.log(ctx, "info", s.ID, "%s", l)
	}
	if res.Message != "" {
		it.log(ctx, "info", s.ID, "%s", res.Message)
	}
	it.run.Affected = append(it.run.Affected, res.Affected...)
	out := res.Outputs
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	return out, res.Attempt, nil
}

// update merge-patches the step's entity (default: the run's entity).
func (it *interpreter) update(ctx workflow.Context, s actions.Step) (json.RawMessage, int, error) {
	actx, maxAttempts := activityOptions(ctx, s)
	req := UpdateRequest{
		Blueprint: strconv.Quote(it.run.Blueprint), Identifier: strconv.Quote(it.run.Entity),
		Patch: s.Patch, Context: it.runContext(), RunID: it.run.ID, Action: it.run.Action, By: it.run.TriggeredBy,
	}
	if s.Entity != nil {
		req.Blueprint, req.Identifier = actions.LiteralOrJQ(s.Entity.Blueprint), actions.LiteralOrJQ(s.Entity.Identifier)
	}
	var res UpdateResult
	if err := workflow.ExecuteActivity(actx, activityUpdate, req).Get(ctx, &res); err != nil {
		return nil, maxAttempts, err
	}
	it.log(ctx, "info", s.ID, "updated %s/%s", res.Blueprint, res.Identifier)
	it.run.Affected = append(it.run.Affected, actions.Affected{Blueprint: res.Blueprint, Identifier: res.Identifier, Change: "upserted"})
	out, _ := json.Marshal(res)
	return out, res.Attempt, nil
}

// wait polls the catalog (an activity per poll) until the step's rule
// holds on its entity or the timeout passes.
func (it *interpreter) wait(ctx workflow.Context, s actions.Step) (json.RawMessage, int, error) {
	timeout, _ := actions.ParseDuration(s.Timeout)
	poll := defaultPollInterval
	if d, err := actions.ParseDuration(s.PollInterval); err == nil && d > 0 {
		poll = max(d, minPollInterval)
	}
	deadline := workflow.Now(ctx).Add(timeout)
	actx, _ := activityOptions(ctx, actions.Step{Retry: &actions.Retry{MaximumAttempts: 5}})
	req := CheckRequest{Blueprint: actions.LiteralOrJQ(s.Entity.Blueprint), Identifier: actions.LiteralOrJQ(s.Entity.Identifier), Until: s.Until, Context: it.runContext()}
	for polls := 1; ; polls++ {
		var res CheckResult
		if err := workflow.ExecuteActivity(actx, activityCheckEntity, req).Get(ctx, &res); err != nil {
			return nil, polls, err
		}
		if res.Holds {
			out, _ := json.Marshal(res)
			return out, polls, nil
		}
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			return nil, polls, &stopError{status: actions.StatusTimedOut, reason: fmt.Sprintf("step %s: %s/%s did not reach the expected state within %s", s.ID, res.Blueprint, res.Identifier, s.Timeout)}
		}
		if err := workflow.Sleep(ctx, min(poll, left)); err != nil {
			return nil, polls, err
		}
	}
}

// parallel runs a group: each step starts once its dependsOn siblings
// succeeded; the first failure cancels the rest.
func (it *interpreter) parallel(ctx workflow.Context, steps []actions.Step) error {
	gctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	futures := make(map[string]workflow.Future, len(steps))
	setters := make([]workflow.Settable, len(steps))
	for i, s := range steps {
		futures[s.ID], setters[i] = workflow.NewFuture(gctx)
	}
	for i, s := range steps {
		workflow.Go(gctx, func(c workflow.Context) {
			for _, d := range s.DependsOn {
				if f, ok := futures[d]; ok {
					if err := f.Get(c, nil); err != nil {
						setters[i].SetError(fmt.Errorf("step %s: dependency %s did not succeed", s.ID, d))
						return
					}
				}
			}
			setters[i].SetError(it.step(c, s, false))
		})
	}
	var first error
	for _, s := range steps {
		if err := futures[s.ID].Get(ctx, nil); err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// compensate runs the onFailure steps of every started step in reverse
// order, then (withPlan) the plan's onFailure steps; their failures are
// logged.
func (it *interpreter) compensate(ctx workflow.Context, withPlan bool) {
	var todo []actions.Step
	for i := len(it.compensations) - 1; i >= 0; i-- {
		todo = append(todo, it.compensations[i]...)
	}
	if withPlan {
		todo = append(todo, it.plan.OnFailure...)
	}
	if len(todo) == 0 {
		return
	}
	it.log(ctx, "warn", "", "running %d compensation step(s)", len(todo))
	for _, s := range todo {
		if err := it.step(ctx, s, true); err != nil {
			it.log(ctx, "error", s.ID, "compensation %s failed: %v", s.ID, err)
		}
	}
}

// approval waits for the policy's number of distinct approvals (never the
// requester's), a decline, or the deadline, after which it declines or
// escalates to the escalation approvers once.
func (it *interpreter) approval(ctx workflow.Context, s actions.Step) (json.RawMessage, error) {
	pol := s.ApprovalPolicy()
	need := max(pol.Count, 1)
	timeout, _ := actions.ParseDuration(pol.Timeout)
	escalated := false
	approved := []string{}
	pending := &actions.PendingApproval{Step: s.ID, Policy: pol, Approved: approved}
	it.run.Pending = pending
	it.run.Status = actions.StatusWaitingForApproval
	it.setStep(s.ID, actions.StepApproval, func(r *actions.StepRun) { r.Status = actions.StatusWaitingForApproval })
	it.log(ctx, "info", s.ID, "waiting for %d approval(s)", need)
	defer func() { it.run.Pending = nil }()

	for {
		tctx, cancelTimer := workflow.WithCancel(ctx)
		var timer workflow.Future
		if timeout > 0 {
			pending.Deadline = workflow.Now(ctx).Add(timeout).UTC()
			timer = workflow.NewTimer(tctx, timeout)
		}
		it.save(ctx)
		timedOut := false
		cancelled := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(it.decisions, func(c workflow.ReceiveChannel, _ bool) {})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		if timer != nil {
			sel.AddFuture(timer, func(f workflow.Future) { timedOut = f.Get(ctx, nil) == nil })
		}
		for !timedOut && !cancelled {
			sel.Select(ctx)
			if timedOut || cancelled {
				break
			}
			var d actions.Decision
			for it.decisions.ReceiveAsync(&d) {
				switch {
				case d.Step != s.ID:
					it.log(ctx, "warn", s.ID, "ignored a decision by %s for step %s", d.By, d.Step)
				case d.By == it.run.TriggeredBy:
					it.log(ctx, "warn", s.ID, "ignored %s's decision on their own run", d.By)
				case slices.Contains(approved, d.By):
					it.log(ctx, "warn", s.ID, "ignored a second decision by %s", d.By)
				default:
					it.run.Approvals = append(it.run.Approvals, actions.ApprovalRecord{Step: s.ID, By: d.By, Decision: d.Decision, Comment: d.Comment, At: workflow.Now(ctx).UTC()})
					if d.Decision == actions.DecisionDecline {
						cancelTimer()
						it.log(ctx, "info", s.ID, "declined by %s", d.By)
						return nil, &stopError{status: actions.StatusDeclined, reason: "declined by " + d.By}
					}
					approved = append(approved, d.By)
					pending.Approved = approved
					it.log(ctx, "info", s.ID, "approved by %s (%d/%d)", d.By, len(approved), need)
					if len(approved) >= need {
						cancelTimer()
						out, _ := json.Marshal(map[string]any{"approvedBy": approved})
						return out, nil
					}
				}
			}
			it.save(ctx)
		}
		cancelTimer()
		if cancelled {
			return nil, workflow.ErrCanceled
		}
		if pol.OnTimeout != "escalate" || escalated || pol.Escalation == nil {
			// A deadline declines the run (nothing ran, so nothing is
			// compensated). Histories recorded before this change ended
			// TIMED_OUT here and replay so.
			status, verb := actions.StatusDeclined, "declined"
			if workflow.GetVersion(ctx, versionDeadlineDeclines, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				status, verb = actions.StatusTimedOut, "timed out"
			}
			return nil, &stopError{status: status, reason: fmt.Sprintf("approval %s %s: no decision within %s", s.ID, verb, pol.Timeout)}
		}
		escalated = true
		pending.Escalated = true
		if pol.Escalation.Timeout != "" {
			timeout, _ = actions.ParseDuration(pol.Escalation.Timeout)
		}
		it.log(ctx, "warn", s.ID, "approval timed out after %s: escalated", pol.Timeout)
	}
}
