package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/portico-dev/portico/pdk"
)

var (
	errNoRepository = errors.New("no repository: give inputs.repository (owner/name) or an entity related to one")
	runIDRe         = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// Act runs an action: dispatch, rerun or cancel.
func (g GitHub) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	_, c, err := g.setup(req.Config)
	if err != nil {
		return nil, err
	}
	target, err := decodeTarget(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Action, err)
	}
	switch req.Action {
	case "dispatch":
		return c.dispatch(ctx, target)
	case "rerun":
		return c.runAction(ctx, target, "rerun", "re-run requested")
	case "cancel":
		return c.runAction(ctx, target, "cancel", "cancellation requested")
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

// target is what an action applies to: its inputs, completed from the
// entity it was run on.
type target struct {
	Repository string         `json:"repository"`
	Workflow   string         `json:"workflow"`
	Run        string         `json:"run"`
	Ref        string         `json:"ref"`
	Inputs     map[string]any `json:"inputs"`
}

// entity is the part of a catalog entity an action reads.
type entity struct {
	Blueprint  string         `json:"blueprint"`
	Identifier string         `json:"identifier"`
	Relations  map[string]any `json:"relations"`
}

func decodeTarget(req pdk.ActRequest) (target, error) {
	var t target
	if len(req.Inputs) > 0 && string(req.Inputs) != "null" {
		if err := json.Unmarshal(req.Inputs, &t); err != nil {
			return t, fmt.Errorf("inputs: %w", err)
		}
	}
	if len(req.Entity) > 0 && string(req.Entity) != "null" {
		var e entity
		if err := json.Unmarshal(req.Entity, &e); err != nil {
			return t, fmt.Errorf("entity: %w", err)
		}
		repo, _ := e.Relations["repository"].(string)
		switch e.Blueprint {
		case bpRepository:
			repo = e.Identifier
		case bpWorkflow:
			t.Workflow = cmp.Or(t.Workflow, e.Identifier)
		case bpRun:
			t.Run = cmp.Or(t.Run, e.Identifier)
		}
		t.Repository = cmp.Or(t.Repository, repo)
	}
	if t.Repository == "" {
		return t, errNoRepository
	}
	if !repoRe.MatchString(t.Repository) {
		return t, fmt.Errorf("repository %q: want owner/name", t.Repository)
	}
	return t, nil
}

// dispatch triggers a workflow_dispatch event:
// POST /repos/{o}/{r}/actions/workflows/{id or file}/dispatches.
func (c *client) dispatch(ctx context.Context, t target) (*pdk.ActResult, error) {
	if t.Workflow == "" {
		return nil, errors.New("dispatch: no workflow: give inputs.workflow (id or file name) or run it on a githubWorkflow")
	}
	var logs []string
	if t.Ref == "" {
		resp, err := c.get(ctx, c.url(repoPath(t.Repository)), false)
		if err != nil {
			return nil, fmt.Errorf("dispatch: default branch of %s: %w", t.Repository, err)
		}
		var repo struct {
			DefaultBranch string `json:"default_branch"`
		}
		if err := decodeMembers(resp.Body, &repo, "default_branch"); err != nil || repo.DefaultBranch == "" {
			return nil, fmt.Errorf("dispatch: %s has no default_branch (%v)", t.Repository, err)
		}
		t.Ref = repo.DefaultBranch
		logs = append(logs, "ref: the default branch "+t.Ref)
	}
	if t.Inputs == nil {
		t.Inputs = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"ref": t.Ref, "inputs": t.Inputs})
	if err != nil {
		return nil, fmt.Errorf("dispatch: encode: %w", err)
	}
	path := repoPath(t.Repository) + "/actions/workflows/" + url.PathEscape(t.Workflow) + "/dispatches"
	if _, err := c.do(ctx, "POST", c.url(path), body, false); err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	outputs, _ := json.Marshal(map[string]string{"repository": t.Repository, "workflow": t.Workflow, "ref": t.Ref})
	return &pdk.ActResult{
		Message: fmt.Sprintf("dispatched workflow %s of %s on %s", t.Workflow, t.Repository, t.Ref),
		Logs:    append(logs, "POST "+path),
		Outputs: outputs,
	}, nil
}

// runAction POSTs /repos/{o}/{r}/actions/runs/{id}/{verb} (rerun, cancel),
// then fetches the run so that its entity shows the new state at once.
func (c *client) runAction(ctx context.Context, t target, verb, done string) (*pdk.ActResult, error) {
	if !runIDRe.MatchString(t.Run) {
		return nil, fmt.Errorf("%s: run %q: want a run id (inputs.run or a githubWorkflowRun entity)", verb, t.Run)
	}
	path := fmt.Sprintf("%s/actions/runs/%s/%s", repoPath(t.Repository), t.Run, verb)
	if _, err := c.do(ctx, "POST", c.url(path), nil, false); err != nil {
		return nil, fmt.Errorf("%s run %s of %s: %w", verb, t.Run, t.Repository, err)
	}
	run, err := c.run(ctx, t.Repository, t.Run)
	if err != nil {
		return nil, fmt.Errorf("%s run %s of %s: %s, but reading it back failed: %w", verb, t.Run, t.Repository, done, err)
	}
	outputs, _ := json.Marshal(map[string]string{"repository": t.Repository, "run": t.Run})
	return &pdk.ActResult{
		Message: fmt.Sprintf("run %s of %s: %s", t.Run, t.Repository, done),
		Logs:    []string{"POST " + path, "GET " + repoPath(t.Repository) + "/actions/runs/" + t.Run},
		Outputs: outputs,
		Upserts: []pdk.KindItem{{Kind: kindRun, Item: run}},
	}, nil
}

// run fetches one workflow run: GET /repos/{o}/{r}/actions/runs/{id}.
func (c *client) run(ctx context.Context, repo, id string) (json.RawMessage, error) {
	resp, err := c.get(ctx, c.url(repoPath(repo)+"/actions/runs/"+url.PathEscape(id)), false)
	if err != nil {
		return nil, fmt.Errorf("get run %s of %s: %w", id, repo, err)
	}
	if !isObject(resp.Body) || !json.Valid(resp.Body) {
		return nil, fmt.Errorf("get run %s of %s: malformed JSON", id, repo)
	}
	return resp.Body, nil
}
