package workflows

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register adds every workflow and the activities to a worker.
func Register(w worker.Registry, acts *Activities) {
	w.RegisterWorkflowWithOptions(ActionRun, workflow.RegisterOptions{Name: ActionRunWorkflow})
	w.RegisterWorkflowWithOptions(Timer, workflow.RegisterOptions{Name: TimerWorkflow})
	w.RegisterWorkflowWithOptions(Resync, workflow.RegisterOptions{Name: ResyncWorkflow})
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}

// RegisterAutomations adds the automation delivery workflow and its
// activities to a worker.
func RegisterAutomations(w worker.Registry, acts *AutomationActivities) {
	w.RegisterWorkflowWithOptions(AutomationDelivery, workflow.RegisterOptions{Name: AutomationWorkflow})
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}
