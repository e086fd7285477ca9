package actions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
)

func violationPaths(err error) []string {
	var verr *catalog.ValidationError
	if !errors.As(err, &verr) {
		return nil
	}
	var out []string
	for _, v := range verr.Violations {
		out = append(out, v.Path+": "+v.Message)
	}
	return out
}

func TestActionValidate(t *testing.T) {
	base := `{"identifier":"deploy","blueprint":"service","operation":"DAY-2","invocation":{"type":"webhook","url":"https://ci.example/deploy"}}`
	tests := []struct {
		name  string
		patch string // merged over base
		want  string // substring of a violation; "" means valid
	}{
		{"valid", `{}`, ""},
		{"design example", `{"userInputs":{"properties":{"version":{"type":"string"}},"required":["version"]},"condition":{"combinator":"and","rules":[{"property":"tier","operator":"<=","value":2}]},"approval":{"count":1,"approvers":{"roles":["member"]},"timeout":"72h","onTimeout":"decline"},"permissions":{"execute":{"roles":["member"]}}}`, ""},
		{"bad operation", `{"operation":"UPDATE"}`, "/operation"},
		{"bad url", `{"invocation":{"type":"webhook","url":"ftp://x"}}`, "/invocation/url"},
		{"bad jq body", `{"invocation":{"type":"webhook","url":"https://x","body":"{"}}`, "/invocation/body"},
		{"plugin needs action", `{"invocation":{"type":"plugin","integration":"k8s"}}`, "/invocation/action"},
		{"unknown invocation", `{"invocation":{"type":"email"}}`, "/invocation/type"},
		{"escalate needs approvers", `{"approval":{"count":1,"timeout":"1h","onTimeout":"escalate"}}`, "/approval/escalation"},
		{"bad timeout", `{"approval":{"timeout":"soon"}}`, "/approval/timeout"},
		{"bad input schema", `{"userInputs":{"properties":{"n":{"type":"float"}}}}`, "/userInputs/properties/n/type"},
		{"entity input needs blueprint", `{"userInputs":{"properties":{"svc":{"type":"string","format":"entity"}}}}`, "/userInputs/properties/svc/blueprint"},
		{"bad condition", `{"condition":{"combinator":"and","rules":[{"property":"x","operator":"~"}]}}`, "/condition"},
		{"update", `{"invocation":{"type":"update","patch":"{properties: {owner: .inputs.owner}}"}}`, ""},
		{"owning team approves a DAY-2", `{"approval":{"count":1,"approvers":{"owningTeam":true}}}`, ""},
		{"no owning team for a CREATE", `{"operation":"CREATE","approval":{"count":1,"approvers":{"owningTeam":true}}}`, "/approval/approvers/owningTeam"},
		{"no owning team escalation for a CREATE", `{"operation":"CREATE","approval":{"count":1,"approvers":{"roles":["member"]},"timeout":"1h","onTimeout":"escalate","escalation":{"approvers":{"owningTeam":true}}}}`, "/approval/escalation/approvers/owningTeam"},
		{"update needs patch", `{"invocation":{"type":"update"}}`, "/invocation/patch"},
		{"update bad jq", `{"invocation":{"type":"update","patch":"{properties:"}}`, "/invocation/patch"},
		{"update is not a CREATE", `{"operation":"CREATE","invocation":{"type":"update","patch":"{}"}}`, "/invocation/type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc, patch map[string]any
			_ = json.Unmarshal([]byte(base), &doc)
			if err := json.Unmarshal([]byte(tt.patch), &patch); err != nil {
				t.Fatal(err)
			}
			for k, v := range patch {
				doc[k] = v
			}
			raw, _ := json.Marshal(doc)
			var a Action
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatal(err)
			}
			err := a.Validate()
			got := strings.Join(violationPaths(err), "\n")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("want a violation at %s, got %v", tt.want, err)
			}
		})
	}
}

