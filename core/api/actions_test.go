package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

// fakeRunner keeps started runs in memory; an approval step first makes
// the run wait.
type fakeRunner struct {
	mu        sync.Mutex
	runs      map[string]*actions.Run
	decisions []actions.Decision
	cancelled []string
	starts    []actions.StartRequest
}

func (f *fakeRunner) Start(_ context.Context, req actions.StartRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, req)
	r := *req.Run
	if len(req.Plan.Steps) > 0 && req.Plan.Steps[0].Type == actions.StepApproval {
		r.Pending = &actions.PendingApproval{Step: req.Plan.Steps[0].ID, Policy: req.Plan.Steps[0].ApprovalPolicy()}
	}
	f.runs[r.ID] = &r
	return nil
}

func (f *fakeRunner) Decide(_ context.Context, id string, d actions.Decision) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, d)
	return nil
}

func (f *fakeRunner) Cancel(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	return nil
}

func (f *fakeRunner) Describe(_ context.Context, id string) (*actions.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok {
		return nil, actions.ErrNotFound
	}
	cp := *r
	return &cp, nil
}

// escalate marks the approval run id waits for as escalated, as the
// workflow does when the first group's timeout passes.
func (f *fakeRunner) escalate(t *testing.T, id string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok || r.Pending == nil {
		t.Fatalf("run %s does not wait for an approval", id)
	}
	p := *r.Pending
	p.Escalated = true
	r.Pending = &p
}

// started returns the StartRequests the runner received.
func (f *fakeRunner) started() []actions.StartRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts)
}

// deciders returns who decided, in order.
func (f *fakeRunner) deciders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.decisions {
		out = append(out, d.By)
	}
	return out
}

// actionsConfig is the API configuration of the actions tests: catalog,
// access (bootstrapped) and actions over one miniredis, runs on runner.
func actionsConfig(t *testing.T, runner actions.Runner) (api.Config, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{AdminToken: token})
	if err := acc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc := actions.NewService(redisactions.New(rdb, redisactions.Options{}), cat, actions.Options{Runner: runner})
	return api.Config{Catalog: cat, Access: acc, Actions: svc}, rdb
}

