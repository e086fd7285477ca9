package integrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portico-dev/portico/core/catalog"

	"github.com/portico-dev/portico/internal/errkind"
)

// Scheduler keeps durable resync schedules: one per installation with a
// schedule, each starting a scheduled resync every period wherever a
// worker runs. workflows.Schedules implements it with Temporal Schedules;
// without one (serve without Temporal) Run falls back to a ticker loop.
type Scheduler interface {
	// Ensure creates the schedule of installation id or changes its
	// period, keeping whether it is paused.
	Ensure(ctx context.Context, id string, every time.Duration) error
	// Remove deletes the schedule of id; a missing one is no error.
	Remove(ctx context.Context, id string) error
	// Describe returns the schedule of id, or an error wrapping
	// ErrNoSchedule when it does not exist.
	Describe(ctx context.Context, id string) (*ScheduleState, error)
	// SetPaused pauses or unpauses the schedule of id, with a note saying
	// why (an error wrapping ErrNoSchedule when it does not exist).
	SetPaused(ctx context.Context, id string, paused bool, note string) error
	// List returns the installation ids that have a schedule.
	List(ctx context.Context) ([]string, error)
}

// ScheduleState is an installation's durable resync schedule as the API
// shows it.
type ScheduleState struct {
	// ID names the schedule in the workflow engine (Temporal's UI and CLI).
	ID        string     `json:"id"`
	Every     string     `json:"every"`
	Paused    bool       `json:"paused"`
	Note      string     `json:"note,omitempty"`
	NextRunAt *time.Time `json:"nextRunAt,omitempty"`
	LastRunAt *time.Time `json:"lastRunAt,omitempty"`
}

// Schedule errors callers branch on.
var (
	// ErrNoSchedule: the installation has no resync schedule.
	ErrNoSchedule = errkind.New(errkind.Conflict, "integration has no resync schedule", errkind.Code("no_schedule"))
	// ErrSchedulesUnavailable: durable schedules need the Temporal workflow
	// engine, and none is configured or reachable.
	ErrSchedulesUnavailable = errkind.New(errkind.Unavailable, "resync schedules need the Temporal workflow engine",
		errkind.Code("temporal_unavailable"))
)

// Run keeps scheduled resyncs and the watches of plugins that push changes
// (pdk.Info.Watch) going until ctx ends; every replica may run it, a lease
// per installation lets one of them watch it. With a Scheduler it
// reconciles the durable schedules with the installations (retrying until
// that succeeds) and returns: the workflow engine runs them from then on.
// Without one, every installation with a schedule is resynced when its
// last sync started longer ago than the schedule; replicas sharing a
// store may all run this loop, the sync lock lets one of them win.
func (m *Manager) Run(ctx context.Context) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.superviseWatches(ctx)
	}()
	if m.scheduler != nil {
		m.reconcileUntilDone(ctx)
		return
	}
	t := time.NewTicker(m.opts.ScheduleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.runDue(ctx)
		}
	}
}

// runDue starts the resyncs that are due.
func (m *Manager) runDue(ctx context.Context) {
	all, err := m.store.Installations(ctx)
	if err != nil {
		m.log.Warn("scheduled resyncs: list integrations", "err", err)
		return
	}
	now := time.Now()
	for _, inst := range all {
		every, err := time.ParseDuration(inst.Spec.Schedule)
		if err != nil || every <= 0 {
			continue
		}
		last := inst.UpdatedAt // first run one period after installing
		if sid, err := m.store.LastSync(ctx, inst.ID); err == nil && sid != "" {
			s, err := m.store.Sync(ctx, inst.ID, sid)
			switch {
			case err == nil:
				if s.StartedAt.After(last) {
					last = s.StartedAt
				}
			case !errors.Is(err, catalog.ErrNotFound):
				continue
			}
		}
		if now.Sub(last) < every {
			continue
		}
		if _, err := m.StartResync(ctx, inst.ID, TriggerSchedule); err != nil && !errors.Is(err, ErrSyncRunning) {
			m.log.Warn("scheduled resync", "integration", inst.ID, "err", err)
		}
	}
}