func TestWorkflowValidate(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		want  string
	}{
		{"design example", `[
			{"id": "approve", "type": "approval", "count": 1, "approvers": {"roles": ["member"]}, "timeout": "24h", "onTimeout": "decline"},
			{"id": "announce", "type": "webhook", "url": "https://chat.example/hook"},
			{"id": "pause", "type": "sleep", "duration": "5s"},
			{"id": "both", "type": "parallel", "steps": [
				{"id": "scale", "type": "plugin", "integration": "k8s-prod", "action": "scale", "inputs": "{replicas: .inputs.replicas}"},
				{"id": "ship", "type": "webhook", "url": "https://ci.example/deploy", "retry": {"maximumAttempts": 5}}]},
			{"id": "healthy", "type": "wait", "entity": {"blueprint": "workload", "identifier": ".entity.identifier"},
			 "until": {"combinator": "and", "rules": [{"property": "isHealthy", "operator": "=", "value": true}]}, "timeout": "10m"}]`, ""},
		{"unknown type", `[{"id":"a","type":"email"}]`, `unknown step type "email"`},
		{"duplicate id", `[{"id":"a","type":"sleep","duration":"1s"},{"id":"a","type":"sleep","duration":"1s"}]`, "duplicate step id"},
		{"duplicate nested id", `[{"id":"a","type":"parallel","steps":[{"id":"a","type":"sleep","duration":"1s"}]}]`, "duplicate step id"},
		{"dangling dependsOn", `[{"id":"p","type":"parallel","steps":[{"id":"a","type":"sleep","duration":"1s","dependsOn":["zz"]}]}]`, `unknown step "zz"`},
		{"cycle", `[{"id":"p","type":"parallel","steps":[{"id":"a","type":"sleep","duration":"1s","dependsOn":["b"]},{"id":"b","type":"sleep","duration":"1s","dependsOn":["a"]}]}]`, "dependency cycle"},
		{"later dependsOn", `[{"id":"a","type":"sleep","duration":"1s","dependsOn":["b"]},{"id":"b","type":"sleep","duration":"1s"}]`, "not an earlier step"},
		{"reference to a later step", `[{"id":"a","type":"webhook","url":"https://x","body":".steps.b.output"},{"id":"b","type":"sleep","duration":"1s"}]`, "has not finished"},
		{"reference to an unknown step", `[{"id":"a","type":"webhook","url":"https://x","body":".steps.nope.output"}]`, `unknown step "nope"`},
		{"reference to an earlier step", `[{"id":"a","type":"sleep","duration":"1s"},{"id":"b","type":"webhook","url":"https://x","body":".steps.a.status"}]`, ""},
		{"wait needs timeout", `[{"id":"w","type":"wait","entity":{"blueprint":"x","identifier":"y"},"until":{"combinator":"and","rules":[]}}]`, "/steps/0/timeout"},
		{"sleep needs duration", `[{"id":"s","type":"sleep"}]`, "/steps/0/duration"},
		{"update", `[{"id":"u","type":"update","patch":"{properties: {tier: 1}}"}]`, ""},
		{"update of another entity", `[{"id":"a","type":"sleep","duration":"1s"},{"id":"u","type":"update","entity":{"blueprint":"env",
			"identifier":".inputs.env"},"patch":"{properties: {note: .steps.a.status}}"}]`, ""},
		{"update needs patch", `[{"id":"u","type":"update"}]`, "/steps/0/patch"},
		{"update selector needs both", `[{"id":"u","type":"update","patch":"{}","entity":{"blueprint":"env"}}]`, "/steps/0/entity"},
		{"update refers to a later step", `[{"id":"u","type":"update","patch":".steps.b.output"},{"id":"b","type":"sleep","duration":"1s"}]`, "has not finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Workflow
			if err := json.Unmarshal([]byte(`{"identifier":"flow","steps":`+tt.steps+`}`), &w); err != nil {
				t.Fatal(err)
			}
			err := w.Validate()
			got := strings.Join(violationPaths(err), "\n")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("want %q, got %v", tt.want, err)
			}
		})
	}
}

func TestPlanForUpdate(t *testing.T) {
	a := &Action{Invocation: Invocation{Type: InvokeUpdate, Patch: "{}", Retry: &Retry{MaximumAttempts: 2}}}
	p := PlanFor(a, nil)
	if len(p.Steps) != 1 || p.Steps[0].Type != StepUpdate || p.Steps[0].Patch != "{}" || p.Steps[0].Retry.MaximumAttempts != 2 {
		t.Fatalf("plan %+v", p)
	}
}

func TestPlanFor(t *testing.T) {
	a := &Action{Approval: &Approval{Count: 2}, Invocation: Invocation{Type: InvokeWorkflow, Workflow: "flow"}}
	wf := &Workflow{Steps: []Step{{ID: "approval", Type: StepSleep, Duration: "1s"}}, OnFailure: []Step{{ID: "undo", Type: StepWebhook}}}
	p := PlanFor(a, wf)
	if len(p.Steps) != 2 || p.Steps[0].ID != "action.approval" || p.Steps[0].Count != 2 || p.Steps[1].ID != "approval" || len(p.OnFailure) != 1 {
		t.Fatalf("plan %+v", p)
	}
}
