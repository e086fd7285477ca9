package actions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"

	"github.com/portico-dev/portico/internal/errkind"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such action, workflow or run.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrUnavailable: runs need Temporal and none is configured or
	// reachable.
	ErrUnavailable = errkind.New(errkind.Unavailable, "workflow engine unavailable",
		errkind.Code("temporal_unavailable"), errkind.Lead("runs need the Temporal workflow engine"))
	// ErrNotWaiting: the run does not wait for an approval (or was
	// already decided by this approver).
	ErrNotWaiting = errkind.New(errkind.Conflict, "run is not waiting for this approval", errkind.Code("not_waiting"))
	// ErrFinished: the run already ended.
	ErrFinished = errkind.New(errkind.Conflict, "run already finished", errkind.Code("run_finished"))
	// ErrInvalidCursor: a run listing cursor the Store did not issue.
	ErrInvalidCursor = errors.New("invalid run cursor")
)

// Store keeps definitions (every version), signing secrets and run
// records.
type Store interface {
	// PutAction stores a new version of a (a.Version is set) unless it is
	// unchanged; created reports a new identifier.
	PutAction(ctx context.Context, a *Action) (out *Action, created bool, err error)
	// GetAction returns version (0: the latest) of an action.
	GetAction(ctx context.Context, id string, version int) (*Action, error)
	ListActions(ctx context.Context) ([]*Action, error)
	DeleteAction(ctx context.Context, id string) error
	PutWorkflow(ctx context.Context, w *Workflow) (out *Workflow, created bool, err error)
	GetWorkflow(ctx context.Context, id string, version int) (*Workflow, error)
	ListWorkflows(ctx context.Context) ([]*Workflow, error)
	// InitSecret stores secret for an action unless it has one; it
	// reports whether it stored it.
	InitSecret(ctx context.Context, action, secret string) (bool, error)
	Secret(ctx context.Context, action string) (string, error)
	// SaveRun writes a run record unless a newer revision is stored.
	SaveRun(ctx context.Context, r *Run) error
	GetRun(ctx context.Context, id string) (*Run, error)
	ListRuns(ctx context.Context, f RunFilter) (*RunPage, error)
	// WatchRun signals on changed when a newer revision of run id may
	// have been saved (by any process). It returns once the watch is
	// active, so a GetRun after it misses no later write; signals
	// coalesce. stop (or the end of ctx) ends the watch.
	WatchRun(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error)
}

// Runner executes runs durably (Temporal, in package workflows).
type Runner interface {
	// Start starts the run; it must not fail when started twice.
	Start(ctx context.Context, req StartRequest) error
	// Decide delivers an approver's decision to a waiting run.
	Decide(ctx context.Context, runID string, d Decision) error
	// Cancel asks a run to stop.
	Cancel(ctx context.Context, runID string) error
	// Describe returns the run's live state (ErrNotFound if unknown).
	Describe(ctx context.Context, runID string) (*Run, error)
}

// Service is the actions API: definitions, triggering, approvals.
type Service struct {
	store    Store
	cat      *catalog.Service
	runner   Runner
	now      func() time.Time
	linkBase string
}

// Options configure a Service.
type Options struct {
	// Runner executes runs; nil: runs fail with ErrUnavailable while
	// definitions still work.
	Runner Runner
	// LinkBase prefixes run links ("http://127.0.0.1:7070"; empty:
	// relative links).
	LinkBase string
}

// NewService returns a service over store and cat.
func NewService(store Store, cat *catalog.Service, opts Options) *Service {
	return &Service{store: store, cat: cat, runner: opts.Runner, now: time.Now, linkBase: opts.LinkBase}
}

// Runner returns the configured runner (nil: none).
func (s *Service) Runner() Runner { return s.runner }

