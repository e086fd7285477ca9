package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/github/standin"
)

// evalMapping evaluates every expression of kind's default mapping over
// item with jq, as the host does, and returns the results by name
// ("identifier", "title", "properties.x", "relations.y"); null results are
// left out.
func evalMapping(t *testing.T, kind string, item json.RawMessage) map[string]any {
	t.Helper()
	var m *pdk.ResourceMapping
	for i, r := range describe().Mappings.Resources {
		if r.Kind == kind {
			m = &describe().Mappings.Resources[i]
		}
	}
	if m == nil {
		t.Fatalf("no mapping for %s", kind)
	}
	exprs := map[string]string{"selector": m.Selector, "identifier": m.Entity.Identifier, "title": m.Entity.Title, "blueprint": m.Entity.Blueprint}
	for k, v := range m.Entity.Properties {
		exprs["properties."+k] = v
	}
	for k, v := range m.Entity.Relations {
		exprs["relations."+k] = v
	}
	var input any
	if err := json.Unmarshal(item, &input); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for name, src := range exprs {
		q, err := gojq.Parse(src)
		if err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
		v, ok := q.Run(input).Next()
		if err, isErr := v.(error); isErr {
			t.Fatalf("%s %s = %s: %v", kind, name, src, err)
		}
		if ok && v != nil {
			out[name] = v
		}
	}
	return out
}

func TestDefaultMappings(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{"repositories": []string{"hub4j-test-org/GHWorkflowRunTest", "Codertocat/Hello-World"}})
	runs, err := e.resyncAll(t, kindRun, cfg)
	if err != nil {
		t.Fatal(err)
	}
	deployments, err := e.resyncAll(t, kindDeployment, cfg)
	if err != nil {
		t.Fatal(err)
	}
	workflows, err := e.resyncAll(t, kindWorkflow, cfg)
	if err != nil {
		t.Fatal(err)
	}
	push, _ := pdk.SplitObject(standin.Payload("push"))
	started, _ := time.Parse(time.RFC3339, field(t, runs[0], "run_started_at"))
	updated, _ := time.Parse(time.RFC3339, field(t, runs[0], "updated_at"))
	tests := []struct {
		name string
		kind string
		item json.RawMessage
		want map[string]any
	}{
		{"run from the API", kindRun, runs[0], map[string]any{
			"identifier": 7890467516.0, "blueprint": bpRun, "title": "Artifacts workflow #47",
			"properties.status": "completed", "properties.conclusion": "success", "properties.branch": "main",
			"properties.actor": "gsmet", "properties.runAttempt": 1.0, "properties.event": "workflow_dispatch",
			"properties.durationSeconds": updated.Sub(started).Seconds(),
			"relations.workflow":         7433027.0, "relations.repository": "hub4j-test-org/GHWorkflowRunTest",
		}},
		{"queued run from a webhook: no duration", kindRun, mustMember(standin.Payload("workflow_run.requested"), "workflow_run"), map[string]any{
			"identifier": 289782451.0, "title": "run #163", "properties.status": "queued", "properties.durationSeconds": nil,
			"relations.repository": "octo-org/octo-repo", "relations.workflow": 2823525.0,
		}},
		{"workflow: repository from its URL", kindWorkflow, workflows[0], map[string]any{
			"identifier": 6820790.0, "blueprint": bpWorkflow, "properties.path": ".github/workflows/fast-workflow.yml",
			"relations.repository": "hub4j-test-org/GHWorkflowRunTest",
		}},
		{"workflow of GitHub Enterprise Server", kindWorkflow, json.RawMessage(`{"id": 1, "name": "ci", "url": "https://ghe.example/api/v3/repos/o/repos/actions/workflows/1"}`),
			map[string]any{"identifier": 1.0, "relations.repository": "o/repos"}},
		{"deployment with its latest status", kindDeployment, deployments[0], map[string]any{
			"identifier": 145988746.0, "blueprint": bpDeployment, "title": "production master",
			"properties.status": "success", "properties.environment": "production", "properties.sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
			"properties.createdAt": "2019-05-15T15:20:53Z", "relations.repository": "Codertocat/Hello-World",
		}},
		{"repository of a push: Unix times", kindRepository, push["repository"], map[string]any{
			"identifier": "Codertocat/Hello-World", "properties.createdAt": "2019-05-15T15:19:25Z",
			"properties.pushedAt": "2019-05-15T15:20:57Z", "properties.defaultBranch": "master", "properties.owner": "Codertocat",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evalMapping(t, tt.kind, tt.item)
			if got["selector"] != true {
				t.Errorf("selector %v", got["selector"])
			}
			for k, want := range tt.want {
				if fmt.Sprint(got[k]) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

func mustMember(doc []byte, key string) json.RawMessage {
	f, err := pdk.SplitObject(doc)
	if err != nil {
		panic(err)
	}
	return f[key]
}
