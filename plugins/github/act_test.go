package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/github/standin"
)

func runEntity(repo, id string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"blueprint": bpRun, "identifier": id,
		"relations": map[string]any{"workflow": "2823525", "repository": repo}})
	return b
}

func TestActions(t *testing.T) {
	const octo, hello = "octo-org/octo-repo", "Codertocat/Hello-World"
	workflowEntity, _ := json.Marshal(map[string]any{"blueprint": bpWorkflow, "identifier": "2823525",
		"relations": map[string]any{"repository": octo}})
	tests := []struct {
		name    string
		action  string
		entity  json.RawMessage
		inputs  string
		request string // METHOD path the stand-in must have received last but one (or last)
		body    string // its JSON body, when it has one
		run     map[string]string
		wantErr string
	}{
		{name: "dispatch by file name", action: "dispatch",
			inputs:  `{"repository": "octo-org/octo-repo", "workflow": "test.yml", "ref": "release", "inputs": {"level": "3", "dry": true}}`,
			request: "POST /repos/octo-org/octo-repo/actions/workflows/test.yml/dispatches",
			body:    `{"inputs":{"dry":true,"level":"3"},"ref":"release"}`},
		{name: "dispatch a workflow entity on its default branch", action: "dispatch", entity: workflowEntity,
			request: "POST /repos/octo-org/octo-repo/actions/workflows/2823525/dispatches", body: `{"inputs":{},"ref":"master"}`},
		{name: "rerun a running run (before it is cancelled below)", action: "rerun", entity: runEntity(hello, "2202229078"),
			wantErr: "This workflow is already running"},
		{name: "cancel a queued run", action: "cancel", entity: runEntity(octo, "289782451"),
			request: "POST /repos/octo-org/octo-repo/actions/runs/289782451/cancel",
			run:     map[string]string{"id": "289782451", "status": "completed", "conclusion": "cancelled"}},
		{name: "cancel a run by inputs", action: "cancel", inputs: `{"repository": "Codertocat/Hello-World", "run": "2202229078"}`,
			request: "POST /repos/Codertocat/Hello-World/actions/runs/2202229078/cancel",
			run:     map[string]string{"id": "2202229078", "status": "completed", "conclusion": "cancelled"}},
		{name: "rerun a completed run", action: "rerun", entity: runEntity("hub4j-test-org/GHWorkflowRunTest", "7890467516"),
			request: "POST /repos/hub4j-test-org/GHWorkflowRunTest/actions/runs/7890467516/rerun",
			run:     map[string]string{"id": "7890467516", "status": "queued", "conclusion": "null", "run_attempt": "2"}},
		{name: "cancel a completed run", action: "cancel", entity: runEntity("hub4j-test-org/GHWorkflowRunTest", "686039314"),
			wantErr: `Cannot cancel a workflow run that is completed.`},
		{name: "no repository", action: "cancel", inputs: `{"run": "1"}`, wantErr: "no repository"},
		{name: "bad run id", action: "rerun", inputs: `{"repository": "a/b", "run": "../hooks"}`, wantErr: `run "../hooks": want a run id`},
		{name: "dispatch without workflow", action: "dispatch", inputs: `{"repository": "a/b"}`, wantErr: "no workflow"},
		{name: "unknown workflow", action: "dispatch", inputs: `{"repository": "octo-org/octo-repo", "workflow": "nope.yml", "ref": "x"}`,
			wantErr: "not found on GitHub"},
		{name: "unknown action", action: "delete", inputs: `{"repository": "a/b"}`, wantErr: `unknown action "delete"`},
	}
	e := newEnv(t)
	cfg := e.config(map[string]any{"org": "octo-org"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.api.Requests())
			var inputs json.RawMessage
			if tt.inputs != "" {
				inputs = json.RawMessage(tt.inputs)
			}
			res, err := e.g.Act(e.ctx, pdk.ActRequest{Action: tt.action, Inputs: inputs, Entity: tt.entity, Config: cfg})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sent *standin.Request
			for _, r := range e.api.Requests()[before:] {
				if r.Method+" "+r.Path == tt.request {
					sent = &r
				}
			}
			if sent == nil {
				t.Fatalf("no %s among %v", tt.request, e.api.Requests()[before:])
			}
			if !strings.HasPrefix(sent.Authorization, "Bearer ") {
				t.Errorf("sent without the token")
			}
			if tt.body != "" && string(sent.Body) != tt.body {
				t.Errorf("body %s, want %s", sent.Body, tt.body)
			}
			if tt.run == nil {
				if len(res.Upserts) != 0 {
					t.Errorf("upserts %v", res.Upserts)
				}
				return
			}
			if len(res.Upserts) != 1 || res.Upserts[0].Kind != kindRun {
				t.Fatalf("upserts %+v", res.Upserts)
			}
			for k, v := range tt.run {
				if got := field(t, res.Upserts[0].Item, k); got != v {
					t.Errorf("run %s = %s, want %s", k, got, v)
				}
			}
		})
	}
}
