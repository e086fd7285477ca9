package actions

import (
	"encoding/json"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// Run statuses.
const (
	StatusWaitingForApproval = "WAITING_FOR_APPROVAL"
	StatusInProgress         = "IN_PROGRESS"
	StatusSuccess            = "SUCCESS"
	StatusFailure            = "FAILURE"
	StatusDeclined           = "DECLINED"
	StatusCancelled          = "CANCELLED"
	StatusTimedOut           = "TIMED_OUT"
)

// Step statuses beside the run statuses.
const (
	StepPending = "PENDING"
	StepSkipped = "SKIPPED"
)

// Decisions on an approval.
const (
	DecisionApprove = "approve"
	DecisionDecline = "decline"
)

// Run is one execution of an action. The workflow executing it holds the
// authoritative state; the Store keeps a mirror written on every
// transition (Revision orders the writes).
type Run struct {
	ID            string           `json:"id"`
	Action        string           `json:"action"`
	ActionVersion int              `json:"actionVersion"`
	Workflow      string           `json:"workflow,omitempty"`
	WorkflowVer   int              `json:"workflowVersion,omitempty"`
	Status        string           `json:"status"`
	Blueprint     string           `json:"blueprint"`
	Entity        string           `json:"entity,omitempty"`
	Inputs        map[string]any   `json:"inputs"`
	TriggeredBy   string           `json:"triggeredBy"`
	Steps         []StepRun        `json:"steps"`
	Approvals     []ApprovalRecord `json:"approvals"`
	// Pending is the approval the run waits for (nil otherwise).
	Pending  *PendingApproval `json:"pendingApproval,omitempty"`
	Logs     []LogLine        `json:"logs"`
	Affected []Affected       `json:"affected"`
	Error    string           `json:"error,omitempty"`
	Link     string           `json:"link"`
	// Depth is the automation chain depth of the request that started the
	// run (see catalog.WithDepth); its run events carry it.
	Depth int `json:"depth,omitempty"`
	// Revision grows with every transition.
	Revision  int        `json:"revision"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	EndedAt   *time.Time `json:"endedAt"`
}

// Finished reports whether the run reached a final status.
func (r *Run) Finished() bool {
	switch r.Status {
	case StatusSuccess, StatusFailure, StatusDeclined, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// StepRun is the state of one step of a run.
type StepRun struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Status    string          `json:"status"`
	StartedAt *time.Time      `json:"startedAt"`
	EndedAt   *time.Time      `json:"endedAt"`
	Attempts  int             `json:"attempts"`
	Output    json.RawMessage `json:"output"`
	Error     string          `json:"error,omitempty"`
	// Compensation marks an onFailure step.
	Compensation bool `json:"compensation,omitempty"`
}

// ApprovalRecord is one decision on a run.
type ApprovalRecord struct {
	Step     string    `json:"step"`
	By       string    `json:"by"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// PendingApproval is the approval step a run waits on.
type PendingApproval struct {
	Step      string    `json:"step"`
	Policy    Approval  `json:"policy"`
	Escalated bool      `json:"escalated,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Approved  []string  `json:"approved"`
}

// LogLine is one line of a run's log.
type LogLine struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message"`
}

// Affected is an entity a run created, updated or deleted.
type Affected struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
	Change     string `json:"change"` // upserted | deleted
}

// Ref returns the affected entity's identity.
func (a Affected) Ref() catalog.Ref {
	return catalog.Ref{Blueprint: a.Blueprint, Identifier: a.Identifier}
}

// MaxRunsScanned bounds the index entries (and run records) one ListRuns
// call reads, whatever its filters: a page may end before Limit runs
// matched, with a Next cursor to continue from.
const MaxRunsScanned = 1000

// RunFilter selects runs to list; empty fields match all.
type RunFilter struct {
	Action      string
	Status      string
	Entity      string // identifier, or blueprint/identifier
	TriggeredBy string // the requester's id
	Limit       int
	Cursor      string
	// Visible, when set, keeps only the runs it accepts (the Service sets
	// it to what the caller may see).
	Visible func(*Run) (bool, error)
}

// RunPage is one page of runs, newest first.
type RunPage struct {
	Runs []*Run `json:"runs"`
	Next string `json:"next"`
}

// StartRequest is everything a Runner needs to start a run: the initial
// record, the plan at the versions the run started with and the entity
// as it was when triggered.
type StartRequest struct {
	Run    *Run            `json:"run"`
	Plan   Plan            `json:"plan"`
	Entity json.RawMessage `json:"entity"`
}

// Decision is an approver's decision as signalled to a run.
type Decision struct {
	Step     string `json:"step"`
	By       string `json:"by"`
	Decision string `json:"decision"`
	Comment  string `json:"comment,omitempty"`
}