// PutAction validates and stores a new version of an action. On creation
// it generates the action's webhook signing secret and returns it: the
// only time it is ever shown. Omitted webhook headers (nil) keep the
// stored ones, and a gets them; the action comes back redacted (header
// names only).
func (s *Service) PutAction(ctx context.Context, a *Action) (*Action, string, bool, error) {
	if err := a.Validate(); err != nil {
		return nil, "", false, err
	}
	if _, err := s.cat.GetBlueprint(ctx, a.Blueprint); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, "", false, &catalog.ValidationError{Message: "invalid action", Violations: []catalog.Violation{{Path: "/blueprint", Message: fmt.Sprintf("blueprint %q does not exist", a.Blueprint)}}}
		}
		return nil, "", false, err
	}
	if a.Invocation.Type == InvokeWorkflow {
		if _, err := s.store.GetWorkflow(ctx, a.Invocation.Workflow, 0); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, "", false, &catalog.ValidationError{Message: "invalid action", Violations: []catalog.Violation{{Path: "/invocation/workflow", Message: fmt.Sprintf("workflow %q does not exist", a.Invocation.Workflow)}}}
			}
			return nil, "", false, err
		}
	}
	prev, err := s.store.GetAction(ctx, a.Identifier, 0)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", false, err
	}
	a.keepHeaders(prev)
	secret := "whsec_" + randomHex(24)
	fresh, err := s.store.InitSecret(ctx, a.Identifier, secret)
	if err != nil {
		return nil, "", false, err
	}
	if !fresh {
		secret = ""
	}
	out, created, err := s.store.PutAction(ctx, a)
	if err != nil {
		return nil, "", false, err
	}
	return out.Redacted(), secret, created, nil
}

