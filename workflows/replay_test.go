package workflows

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/core/actions"
)

// TestReplay replays committed histories (recorded on the embedded server
// by devserver's TestRecordHistories): a workflow change that would break
// running workflows fails here.
func TestReplay(t *testing.T) {
	tests := []struct {
		file string
		wf   any
		name string
	}{
		{"actionrun.json", ActionRun, ActionRunWorkflow},
		{"actionrun-declined.json", ActionRun, ActionRunWorkflow},
		{"actionrun-deadline.json", ActionRun, ActionRunWorkflow},
		{"actionrun-escalated.json", ActionRun, ActionRunWorkflow},
		{"actionrun-wait-update.json", ActionRun, ActionRunWorkflow},
		{"actionrun-wait-timeout.json", ActionRun, ActionRunWorkflow},
		{"actionrun-compensate.json", ActionRun, ActionRunWorkflow},
		{"actionrun-cancelled.json", ActionRun, ActionRunWorkflow},
		{"timer.json", Timer, TimerWorkflow},
		{"resync.json", Resync, ResyncWorkflow},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(tt.wf, workflow.RegisterOptions{Name: tt.name})
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger, filepath.Join("testdata", tt.file)); err != nil {
				t.Fatalf("replay %s: %v", tt.file, err)
			}
		})
	}
}

// TestReplayDetectsNondeterminism proves the harness catches a breaking
// change: a workflow registered as ActionRun that sleeps where the
// recorded run (which TestReplay replays fine) ran its first webhook fails
// replay with the SDK's nondeterminism error (code TMPRL1100).
func TestReplayDetectsNondeterminism(t *testing.T) {
	changed := func(ctx workflow.Context, in RunInput) (*actions.Run, error) {
		return in.Run, workflow.Sleep(ctx, time.Second)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: ActionRunWorkflow})
	err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger, filepath.Join("testdata", "actionrun-compensate.json"))
	if err == nil || !strings.Contains(err.Error(), "TMPRL1100") {
		t.Fatalf("replay of a changed workflow: %v, want a nondeterminism error", err)
	}
}