func newActionsEnv(t *testing.T, runner actions.Runner) *accessEnv {
	t.Helper()
	cfg, rdb := actionsConfig(t, runner)
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(srv.Close)
	e := &accessEnv{env: &env{t: t, srv: srv}, rdb: rdb}
	e.must(201, "PUT", "/api/v1/blueprints/service", M{"schema": M{"properties": M{"tier": M{"type": "integer"}}}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/checkout", M{"properties": M{"tier": 1}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/legacy", M{"properties": M{"tier": 3}})
	return e
}

var deployAction = M{
	"title": "Deploy", "blueprint": "service", "operation": "DAY-2",
	"userInputs":  M{"properties": M{"version": M{"type": "string"}}, "required": []string{"version"}},
	"condition":   M{"combinator": "and", "rules": []M{{"property": "tier", "operator": "<=", "value": 2}}},
	"invocation":  M{"type": "webhook", "url": "https://ci.example/deploy"},
	"approval":    M{"count": 1, "approvers": M{"roles": []string{"member"}}, "timeout": "72h", "onTimeout": "decline"},
	"permissions": M{"execute": M{"roles": []string{"member"}}},
}

func TestActionsAndRuns(t *testing.T) {
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	e.user("alice@example.com", "member")
	e.user("bob@example.com", "viewer")
	e.user("carol@example.com", "member")
	_, alice := e.mint("alice@example.com", "read", "run", "approve", "write")
	_, bob := e.mint("bob@example.com", "read", "approve")
	_, carol := e.mint("carol@example.com", "read", "approve")

	// Definitions: admins only; the secret is shown once.
	forbidden(t, e.as(alice, "PUT", "/api/v1/actions/deploy", deployAction), "admin")
	created := e.must(201, "PUT", "/api/v1/actions/deploy", deployAction).obj(t)
	if s, _ := created["signingSecret"].(string); !strings.HasPrefix(s, "whsec_") || created["version"] != 1.0 {
		t.Fatalf("created %v", created)
	}
	again := e.must(200, "PUT", "/api/v1/actions/deploy", deployAction).obj(t)
	if _, ok := again["signingSecret"]; ok || again["version"] != 1.0 {
		t.Fatalf("unchanged put %v", again)
	}
	e.must(200, "GET", "/api/v1/actions/deploy", nil)
	checkError(t, e.do("PUT", "/api/v1/actions/bad", M{"blueprint": "nope", "operation": "DAY-2", "invocation": M{"type": "webhook", "url": "https://x"}}), 422, "validation_failed", []string{"/blueprint"})

	// Rejected run requests start nothing.
	checkError(t, e.as(alice, "POST", "/api/v1/actions/deploy/runs", M{"entity": "checkout", "inputs": M{}}), 422, "validation_failed", []string{"/inputs/version"})
	checkError(t, e.as(alice, "POST", "/api/v1/actions/deploy/runs", M{"entity": "legacy", "inputs": M{"version": "1"}}), 422, "validation_failed", []string{"/entity"})
	forbidden(t, e.as(bob, "POST", "/api/v1/actions/deploy/runs", M{"entity": "checkout", "inputs": M{"version": "1"}}), "run")
	if len(runner.runs) != 0 {
		t.Fatalf("runs started: %v", runner.runs)
	}

	run := e.as(alice, "POST", "/api/v1/actions/deploy/runs", M{"entity": "checkout", "inputs": M{"version": "1.2"}})
	if run.Status != http.StatusAccepted {
		t.Fatalf("trigger: %d %s", run.Status, run.Raw)
	}
	r := run.obj(t)
	id := r["id"].(string)
	if r["status"] != actions.StatusWaitingForApproval || r["triggeredBy"] != "alice@example.com" {
		t.Fatalf("run %v", r)
	}

	// Approvals: never the requester, only the policy's approvers.
	forbidden(t, e.as(alice, "POST", "/api/v1/runs/"+id+"/approval", M{"decision": "approve"}), "")
	forbidden(t, e.as(bob, "POST", "/api/v1/runs/"+id+"/approval", M{"decision": "approve"}), "approve runs of deploy")
	checkError(t, e.as(carol, "POST", "/api/v1/runs/"+id+"/approval", M{"decision": "maybe"}), 422, "validation_failed", []string{"/decision"})
	if got := e.as(carol, "POST", "/api/v1/runs/"+id+"/approval", M{"decision": "approve", "comment": "lgtm"}); got.Status != http.StatusAccepted {
		t.Fatalf("approve: %d %s", got.Status, got.Raw)
	}
	if len(runner.decisions) != 1 || runner.decisions[0].By != "carol@example.com" || runner.decisions[0].Step != "approval" {
		t.Fatalf("decisions %+v", runner.decisions)
	}

	// Records are listed and filtered.
	got := e.must(200, "GET", "/api/v1/runs/"+id, nil).obj(t)
	if got["id"] != id || got["entity"] != "checkout" {
		t.Fatalf("get run %v", got)
	}
	for _, q := range []string{"action=deploy", "entity=checkout", "status=WAITING_FOR_APPROVAL", "entity=service/checkout"} {
		list := e.must(200, "GET", "/api/v1/runs?"+q, nil).obj(t)
		if runs := list["runs"].([]any); len(runs) != 1 {
			t.Fatalf("%s: %v", q, list)
		}
	}
	if list := e.must(200, "GET", "/api/v1/runs?status=SUCCESS", nil).obj(t); len(list["runs"].([]any)) != 0 {
		t.Fatalf("status filter: %v", list)
	}
	e.must(200, "GET", "/api/v1/runs/"+id+"/logs", nil)
	checkError(t, e.do("GET", "/api/v1/runs/run_nope", nil), 404, "not_found", nil)
	if got := e.as(alice, "POST", "/api/v1/runs/"+id+"/cancel", nil); got.Status != http.StatusAccepted || len(runner.cancelled) != 1 {
		t.Fatalf("cancel: %d %s", got.Status, got.Raw)
	}
}

func TestWorkflowDefinitions(t *testing.T) {
	e := newActionsEnv(t, nil)
	yamlDef := `
title: Deploy with approval
steps:
  - id: approve
    type: approval
    count: 1
    approvers: {roles: [member]}
    timeout: 24h
  - id: pause
    type: sleep
    duration: 5s
onFailure:
  - id: rollback
    type: webhook
    url: https://ci.example/rollback
`
	req, _ := http.NewRequest("PUT", e.srv.URL+"/api/v1/workflows/deploy-flow", strings.NewReader(yamlDef))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/yaml")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("yaml put: %d", res.StatusCode)
	}
	wf := e.must(200, "GET", "/api/v1/workflows/deploy-flow", nil).obj(t)
	if wf["version"] != 1.0 || len(wf["steps"].([]any)) != 2 {
		t.Fatalf("workflow %v", wf)
	}
	checkError(t, e.do("PUT", "/api/v1/workflows/bad", M{"steps": []M{{"id": "a", "type": "teleport"}}}), 422, "validation_failed", []string{"/steps/0/type"})

	// A second version; the action runs whatever is latest when triggered.
	v2 := e.must(200, "PUT", "/api/v1/workflows/deploy-flow", M{"steps": []M{{"id": "pause", "type": "sleep", "duration": "1s"}}}).obj(t)
	if v2["version"] != 2.0 {
		t.Fatalf("v2 %v", v2)
	}
	e.must(201, "PUT", "/api/v1/actions/flow", M{"blueprint": "service", "operation": "DAY-2", "invocation": M{"type": "workflow", "workflow": "deploy-flow"}})

	// Without Temporal, runs answer 503 but definitions work.
	checkError(t, e.do("POST", "/api/v1/actions/flow/runs", M{"entity": "checkout"}), 503, "temporal_unavailable", nil)
}

