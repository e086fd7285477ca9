package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
)

// A run reveals its inputs, entity, logs and step outputs (webhook
// answers included), so it is private. The actor of a request sees a run
// when they are
//
//   - an admin;
//   - its requester (TriggeredBy);
//   - one of its approvers: whoever decided on it, and whoever an approval
//     group of its plan admits (first group or escalation, at the action
//     and workflow versions it runs, and the action's approve permission),
//     judged as Decide judges them;
//   - someone who may read its entity in the catalog (the blueprint's
//     read.ownedOnly and team ownership).
//
// Everyone else is told the run does not exist. A run without an entity
// (CREATE actions), or whose entity is gone or hidden, is therefore seen
// only by its requester, its approvers and admins: being allowed to
// execute an action does not reveal other people's runs of it. Internal
// callers (catalog.SystemActor) see every run; an integration or a caller
// without a role sees none.

// runViewer decides which runs the actor of one request sees, caching
// what it reads (entity readability, definitions) for that request.
type runViewer struct {
	s        *Service
	ctx      context.Context
	actor    catalog.Actor
	readable map[catalog.Ref]bool
	groups   map[string]*approvers // by action@version/workflow@version
}

// approvers are the approval groups of a run's plan and the action's
// approve permission.
type approvers struct {
	groups  []*access.Policy
	approve *access.Policy
}

func (s *Service) viewer(ctx context.Context) *runViewer {
	return &runViewer{s: s, ctx: ctx, actor: catalog.ActorFrom(ctx),
		readable: map[catalog.Ref]bool{}, groups: map[string]*approvers{}}
}

// visible returns r when the actor of ctx may see it, ErrNotFound
// otherwise.
func (s *Service) visible(ctx context.Context, r *Run) (*Run, error) {
	ok, err := s.viewer(ctx).sees(r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("run %s: %w", r.ID, ErrNotFound)
	}
	return r, nil
}

// sees reports whether the actor may see r.
func (v *runViewer) sees(r *Run) (bool, error) {
	a := v.actor
	switch {
	case a.Role == catalog.RoleAdmin || a.Role == catalog.RoleSystem:
		return true, nil
	case (a.Role != catalog.RoleMember && a.Role != catalog.RoleViewer) || a.ID == "":
		return false, nil
	case r.TriggeredBy == a.ID:
		return true, nil
	case slices.ContainsFunc(r.Approvals, func(d ApprovalRecord) bool { return d.By == a.ID }):
		return true, nil
	}
	if r.Entity != "" {
		ok, err := v.canRead(catalog.Ref{Blueprint: r.Blueprint, Identifier: r.Entity})
		if ok || err != nil {
			return ok, err
		}
	}
	return v.mayApprove(r)
}

// canRead reports whether the actor may read an entity (a missing one
// counts as unreadable).
func (v *runViewer) canRead(ref catalog.Ref) (bool, error) {
	if ok, known := v.readable[ref]; known {
		return ok, nil
	}
	_, err := v.s.cat.GetEntity(v.ctx, ref)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return false, fmt.Errorf("entity of run: %w", err)
	}
	v.readable[ref] = err == nil
	return err == nil, nil
}

// mayApprove reports whether an approval group of r admits the actor. It
// is only asked when the actor may not read r's entity, which the policies
// then see as absent, as Decide does.
func (v *runViewer) mayApprove(r *Run) (bool, error) {
	ap, err := v.approvers(r)
	if err != nil {
		return false, err
	}
	groups := ap.groups
	if p := r.Pending; p != nil {
		groups = append(slices.Clip(groups), approvalGroups(p.Policy)...)
	}
	if len(groups) == 0 {
		return false, nil
	}
	if ap.approve != nil {
		if ok, err := v.admits(ap.approve, r); !ok || err != nil {
			return false, err
		}
	}
	for _, p := range groups {
		if ok, err := v.admits(p, r); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// admits evaluates one approver policy for the actor on r (without its
// entity). A nil policy admits admins and members, as for Decide.
func (v *runViewer) admits(p *access.Policy, r *Run) (bool, error) {
	err := v.s.allows(v.ctx, p, v.actor, nil, r.Inputs, "see run "+r.ID)
	if errors.Is(err, catalog.ErrForbidden) {
		return false, nil
	}
	return err == nil, err
}

// approvers returns the approval groups of the plan r runs: those of its
// action and workflow at the versions it started with. A deleted
// definition contributes none.
func (v *runViewer) approvers(r *Run) (*approvers, error) {
	key := r.Action + "@" + strconv.Itoa(r.ActionVersion) + "/" + r.Workflow + "@" + strconv.Itoa(r.WorkflowVer)
	if ap, ok := v.groups[key]; ok {
		return ap, nil
	}
	ap := &approvers{}
	a, err := v.s.store.GetAction(v.ctx, r.Action, r.ActionVersion)
	switch {
	case errors.Is(err, ErrNotFound):
		v.groups[key] = ap
		return ap, nil
	case err != nil:
		return nil, fmt.Errorf("action of run %s: %w", r.ID, err)
	}
	if a.Permissions != nil {
		ap.approve = a.Permissions.Approve
	}
	var wf *Workflow
	if r.Workflow != "" {
		wf, err = v.s.store.GetWorkflow(v.ctx, r.Workflow, r.WorkflowVer)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("workflow of run %s: %w", r.ID, err)
		}
	}
	plan := PlanFor(a, wf)
	var walk func([]Step)
	walk = func(steps []Step) {
		for i := range steps {
			if steps[i].Type == StepApproval {
				ap.groups = append(ap.groups, approvalGroups(steps[i].ApprovalPolicy())...)
			}
			walk(steps[i].Steps)
			walk(steps[i].OnFailure)
		}
	}
	walk(plan.Steps)
	walk(plan.OnFailure)
	v.groups[key] = ap
	return ap, nil
}

// approvalGroups returns an approval's approver policies: the first group
// and, when it escalates, the escalation group.
func approvalGroups(a Approval) []*access.Policy {
	out := []*access.Policy{a.Approvers}
	if a.Escalation != nil && a.Escalation.Approvers != nil {
		out = append(out, a.Escalation.Approvers)
	}
	return out
}
