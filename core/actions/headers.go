package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// Webhook headers are write-only: definitions are stored with their
// header values (sealed by the Store), the API shows only their names
// (HeadersSet), and a run's plan carries names only, so the values never
// reach the workflow engine's history; the worker reads them when it
// sends (StepHeaders).

// HeaderRef locates the header values of a run's webhook step: step Step
// of workflow Workflow at WorkflowVersion or, when Workflow is empty, the
// invocation of Action at ActionVersion.
type HeaderRef struct {
	Action          string `json:"action"`
	ActionVersion   int    `json:"actionVersion"`
	Workflow        string `json:"workflow,omitempty"`
	WorkflowVersion int    `json:"workflowVersion,omitempty"`
	Step            string `json:"step"`
}

// HeaderRefOf returns the HeaderRef of step of run r.
func HeaderRefOf(r *Run, step string) HeaderRef {
	return HeaderRef{Action: r.Action, ActionVersion: r.ActionVersion, Workflow: r.Workflow, WorkflowVersion: r.WorkflowVer, Step: step}
}

// Definitions reads definitions at a version (a Store does).
type Definitions interface {
	GetAction(ctx context.Context, id string, version int) (*Action, error)
	GetWorkflow(ctx context.Context, id string, version int) (*Workflow, error)
}

// StepHeaders returns the header values ref locates (nil when the step
// has none). It fails with ErrNotFound when the definition or the step is
// gone.
func StepHeaders(ctx context.Context, defs Definitions, ref HeaderRef) (map[string]string, error) {
	if ref.Workflow == "" {
		a, err := defs.GetAction(ctx, ref.Action, ref.ActionVersion)
		if err != nil {
			return nil, fmt.Errorf("headers of %s: %w", ref.Step, err)
		}
		if ref.Step != WebhookStep || a.Invocation.Type != InvokeWebhook {
			return nil, fmt.Errorf("headers of %s: action %s v%d has no such webhook: %w", ref.Step, ref.Action, ref.ActionVersion, ErrNotFound)
		}
		return a.Invocation.Headers, nil
	}
	w, err := defs.GetWorkflow(ctx, ref.Workflow, ref.WorkflowVersion)
	if err != nil {
		return nil, fmt.Errorf("headers of %s: %w", ref.Step, err)
	}
	var found *Step
	w.Walk(func(s *Step) {
		if s.ID == ref.Step && s.Kind() == StepWebhook {
			found = s
		}
	})
	if found == nil {
		return nil, fmt.Errorf("headers of %s: workflow %s v%d has no such webhook step: %w", ref.Step, ref.Workflow, ref.WorkflowVersion, ErrNotFound)
	}
	return found.Headers, nil
}

// Walk calls fn with every step of the workflow: its steps, parallel
// children and compensations, depth first.
func (w *Workflow) Walk(fn func(*Step)) {
	walkSteps(w.Steps, fn)
	walkSteps(w.OnFailure, fn)
}

func walkSteps(steps []Step, fn func(*Step)) {
	for i := range steps {
		fn(&steps[i])
		walkSteps(steps[i].Steps, fn)
		walkSteps(steps[i].OnFailure, fn)
	}
}

// Redacted returns a copy of the action as the API shows it: header
// names, no values.
func (a *Action) Redacted() *Action {
	out := clone(a)
	out.Invocation.HeadersSet = headerNames(out.Invocation.Headers)
	out.Invocation.Headers = nil
	return out
}

// Redacted returns a copy of the workflow as the API shows it: header
// names, no values.
func (w *Workflow) Redacted() *Workflow {
	out := clone(w)
	out.Walk(func(s *Step) {
		s.HeadersSet = headerNames(s.Headers)
		s.Headers = nil
	})
	return out
}

// keepHeaders gives a written action the stored headers of prev (nil:
// none) when it omits them, and drops the read-only names.
func (a *Action) keepHeaders(prev *Action) {
	a.Invocation.HeadersSet = nil
	if a.Invocation.Headers == nil && prev != nil && a.Invocation.Type == InvokeWebhook && prev.Invocation.Type == InvokeWebhook {
		a.Invocation.Headers = prev.Invocation.Headers
	}
}

// keepHeaders gives each webhook step of a written workflow that omits
// its headers those of the stored step with the same id (prev nil: none),
// and drops the read-only names.
func (w *Workflow) keepHeaders(prev *Workflow) {
	stored := map[string]map[string]string{}
	if prev != nil {
		prev.Walk(func(s *Step) {
			if s.Kind() == StepWebhook && s.Headers != nil {
				stored[s.ID] = s.Headers
			}
		})
	}
	w.Walk(func(s *Step) {
		s.HeadersSet = nil
		if s.Headers == nil && s.Kind() == StepWebhook {
			s.Headers = stored[s.ID]
		}
	})
}

func headerNames(h map[string]string) []string {
	if len(h) == 0 {
		return nil
	}
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clone deep-copies a definition (every field has a JSON form).
func clone[T any](v *T) *T {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	return &out
}