// approve posts a decision and returns the response.
func approve(e *accessEnv, tok, runID string) resp {
	e.t.Helper()
	return e.as(tok, "POST", "/api/v1/runs/"+runID+"/approval", M{"decision": "approve"})
}

// trigger starts a run as tok and returns its id, failing unless 202.
func trigger(e *accessEnv, tok, action string, body M) string {
	e.t.Helper()
	r := e.as(tok, "POST", "/api/v1/actions/"+action+"/runs", body)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("trigger %s: %d %s", action, r.Status, r.Raw)
	}
	return r.obj(e.t)["id"].(string)
}

// TestApprovalEscalation: before escalation only the first group may
// decide; once the pending approval is escalated only the escalation
// policy's approvers may.
func TestApprovalEscalation(t *testing.T) {
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/sre", M{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/leads", M{})
	e.user("alice@example.com", "member")
	e.user("dave@example.com", "member", "sre")
	e.user("erin@example.com", "member", "leads")
	_, alice := e.mint("alice@example.com", "read", "run")
	_, dave := e.mint("dave@example.com", "read", "approve")
	_, erin := e.mint("erin@example.com", "read", "approve")
	e.must(201, "PUT", "/api/v1/actions/restart", M{
		"blueprint": "service", "operation": "DAY-2",
		"invocation": M{"type": "webhook", "url": "https://ci.example/restart"},
		"approval": M{"count": 1, "approvers": M{"teams": []string{"sre"}}, "timeout": "1h", "onTimeout": "escalate",
			"escalation": M{"approvers": M{"teams": []string{"leads"}}}},
	})

	// Not escalated: the first group decides, the escalation group may not.
	before := trigger(e, alice, "restart", M{"entity": "checkout"})
	forbidden(t, approve(e, erin, before), "approve runs of restart")
	if r := approve(e, dave, before); r.Status != http.StatusAccepted {
		t.Fatalf("first group before escalation: %d %s", r.Status, r.Raw)
	}

	// Escalated: the other way round.
	after := trigger(e, alice, "restart", M{"entity": "checkout"})
	runner.escalate(t, after)
	forbidden(t, approve(e, dave, after), "approve runs of restart")
	if r := approve(e, erin, after); r.Status != http.StatusAccepted {
		t.Fatalf("escalation group after escalation: %d %s", r.Status, r.Raw)
	}
	if got, want := runner.deciders(), []string{"dave@example.com", "erin@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("decisions by %q, want %q", got, want)
	}
}

