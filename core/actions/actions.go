// Package actions is the domain of self-service actions, composed
// workflows and their runs: definitions and their validation, the run
// record, and the Service the API calls. Runs execute on Temporal behind
// the small Runner interface this package defines (package workflows
// implements it); definitions and run records live in a Store
// (actions/redisactions).
package actions

import (
	"slices"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
)

// Operations an action performs on its blueprint.
const (
	OperationCreate = "CREATE"
	OperationDay2   = "DAY-2"
	OperationDelete = "DELETE"
)

// Invocation types of an action.
const (
	InvokeWebhook  = "webhook"
	InvokePlugin   = "plugin"
	InvokeWorkflow = "workflow"
	// InvokeUpdate merge-patches the run's entity in the catalog (e.g.
	// "extend TTL by N days").
	InvokeUpdate = "update"
)

// Action is a self-service action definition (DESIGN §4).
type Action struct {
	Identifier  string        `json:"identifier"`
	Title       string        `json:"title,omitempty"`
	Description string        `json:"description,omitempty"`
	Blueprint   string        `json:"blueprint"`
	Operation   string        `json:"operation"`
	UserInputs  *Inputs       `json:"userInputs,omitempty"`
	Condition   *catalog.Rule `json:"condition,omitempty"`
	Invocation  Invocation    `json:"invocation"`
	Approval    *Approval     `json:"approval,omitempty"`
	Permissions *Permissions  `json:"permissions,omitempty"`
	Version     int           `json:"version"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
}

// Inputs is the JSON-Schema subset of an action's user inputs: the
// catalog's property schema, plus format "entity" (a string naming an
// entity of Blueprint, optionally one matching Dataset).
type Inputs struct {
	Properties map[string]Input `json:"properties,omitempty"`
	Required   []string         `json:"required,omitempty"`
}

// Input is one user input.
type Input struct {
	catalog.Property
	// Blueprint is the blueprint an input of format "entity" picks from.
	Blueprint string `json:"blueprint,omitempty"`
	// Dataset narrows the entities an "entity" input may pick.
	Dataset *catalog.Rule `json:"dataset,omitempty"`
}

// Invocation is what an action runs: a signed webhook, a plugin action
// or a composed workflow.
type Invocation struct {
	Type string `json:"type"`
	// webhook
	URL    string `json:"url,omitempty"`
	Method string `json:"method,omitempty"`
	// Headers are write-only, like an integration's secrets (CI
	// credentials go here): stored sealed, never shown. On a PUT, nil keeps
	// the stored headers and {} clears them.
	Headers map[string]string `json:"headers,omitempty"`
	// HeadersSet names the headers that have a value (read-only).
	HeadersSet []string `json:"headersSet,omitempty"`
	Body       string   `json:"body,omitempty"` // jq over the run context
	// plugin
	Integration string `json:"integration,omitempty"`
	Action      string `json:"action,omitempty"`
	Inputs      string `json:"inputs,omitempty"` // jq over the run context
	// workflow
	Workflow string `json:"workflow,omitempty"`
	// update: jq over the run context yielding a JSON merge patch of the
	// run's entity, e.g. {properties: {expiresAt: …}}
	Patch string `json:"patch,omitempty"`
	// Retry applies to webhook, plugin and update invocations.
	Retry *Retry `json:"retry,omitempty"`
}

// Approval is an approval policy: Count distinct approvers admitted by
// Approvers must approve before Timeout; then OnTimeout declines the run
// or escalates it to Escalation's approvers. The requester never counts.
type Approval struct {
	Count      int            `json:"count,omitempty"`
	Approvers  *access.Policy `json:"approvers,omitempty"`
	Timeout    string         `json:"timeout,omitempty"`
	OnTimeout  string         `json:"onTimeout,omitempty"` // decline | escalate
	Escalation *Escalation    `json:"escalation,omitempty"`
}

// Escalation is the second approver group of an escalating policy.
type Escalation struct {
	Approvers *access.Policy `json:"approvers"`
	Timeout   string         `json:"timeout,omitempty"` // default: the first timeout
}

// Permissions say who may execute an action and who may approve its runs:
// an approver must be admitted by the approval policy's approvers and, when
// set, by Approve too. Nil means admins and members.
type Permissions struct {
	Execute *access.Policy `json:"execute,omitempty"`
	Approve *access.Policy `json:"approve,omitempty"`
}

// Retry is a step's retry policy.
type Retry struct {
	MaximumAttempts    int     `json:"maximumAttempts,omitempty"`
	InitialInterval    string  `json:"initialInterval,omitempty"`
	BackoffCoefficient float64 `json:"backoffCoefficient,omitempty"`
	MaximumInterval    string  `json:"maximumInterval,omitempty"`
}

// Workflow is a composed workflow definition: ordered steps and the
// compensations to run when it fails.
type Workflow struct {
	Identifier  string    `json:"identifier"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	Steps       []Step    `json:"steps"`
	OnFailure   []Step    `json:"onFailure,omitempty"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// WebhookStep is the step id of an action's webhook invocation in its
// run's plan.
const WebhookStep = "webhook"

// Step types of a composed workflow.
const (
	StepApproval = "approval"
	StepWebhook  = "webhook"
	StepPlugin   = "plugin"
	StepAction   = "action" // a webhook (url) or plugin (integration) step
	StepWait     = "wait"
	StepSleep    = "sleep"
	StepParallel = "parallel"
	StepUpdate   = "update" // merge-patch an entity of the catalog
)

// Step is one step of a composed workflow; which fields apply depends on
// Type. String fields documented as jq are evaluated over the run context
// {"run", "inputs", "entity", "steps": {"<id>": {"status", "output"}}}.
type Step struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// DependsOn names sibling steps of a parallel group that must finish
	// first (at top level: earlier steps, which always do).
	DependsOn []string `json:"dependsOn,omitempty"`
	Retry     *Retry   `json:"retry,omitempty"`
	// OnFailure are compensations: when the run fails, those of every
	// step that started run in reverse order.
	OnFailure []Step `json:"onFailure,omitempty"`
	// Timeout: approval deadline, wait deadline, or per-attempt limit of
	// webhook and plugin steps.
	Timeout string `json:"timeout,omitempty"`

	// approval
	Count      int            `json:"count,omitempty"`
	Approvers  *access.Policy `json:"approvers,omitempty"`
	OnTimeout  string         `json:"onTimeout,omitempty"`
	Escalation *Escalation    `json:"escalation,omitempty"`

	// webhook (and action with url); Headers and HeadersSet as on an
	// action's Invocation (write-only, names shown).
	URL        string            `json:"url,omitempty"`
	Method     string            `json:"method,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	HeadersSet []string          `json:"headersSet,omitempty"`
	Body       string            `json:"body,omitempty"` // jq

	// plugin (and action with integration)
	Integration string `json:"integration,omitempty"`
	Action      string `json:"action,omitempty"`
	Inputs      string `json:"inputs,omitempty"` // jq

	// sleep
	Duration string `json:"duration,omitempty"`

	// update: Patch (jq) yields a JSON merge patch applied to Entity
	// (default: the run's entity).
	Patch string `json:"patch,omitempty"`

	// wait (and update)
	Entity       *EntitySelector `json:"entity,omitempty"`
	Until        *catalog.Rule   `json:"until,omitempty"`
	PollInterval string          `json:"pollInterval,omitempty"`

	// parallel
	Steps []Step `json:"steps,omitempty"`
}