// GetAction returns the latest version of an action, redacted.
func (s *Service) GetAction(ctx context.Context, id string) (*Action, error) {
	a, err := s.store.GetAction(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	return a.Redacted(), nil
}

// ListActions returns every action's latest version, redacted.
func (s *Service) ListActions(ctx context.Context) ([]*Action, error) {
	list, err := s.store.ListActions(ctx)
	for i, a := range list {
		list[i] = a.Redacted()
	}
	return list, err
}

// PutWorkflow validates and stores a new version of a composed workflow.
// A webhook step that omits its headers keeps those of the stored step
// with the same id (w gets them); the workflow comes back redacted.
func (s *Service) PutWorkflow(ctx context.Context, w *Workflow) (*Workflow, bool, error) {
	if err := w.Validate(); err != nil {
		return nil, false, err
	}
	prev, err := s.store.GetWorkflow(ctx, w.Identifier, 0)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	w.keepHeaders(prev)
	out, created, err := s.store.PutWorkflow(ctx, w)
	if err != nil {
		return nil, false, err
	}
	return out.Redacted(), created, nil
}

// GetWorkflow returns the latest version of a workflow, redacted.
func (s *Service) GetWorkflow(ctx context.Context, id string) (*Workflow, error) {
	w, err := s.store.GetWorkflow(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	return w.Redacted(), nil
}

// ListWorkflows returns every workflow's latest version, redacted.
func (s *Service) ListWorkflows(ctx context.Context) ([]*Workflow, error) {
	list, err := s.store.ListWorkflows(ctx)
	for i, w := range list {
		list[i] = w.Redacted()
	}
	return list, err
}

// TriggerRequest is the body of POST /actions/{id}/runs.
type TriggerRequest struct {
	Entity string         `json:"entity"`
	Inputs map[string]any `json:"inputs"`
	// RunID fixes the run id (internal callers that may retry, such as
	// timers); empty means a random one.
	RunID string `json:"-"`
}

// Trigger validates a run request (inputs, entity, condition, the
// caller's execute permission), records the run and starts it. Nothing
// is started when it fails.
func (s *Service) Trigger(ctx context.Context, actionID string, req TriggerRequest) (*Run, error) {
	if s.runner == nil {
		return nil, ErrUnavailable
	}
	a, err := s.store.GetAction(ctx, actionID, 0)
	if err != nil {
		return nil, err
	}
	actor := catalog.ActorFrom(ctx)
	if req.Inputs == nil {
		req.Inputs = map[string]any{}
	}
	var p problems
	if a.UserInputs != nil {
		ci, err := compileInputs(a.UserInputs)
		if err != nil {
			return nil, err
		}
		for name, def := range a.UserInputs.Properties {
			if _, ok := req.Inputs[name]; !ok && def.Default != nil {
				req.Inputs[name] = def.Default
			}
		}
		if err := ci.validate(req.Inputs); err != nil {
			p.addErr("/inputs", err)
		} else if err := s.checkEntityInputs(ctx, ci, req.Inputs, &p); err != nil {
			return nil, err
		}
	} else if len(req.Inputs) > 0 {
		for name := range req.Inputs {
			p.add("/inputs/"+name, "not defined in the action's userInputs")
		}
	}
	var entity *catalog.Entity
	switch {
	case a.Operation == OperationCreate:
		// A CREATE action may name an entity (e.g. the one to create).
		if req.Entity != "" {
			if e, err := s.cat.GetEntity(ctx, catalog.Ref{Blueprint: a.Blueprint, Identifier: req.Entity}); err == nil {
				entity = e
			}
		}
	case req.Entity == "":
		p.add("/entity", "a %s action needs an entity of blueprint %s", a.Operation, a.Blueprint)
	default:
		e, err := s.cat.GetEntity(ctx, catalog.Ref{Blueprint: a.Blueprint, Identifier: req.Entity})
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			p.add("/entity", "entity %s/%s does not exist", a.Blueprint, req.Entity)
		case err != nil:
			return nil, err
		default:
			entity = e
			if a.Condition != nil && !catalog.Match(a.Condition, e, e.Properties, s.now(), nil) {
				p.add("/entity", "entity %s/%s does not meet the action's condition", a.Blueprint, req.Entity)
			}
		}
	}
	if err := p.err("invalid run request"); err != nil {
		return nil, err
	}
	var exec *access.Policy
	if a.Permissions != nil {
		exec = a.Permissions.Execute
	}
	if err := s.allows(ctx, exec, actor, entity, req.Inputs, "execute action "+a.Identifier); err != nil {
		return nil, err
	}
	var wf *Workflow
	if a.Invocation.Type == InvokeWorkflow {
		if wf, err = s.store.GetWorkflow(ctx, a.Invocation.Workflow, 0); err != nil {
			return nil, fmt.Errorf("workflow of action %s: %w", a.Identifier, err)
		}
	}
	plan := PlanFor(a, wf)
	now := s.now().UTC()
	if req.RunID == "" {
		req.RunID = "run_" + randomHex(12)
	}
	run := &Run{
		ID: req.RunID, Action: a.Identifier, ActionVersion: a.Version,
		Status: StatusInProgress, Blueprint: a.Blueprint, Entity: req.Entity, Inputs: req.Inputs,
		TriggeredBy: actor.ID, Approvals: []ApprovalRecord{}, Logs: []LogLine{}, Affected: []Affected{},
		CreatedAt: now, UpdatedAt: now, Revision: 1, Depth: catalog.DepthFrom(ctx),
	}
	if wf != nil {
		run.Workflow, run.WorkflowVer = wf.Identifier, wf.Version
	}
	run.Link = s.linkBase + "/api/v1/runs/" + run.ID
	run.Steps = PlannedSteps(plan)
	if len(plan.Steps) > 0 && plan.Steps[0].Type == StepApproval {
		run.Status = StatusWaitingForApproval
	}
	var raw json.RawMessage
	if entity != nil {
		if raw, err = json.Marshal(entity); err != nil {
			return nil, fmt.Errorf("encode entity: %w", err)
		}
	}
	if err := s.store.SaveRun(ctx, run); err != nil {
		return nil, err
	}
	if err := s.runner.Start(ctx, StartRequest{Run: run, Plan: plan, Entity: raw}); err != nil {
		return nil, fmt.Errorf("start run %s: %w", run.ID, err)
	}
	if err := s.emitRun(ctx, catalog.EventRunCreated, run); err != nil {
		return nil, err
	}
	return run, nil
}

// checkEntityInputs checks that inputs of format "entity" name existing
// entities of their blueprint that match the input's dataset.
func (s *Service) checkEntityInputs(ctx context.Context, ci *compiledInputs, inputs map[string]any, p *problems) error {
	for _, name := range ci.entityInputs() {
		v, ok := inputs[name].(string)
		if !ok || v == "" {
			continue
		}
		def := ci.entities[name]
		e, err := s.cat.GetEntity(ctx, catalog.Ref{Blueprint: def.Blueprint, Identifier: v})
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			p.add("/inputs/"+name, "entity %s/%s does not exist", def.Blueprint, v)
		case err != nil:
			return err
		case def.Dataset != nil && !catalog.Match(def.Dataset, e, e.Properties, s.now(), nil):
			p.add("/inputs/"+name, "entity %s/%s is not one this input may pick", def.Blueprint, v)
		}
	}
	return nil
}