// TestOwningTeamApprovers: {"owningTeam": true} admits members of the
// run's entity's $team and nobody else's.
func TestOwningTeamApprovers(t *testing.T) {
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/payments", M{})
	e.must(201, "PUT", "/api/v1/blueprints/_team/entities/platform", M{})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/billing", M{"team": []string{"payments"}, "properties": M{"tier": 1}})
	e.user("alice@example.com", "member")
	e.user("pat@example.com", "member", "payments")
	e.user("oscar@example.com", "member", "platform")
	_, alice := e.mint("alice@example.com", "read", "run")
	_, pat := e.mint("pat@example.com", "read", "approve")
	_, oscar := e.mint("oscar@example.com", "read", "approve")
	e.must(201, "PUT", "/api/v1/actions/rotate", M{
		"blueprint": "service", "operation": "DAY-2",
		"invocation": M{"type": "webhook", "url": "https://ci.example/rotate"},
		"approval":   M{"count": 1, "approvers": M{"owningTeam": true}, "timeout": "1h", "onTimeout": "decline"},
	})

	id := trigger(e, alice, "rotate", M{"entity": "billing"})
	forbidden(t, approve(e, oscar, id), "approve runs of rotate")
	if r := approve(e, pat, id); r.Status != http.StatusAccepted {
		t.Fatalf("owning team member: %d %s", r.Status, r.Raw)
	}
	if got, want := runner.deciders(), []string{"pat@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("decisions by %q, want %q", got, want)
	}

	// Ownership inherited through a relation, as the catalog resolves it:
	// a deployment without $team is owned by its service's team.
	e.must(201, "PUT", "/api/v1/blueprints/deployment", M{"schema": M{},
		"relations": M{"service": M{"target": "service"}}, "ownership": M{"via": "service"}})
	e.must(201, "PUT", "/api/v1/blueprints/deployment/entities/billing-prod", M{"relations": M{"service": "billing"}})
	e.must(201, "PUT", "/api/v1/actions/restart", M{
		"blueprint": "deployment", "operation": "DAY-2",
		"invocation": M{"type": "webhook", "url": "https://ci.example/restart"},
		"approval":   M{"count": 1, "approvers": M{"owningTeam": true}, "timeout": "1h"},
	})
	id = trigger(e, alice, "restart", M{"entity": "billing-prod"})
	forbidden(t, approve(e, oscar, id), "approve runs of restart")
	if r := approve(e, pat, id); r.Status != http.StatusAccepted {
		t.Fatalf("member of the inherited owning team: %d %s", r.Status, r.Raw)
	}

	// A CREATE action has no entity to own: owning-team approvers are
	// refused at definition time rather than leaving runs unapprovable.
	checkError(t, e.do("PUT", "/api/v1/actions/scaffold", M{
		"blueprint": "service", "operation": "CREATE",
		"invocation": M{"type": "webhook", "url": "https://ci.example/scaffold"},
		"approval":   M{"count": 1, "approvers": M{"owningTeam": true}},
	}), 422, "validation_failed", []string{"/approval/approvers/owningTeam"})
}

