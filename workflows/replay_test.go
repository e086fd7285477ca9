package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
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
		{"timer.json", Timer, TimerWorkflow},
		{"resync.json", Resync, ResyncWorkflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(tt.wf, workflow.RegisterOptions{Name: tt.name})
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger, filepath.Join("testdata", tt.file)); err != nil {
				t.Fatalf("replay %s: %v", tt.file, err)
			}
		})
	}
}