// EntitySelector names an entity by jq expressions (a plain identifier is
// taken literally).
type EntitySelector struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
}

// ApprovalPolicy returns an approval step's policy.
func (s *Step) ApprovalPolicy() Approval {
	return Approval{Count: s.Count, Approvers: s.Approvers, Timeout: s.Timeout, OnTimeout: s.OnTimeout, Escalation: s.Escalation}
}

// Kind resolves the "action" alias to webhook or plugin.
func (s *Step) Kind() string {
	if s.Type == StepAction {
		if s.Integration != "" {
			return StepPlugin
		}
		return StepWebhook
	}
	return s.Type
}

// Plan is what a run executes: the action's approval and invocation
// flattened into steps (a workflow invocation contributes its steps).
// Webhook steps carry the names of their headers, never the values: the
// worker reads those from the Store when it sends (see HeaderRef).
type Plan struct {
	Steps     []Step `json:"steps"`
	OnFailure []Step `json:"onFailure,omitempty"`
}

// PlanFor flattens an action (and, for workflow invocations, the workflow
// at the version the run starts with) into a Plan.
func PlanFor(a *Action, wf *Workflow) Plan {
	var p Plan
	if a.Approval != nil {
		ap := a.Approval
		id := "approval"
		if wf != nil && slices.ContainsFunc(wf.Steps, func(s Step) bool { return s.ID == id }) {
			id = "action.approval"
		}
		p.Steps = append(p.Steps, Step{ID: id, Type: StepApproval, Count: ap.Count, Approvers: ap.Approvers,
			Timeout: ap.Timeout, OnTimeout: ap.OnTimeout, Escalation: ap.Escalation})
	}
	inv := a.Invocation
	switch inv.Type {
	case InvokeWebhook:
		p.Steps = append(p.Steps, Step{ID: WebhookStep, Type: StepWebhook, URL: inv.URL, Method: inv.Method,
			HeadersSet: headerNames(inv.Headers), Body: inv.Body, Retry: inv.Retry})
	case InvokePlugin:
		p.Steps = append(p.Steps, Step{ID: "plugin", Type: StepPlugin, Integration: inv.Integration,
			Action: inv.Action, Inputs: inv.Inputs, Retry: inv.Retry})
	case InvokeUpdate:
		p.Steps = append(p.Steps, Step{ID: "update", Type: StepUpdate, Patch: inv.Patch, Retry: inv.Retry})
	case InvokeWorkflow:
		if wf != nil {
			r := wf.Redacted()
			p.Steps = append(p.Steps, r.Steps...)
			p.OnFailure = r.OnFailure
		}
	}
	return p
}