// TestEntityInputs: an input of format "entity" must name an existing
// entity of its blueprint that matches its dataset.
func TestEntityInputs(t *testing.T) {
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	e.user("alice@example.com", "member")
	_, alice := e.mint("alice@example.com", "read", "run")
	e.must(201, "PUT", "/api/v1/actions/promote", M{
		"blueprint": "service", "operation": "CREATE",
		"invocation": M{"type": "webhook", "url": "https://ci.example/promote"},
		"userInputs": M{"required": []string{"source"}, "properties": M{"source": M{
			"type": "string", "format": "entity", "blueprint": "service",
			"dataset": M{"combinator": "and", "rules": []M{{"property": "tier", "operator": "=", "value": 1}}},
		}}},
	})

	// checkout has tier 1, legacy tier 3, ghost does not exist.
	for _, source := range []string{"ghost", "legacy"} {
		e := checkError(t, e.as(alice, "POST", "/api/v1/actions/promote/runs", M{"inputs": M{"source": source}}), 422, "validation_failed", []string{"/inputs/source"})
		if !strings.Contains(e.Error.Details[0].Message, "service/"+source) {
			t.Errorf("%s: detail %q does not name the entity", source, e.Error.Details[0].Message)
		}
	}
	if n := len(runner.started()); n != 0 {
		t.Fatalf("rejected requests started %d runs", n)
	}
	id := trigger(e, alice, "promote", M{"inputs": M{"source": "checkout"}})
	starts := runner.started()
	if len(starts) != 1 || starts[0].Run.ID != id || starts[0].Run.Inputs["source"] != "checkout" {
		t.Fatalf("started %+v", starts)
	}
}

// TestRunsPinTheWorkflowVersion: a run keeps the workflow version it
// started with; later runs take the latest.
func TestRunsPinTheWorkflowVersion(t *testing.T) {
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	e := newActionsEnv(t, runner)
	e.user("alice@example.com", "member")
	_, alice := e.mint("alice@example.com", "read", "run")
	e.must(201, "PUT", "/api/v1/workflows/pipeline", M{"steps": []M{{"id": "build", "type": "webhook", "url": "https://ci.example/build"}}})
	e.must(201, "PUT", "/api/v1/actions/ship", M{"blueprint": "service", "operation": "DAY-2", "invocation": M{"type": "workflow", "workflow": "pipeline"}})

	stepIDs := func(steps []actions.Step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.ID)
		}
		return out
	}
	checkRecord := func(id string, version float64, steps []string) {
		t.Helper()
		r := e.must(200, "GET", "/api/v1/runs/"+id, nil).obj(t)
		var got []string
		for _, s := range r["steps"].([]any) {
			got = append(got, s.(M)["id"].(string))
		}
		if r["workflow"] != "pipeline" || r["workflowVersion"] != version || !slices.Equal(got, steps) {
			t.Fatalf("run %s: workflow %v version %v steps %q, want pipeline %v %q", id, r["workflow"], r["workflowVersion"], got, version, steps)
		}
	}

	first := trigger(e, alice, "ship", M{"entity": "checkout"})
	v2 := e.must(200, "PUT", "/api/v1/workflows/pipeline", M{"steps": []M{
		{"id": "deploy", "type": "webhook", "url": "https://ci.example/deploy"},
		{"id": "settle", "type": "sleep", "duration": "1s"},
	}}).obj(t)
	if v2["version"] != 2.0 {
		t.Fatalf("workflow put: %v", v2)
	}
	second := trigger(e, alice, "ship", M{"entity": "checkout"})

	starts := runner.started()
	if len(starts) != 2 || starts[0].Run.ID != first || starts[1].Run.ID != second {
		t.Fatalf("started %d runs", len(starts))
	}
	if got := stepIDs(starts[0].Plan.Steps); !slices.Equal(got, []string{"build"}) || starts[0].Plan.Steps[0].URL != "https://ci.example/build" {
		t.Fatalf("first run's plan %+v", starts[0].Plan)
	}
	if starts[0].Run.WorkflowVer != 1 {
		t.Fatalf("first run started with workflow version %d", starts[0].Run.WorkflowVer)
	}
	if got := stepIDs(starts[1].Plan.Steps); !slices.Equal(got, []string{"deploy", "settle"}) {
		t.Fatalf("second run's plan %+v", starts[1].Plan)
	}
	checkRecord(first, 1, []string{"build"})
	checkRecord(second, 2, []string{"deploy", "settle"})
}
