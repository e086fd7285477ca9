package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	"github.com/portico-dev/portico/core/catalog/redisstore"
)

// fakeRunner keeps started runs in memory; an approval step first makes
// the run wait.
type fakeRunner struct {
	mu        sync.Mutex
	runs      map[string]*actions.Run
	decisions []actions.Decision
	cancelled []string
}

func (f *fakeRunner) Start(_ context.Context, req actions.StartRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
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

func newActionsEnv(t *testing.T, runner actions.Runner) *accessEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cat := catalog.NewService(redisstore.New(rdb, redisstore.Options{}))
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{AdminToken: token})
	if err := acc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc := actions.NewService(redisactions.New(rdb, ""), cat, runner)
	srv := httptest.NewServer(api.New(api.Config{Catalog: cat, Access: acc, Actions: svc}))
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