// PlannedSteps lists a plan's steps (parallel children after their group)
// as PENDING step records.
func PlannedSteps(p Plan) []StepRun {
	out := []StepRun{}
	var walk func([]Step)
	walk = func(steps []Step) {
		for _, st := range steps {
			out = append(out, StepRun{ID: st.ID, Type: st.Kind(), Status: StepPending})
			walk(st.Steps)
		}
	}
	walk(p.Steps)
	return out
}

// GetRun returns a run's record (falling back to the live state when the
// mirror has not been written yet); a run the caller may not see is not
// found (see visibility.go).
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) {
	r, err := s.store.GetRun(ctx, id)
	if errors.Is(err, ErrNotFound) && s.runner != nil {
		r, err = s.runner.Describe(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return s.visible(ctx, r)
}

// ListRuns lists the run records the caller may see, newest first; a
// TriggeredBy of "$me" means the caller. A page reads a bounded part of
// the index (MaxRunsScanned), so it may hold fewer runs than asked, even
// none, and still have a next page.
func (s *Service) ListRuns(ctx context.Context, f RunFilter) (*RunPage, error) {
	actor := catalog.ActorFrom(ctx)
	if f.TriggeredBy == catalog.MeValue {
		f.TriggeredBy = actor.ID
	}
	f.Visible = nil
	if actor.Role != catalog.RoleAdmin && actor.Role != catalog.RoleSystem {
		f.Visible = s.viewer(ctx).sees
	}
	page, err := s.store.ListRuns(ctx, f)
	if errors.Is(err, ErrInvalidCursor) {
		return nil, &catalog.ValidationError{Message: "invalid run query", Violations: []catalog.Violation{{Path: "/cursor", Message: "not a cursor this API returned"}}}
	}
	return page, err
}

// DecideRequest is the body of POST /runs/{id}/approval.
type DecideRequest struct {
	Decision string `json:"decision"`
	Comment  string `json:"comment"`
}

// Decide records the caller's decision on the approval a run waits for:
// the requester may never decide their own run, the caller must be one of
// the policy's approvers (and pass the action's approve permission), and
// each approver counts once.
func (s *Service) Decide(ctx context.Context, runID string, req DecideRequest) (*Run, error) {
	if req.Decision != DecisionApprove && req.Decision != DecisionDecline {
		return nil, &catalog.ValidationError{Message: "invalid decision", Violations: []catalog.Violation{{Path: "/decision", Message: "must be approve or decline"}}}
	}
	if s.runner == nil {
		return nil, ErrUnavailable
	}
	run, err := s.describeVisible(ctx, runID)
	if err != nil {
		return nil, err
	}
	if run.Finished() {
		return nil, fmt.Errorf("%w: %s is %s", ErrFinished, runID, run.Status)
	}
	if run.Pending == nil {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotWaiting, runID, run.Status)
	}
	actor := catalog.ActorFrom(ctx)
	if actor.ID == run.TriggeredBy {
		return nil, fmt.Errorf("%w: missing permission: approve own run (a requester never approves their own run)", catalog.ErrForbidden)
	}
	if slices.Contains(run.Pending.Approved, actor.ID) {
		return nil, fmt.Errorf("%w: %s already approved", ErrNotWaiting, actor.ID)
	}
	var entity *catalog.Entity
	if run.Entity != "" {
		if e, err := s.cat.GetEntity(ctx, catalog.Ref{Blueprint: run.Blueprint, Identifier: run.Entity}); err == nil {
			entity = e
		}
	}
	pol := run.Pending.Policy.Approvers
	if run.Pending.Escalated && run.Pending.Policy.Escalation != nil {
		pol = run.Pending.Policy.Escalation.Approvers
	}
	if err := s.allows(ctx, pol, actor, entity, run.Inputs, "approve runs of "+run.Action); err != nil {
		return nil, err
	}
	if a, err := s.store.GetAction(ctx, run.Action, run.ActionVersion); err == nil && a.Permissions != nil && a.Permissions.Approve != nil {
		if err := s.allows(ctx, a.Permissions.Approve, actor, entity, run.Inputs, "approve runs of "+run.Action); err != nil {
			return nil, err
		}
	}
	d := Decision{Step: run.Pending.Step, By: actor.ID, Decision: req.Decision, Comment: req.Comment}
	if err := s.runner.Decide(ctx, runID, d); err != nil {
		return nil, err
	}
	run.Approvals = append(run.Approvals, ApprovalRecord{Step: d.Step, By: d.By, Decision: d.Decision, Comment: d.Comment, At: s.now().UTC()})
	return run, nil
}

// Cancel asks a run to stop.
func (s *Service) Cancel(ctx context.Context, runID string) (*Run, error) {
	if s.runner == nil {
		return nil, ErrUnavailable
	}
	run, err := s.describeVisible(ctx, runID)
	if err != nil {
		return nil, err
	}
	if run.Finished() {
		return nil, fmt.Errorf("%w: %s is %s", ErrFinished, runID, run.Status)
	}
	actor := catalog.ActorFrom(ctx)
	if actor.ID != run.TriggeredBy && actor.Role != catalog.RoleAdmin && actor.Role != catalog.RoleSystem {
		return nil, fmt.Errorf("%w: only the requester or an admin may cancel run %s", catalog.ErrForbidden, runID)
	}
	if err := s.runner.Cancel(ctx, runID); err != nil {
		return nil, err
	}
	return run, nil
}

// describeVisible returns a run's live state when the caller may see it:
// deciding on or cancelling a hidden run answers as for a missing one,
// before its status is revealed.
func (s *Service) describeVisible(ctx context.Context, runID string) (*Run, error) {
	run, err := s.runner.Describe(ctx, runID)
	if err != nil {
		return nil, err
	}
	return s.visible(ctx, run)
}

// allows checks a policy; nil admits admins and members. The entity's
// owning teams are resolved as the catalog does (inherited ownership
// included) when the policy admits the owning team.
func (s *Service) allows(ctx context.Context, p *access.Policy, actor catalog.Actor, e *catalog.Entity, inputs map[string]any, what string) error {
	if actor.Role == catalog.RoleSystem { // internal callers (timers)
		return nil
	}
	if p == nil {
		if actor.Role == catalog.RoleAdmin || actor.Role == catalog.RoleMember {
			return nil
		}
		return fmt.Errorf("%w: missing permission: %s (admins and members)", catalog.ErrForbidden, what)
	}
	var owners []string
	if e != nil && p.OwningTeam {
		var err error
		if owners, err = s.cat.OwningTeams(ctx, e); err != nil {
			return fmt.Errorf("owning teams of %s/%s: %w", e.Blueprint, e.Identifier, err)
		}
	}
	ok, err := p.Allows(actor, e, owners, inputs)
	if err != nil {
		return fmt.Errorf("%w: missing permission: %s: %v", catalog.ErrForbidden, what, err)
	}
	if !ok {
		return fmt.Errorf("%w: missing permission: %s", catalog.ErrForbidden, what)
	}
	return nil
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(buf)
}

// DeleteAction removes an action; its runs keep their records.
func (s *Service) DeleteAction(ctx context.Context, id string) error {
	return s.store.DeleteAction(ctx, id)
}