// StartScheduledResync starts a scheduled resync of installation id.
// started is false when a resync of it was already running (s is then
// that one, or nil when its record is not readable): this turn of the
// schedule is skipped.
func (m *Manager) StartScheduledResync(ctx context.Context, id string) (s *Sync, started bool, err error) {
	before, err := m.store.LastSync(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("last sync of %s: %w", id, err)
	}
	s, err = m.StartResync(ctx, id, TriggerSchedule)
	switch {
	case errors.Is(err, ErrSyncRunning):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return s, s.ID != before, nil
}

// Reconcile makes the durable schedules match the installations: every
// installation with a schedule has one with its period, no other
// schedule exists. Without a Scheduler it does nothing.
func (m *Manager) Reconcile(ctx context.Context) error {
	if m.scheduler == nil {
		return nil
	}
	all, err := m.store.Installations(ctx)
	if err != nil {
		return fmt.Errorf("reconcile schedules: %w", err)
	}
	var errs []error
	want := map[string]bool{}
	for _, inst := range all {
		every, err := time.ParseDuration(inst.Spec.Schedule)
		if err != nil || every <= 0 {
			continue
		}
		want[inst.ID] = true
		if err := m.scheduler.Ensure(ctx, inst.ID, every); err != nil {
			errs = append(errs, fmt.Errorf("schedule of %s: %w", inst.ID, err))
		}
	}
	have, err := m.scheduler.List(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list schedules: %w", err))...)
	}
	for _, id := range have {
		if want[id] {
			continue
		}
		if err := m.removeOrphan(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeOrphan removes the schedule of an integration that has none in
// the store, re-checked under the install lock: a Put holding it may have
// created the schedule and not yet stored the installation.
func (m *Manager) removeOrphan(ctx context.Context, id string) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if m.hasSchedule(ctx, id) { // installed since we listed
		return nil
	}
	if err := m.scheduler.Remove(ctx, id); err != nil {
		return fmt.Errorf("remove schedule of %s: %w", id, err)
	}
	m.log.Info("removed resync schedule of a missing integration", "integration", id)
	return nil
}

func (m *Manager) hasSchedule(ctx context.Context, id string) bool {
	inst, err := m.store.Installation(ctx, id)
	return err == nil && inst.Spec.Schedule != ""
}

// reconcileUntilDone retries Reconcile with a growing pause (the workflow
// engine may not be up yet) until it succeeds or ctx ends.
func (m *Manager) reconcileUntilDone(ctx context.Context) {
	wait := time.Second
	for {
		err := m.Reconcile(ctx)
		if err == nil {
			m.log.Info("resync schedules reconciled")
			return
		}
		m.log.Warn("reconcile resync schedules", "err", err, "retryIn", wait)
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// applySchedule makes the durable schedule of id match schedule (a
// validated duration; empty: none). Without a Scheduler it does nothing.
func (m *Manager) applySchedule(ctx context.Context, id, schedule string) error {
	if m.scheduler == nil {
		return nil
	}
	if schedule == "" {
		if err := m.scheduler.Remove(ctx, id); err != nil {
			return fmt.Errorf("remove schedule of integration %s: %w", id, err)
		}
		return nil
	}
	every, err := time.ParseDuration(schedule)
	if err != nil {
		return fmt.Errorf("schedule of integration %s: %w", id, err)
	}
	if err := m.scheduler.Ensure(ctx, id, every); err != nil {
		return fmt.Errorf("schedule of integration %s: %w", id, err)
	}
	return nil
}

// Schedule returns the durable resync schedule of installation id: an
// error wrapping ErrNotFound for an unknown installation, ErrNoSchedule
// when it has no schedule, ErrSchedulesUnavailable without a Scheduler.
func (m *Manager) Schedule(ctx context.Context, id string) (*ScheduleState, error) {
	if _, err := m.scheduledInstallation(ctx, id); err != nil {
		return nil, err
	}
	return m.scheduler.Describe(ctx, id)
}

// PauseSchedule stops the scheduled resyncs of installation id until
// UnpauseSchedule; note says why. A running resync is not interrupted.
func (m *Manager) PauseSchedule(ctx context.Context, id, note string) (*ScheduleState, error) {
	return m.setPaused(ctx, id, true, note)
}

// UnpauseSchedule resumes the scheduled resyncs of installation id.
func (m *Manager) UnpauseSchedule(ctx context.Context, id, note string) (*ScheduleState, error) {
	return m.setPaused(ctx, id, false, note)
}

func (m *Manager) setPaused(ctx context.Context, id string, paused bool, note string) (*ScheduleState, error) {
	every, err := m.scheduledInstallation(ctx, id)
	if err != nil {
		return nil, err
	}
	err = m.scheduler.SetPaused(ctx, id, paused, note)
	if errors.Is(err, ErrNoSchedule) { // installed while no workflow engine was configured
		if err = m.scheduler.Ensure(ctx, id, every); err == nil {
			err = m.scheduler.SetPaused(ctx, id, paused, note)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("schedule of integration %s: %w", id, err)
	}
	return m.scheduler.Describe(ctx, id)
}

// scheduledInstallation returns the schedule period of installation id,
// or why it has no durable schedule.
func (m *Manager) scheduledInstallation(ctx context.Context, id string) (time.Duration, error) {
	inst, err := m.store.Installation(ctx, id)
	if err != nil {
		return 0, err
	}
	every, err := time.ParseDuration(inst.Spec.Schedule)
	if inst.Spec.Schedule == "" || err != nil {
		return 0, fmt.Errorf("%w: %s", ErrNoSchedule, id)
	}
	if m.scheduler == nil {
		return 0, ErrSchedulesUnavailable
	}
	return every, nil
}
