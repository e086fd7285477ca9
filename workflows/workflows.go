// Package workflows holds Portico's Temporal workflows and activities:
// ActionRun, the one interpreter that executes every action run (its
// approvals, webhooks, plugin actions, waits, sleeps, parallel groups and
// compensations); Timer, the durable TTL timer of one entity property;
// and Resync, one turn of an integration's resync schedule.
// Runner implements actions.Runner on a Temporal client; Schedules keeps
// the integrations' resync schedules as Temporal Schedules.
// Workflows orchestrate and stay deterministic; activities do the I/O.
package workflows

import (
	"time"
)

// Names shared by workers, clients and committed histories. Changing one
// breaks running workflows.
const (
	// TaskQueue is the default task queue of workers and runs.
	TaskQueue = "portico"
	// ActionRunWorkflow is the interpreter's workflow type.
	ActionRunWorkflow = "ActionRun"
	// TimerWorkflow is the TTL timer's workflow type.
	TimerWorkflow = "Timer"
	// ResyncWorkflow is one scheduled resync of an integration.
	ResyncWorkflow = "Resync"
	// ResyncSchedulePrefix + integration id is the Temporal schedule that
	// starts an integration's resyncs (and the prefix of their workflow ids).
	ResyncSchedulePrefix = "resync:"
	// SignalDecision carries an actions.Decision to a run.
	SignalDecision = "decision"
	// SignalReschedule carries a TimerInput's new expiry to a timer.
	SignalReschedule = "reschedule"
	// QueryRun returns a run's live actions.Run.
	QueryRun = "run"
)

// Change ids of workflow.GetVersion: behaviour changed after histories
// that replay the old way were recorded.
const (
	// versionDeadlineDeclines: an approval deadline ends the run DECLINED
	// (before: TIMED_OUT, with compensations).
	versionDeadlineDeclines = "approval-deadline-declines"
	// versionCompensateStopped: a DECLINED or CANCELLED run compensates
	// the steps it started (before: only FAILURE and TIMED_OUT did).
	versionCompensateStopped = "compensate-stopped-runs"
	// versionTimerDrains: a timer takes the reschedules signalled while it
	// expired (before: dropped).
	versionTimerDrains = "timer-drains-reschedules"
)

// Activity names (methods of Activities).
const (
	activitySaveRun     = "SaveRun"
	activityWebhook     = "Webhook"
	activityAct         = "Act"
	activityCheckEntity = "CheckEntity"
	activityUpdate      = "UpdateEntity"
	activityRunResync   = "RunResync"
)

// defaults of the interpreter.
const (
	defaultStepTimeout  = 30 * time.Second
	defaultPollInterval = 10 * time.Second
	minPollInterval     = time.Second
	defaultAttempts     = 3
)
