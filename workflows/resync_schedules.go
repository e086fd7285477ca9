package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/portico-dev/portico/host/integrations"
)

// Schedules implements integrations.Scheduler with Temporal Schedules:
// schedule "resync:<integration id>" starts a Resync workflow every
// period on the task queue, skipping a turn while the previous one runs.
// Schedules live in the Temporal server, so any process with a client
// (the API included) keeps them; workers run what they start. They are
// visible and pausable in Temporal's UI and CLI as well as through
// Portico's API.
type Schedules struct {
	c         client.Client
	taskQueue string
}

var _ integrations.Scheduler = (*Schedules)(nil)

// NewSchedules returns the schedules of c, starting Resync workflows on
// taskQueue ("" = TaskQueue).
func NewSchedules(c client.Client, taskQueue string) *Schedules {
	if taskQueue == "" {
		taskQueue = TaskQueue
	}
	return &Schedules{c: c, taskQueue: taskQueue}
}

// ResyncScheduleID is the Temporal schedule id of an integration's resyncs.
func ResyncScheduleID(integration string) string { return ResyncSchedulePrefix + integration }

// catchupWindow is how late a missed turn may still run after an outage:
// one period (at least a minute), so an outage costs one catch-up resync,
// not one per missed period.
func catchupWindow(every time.Duration) time.Duration { return max(every, time.Minute) }

func (s *Schedules) action(id string) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:        ResyncScheduleID(id),
		Workflow:  ResyncWorkflow,
		Args:      []any{ResyncInput{Integration: id}},
		TaskQueue: s.taskQueue,
	}
}

// Ensure implements integrations.Scheduler: it creates the schedule, or
// updates its period, action and policies when they differ (its paused
// state and note stay).
func (s *Schedules) Ensure(ctx context.Context, id string, every time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	_, err := s.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            ResyncScheduleID(id),
		Spec:          spec,
		Action:        s.action(id),
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchupWindow(every),
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return scheduleErr(err)
	}
	h := s.c.ScheduleClient().GetHandle(ctx, ResyncScheduleID(id))
	return scheduleErr(h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			cur := in.Description.Schedule
			if s.current(cur, every) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			cur.Spec = &spec
			cur.Action = s.action(id)
			cur.Policy = &client.SchedulePolicies{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchupWindow(every)}
			return &client.ScheduleUpdate{Schedule: &cur}, nil
		},
	}))
}

// current reports whether a schedule already runs Resync every period on
// our task queue with our policies.
func (s *Schedules) current(cur client.Schedule, every time.Duration) bool {
	act, ok := cur.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != ResyncWorkflow || act.TaskQueue != s.taskQueue {
		return false
	}
	if cur.Spec == nil || len(cur.Spec.Intervals) != 1 || cur.Spec.Intervals[0] != (client.ScheduleIntervalSpec{Every: every}) ||
		len(cur.Spec.Calendars) > 0 || len(cur.Spec.CronExpressions) > 0 {
		return false
	}
	return cur.Policy != nil && cur.Policy.Overlap == enumspb.SCHEDULE_OVERLAP_POLICY_SKIP && cur.Policy.CatchupWindow == catchupWindow(every)
}

// Remove implements integrations.Scheduler.
func (s *Schedules) Remove(ctx context.Context, id string) error {
	err := scheduleErr(s.c.ScheduleClient().GetHandle(ctx, ResyncScheduleID(id)).Delete(ctx))
	if errors.Is(err, integrations.ErrNoSchedule) {
		return nil
	}
	return err
}

// Describe implements integrations.Scheduler.
func (s *Schedules) Describe(ctx context.Context, id string) (*integrations.ScheduleState, error) {
	d, err := s.c.ScheduleClient().GetHandle(ctx, ResyncScheduleID(id)).Describe(ctx)
	if err != nil {
		return nil, scheduleErr(err)
	}
	st := &integrations.ScheduleState{ID: ResyncScheduleID(id)}
	if sp := d.Schedule.Spec; sp != nil && len(sp.Intervals) > 0 {
		st.Every = shortDuration(sp.Intervals[0].Every)
	}
	if ss := d.Schedule.State; ss != nil {
		st.Paused, st.Note = ss.Paused, ss.Note
	}
	if next := d.Info.NextActionTimes; len(next) > 0 && !st.Paused {
		at := next[0].UTC()
		st.NextRunAt = &at
	}
	if recent := d.Info.RecentActions; len(recent) > 0 {
		at := recent[len(recent)-1].ActualTime.UTC()
		st.LastRunAt = &at
	}
	return st, nil
}

// SetPaused implements integrations.Scheduler.
func (s *Schedules) SetPaused(ctx context.Context, id string, paused bool, note string) error {
	h := s.c.ScheduleClient().GetHandle(ctx, ResyncScheduleID(id))
	if paused {
		return scheduleErr(h.Pause(ctx, client.SchedulePauseOptions{Note: note}))
	}
	return scheduleErr(h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}))
}

// List implements integrations.Scheduler: the integrations of every
// resync schedule in the namespace (eventually consistent: a schedule
// created a moment ago may be missing).
func (s *Schedules) List(ctx context.Context) ([]string, error) {
	it, err := s.c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, scheduleErr(err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, scheduleErr(err)
		}
		if id, ok := strings.CutPrefix(e.ID, ResyncSchedulePrefix); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// scheduleErr maps Temporal's answers to the integrations' schedule errors.
func scheduleErr(err error) error {
	var nf *serviceerror.NotFound
	var unavailable *serviceerror.Unavailable
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return fmt.Errorf("%w: %v", integrations.ErrNoSchedule, err)
	case errors.As(err, &unavailable), errors.Is(err, context.DeadlineExceeded), isDeadline(err):
		return fmt.Errorf("%w: %v", integrations.ErrSchedulesUnavailable, err)
	}
	return fmt.Errorf("temporal schedule: %w", err)
}

// isDeadline reports a gRPC deadline, which is how an unreachable
// Temporal usually answers.
func isDeadline(err error) bool {
	var dl *serviceerror.DeadlineExceeded
	return errors.As(err, &dl)
}

// shortDuration formats d without zero trailing units: 15m, 1h, 1h30m, 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
