package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

func lastWrite(t *testing.T, s *standin.Server) standin.Request {
	t.Helper()
	reqs := s.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method != "GET" {
			return reqs[i]
		}
	}
	t.Fatal("no write request")
	return standin.Request{}
}

func TestActSetStatus(t *testing.T) {
	tests := []struct {
		action, status string
		entity, inputs string
		id             string
	}{
		{"acknowledge", "acknowledged", `{"blueprint": "pagerdutyIncident", "identifier": "Q1QGYB805SG874"}`, ``, "Q1QGYB805SG874"},
		{"resolve", "resolved", `{"blueprint": "pagerdutyIncident", "identifier": "Q3XPBJRWJEU9R9"}`, `{}`, "Q3XPBJRWJEU9R9"},
		{"acknowledge", "acknowledged", `null`, `{"incident": "Q3XPBJRWJEU9R9"}`, "Q3XPBJRWJEU9R9"},
	}
	for _, tt := range tests {
		t.Run(tt.action+" "+tt.id, func(t *testing.T) {
			s, ctx, _, cfg := setup(t, "")
			res, err := PagerDuty{}.Act(ctx, pdk.ActRequest{Action: tt.action, Config: cfg,
				Entity: json.RawMessage(tt.entity), Inputs: json.RawMessage(tt.inputs)})
			if err != nil {
				t.Fatal(err)
			}
			w := lastWrite(t, s)
			if w.Method != "PUT" || w.Path != "/incidents/"+tt.id {
				t.Errorf("request %s %s", w.Method, w.Path)
			}
			if got := w.Header.Get("From"); got != "oncall@example.com" {
				t.Errorf("From %q", got)
			}
			if want := `{"incident":{"status":"` + tt.status + `","type":"incident_reference"}}`; string(w.Body) != want {
				t.Errorf("body %s, want %s", w.Body, want)
			}
			current, _ := s.Incident(tt.id)
			if len(res.Upserts) != 1 || res.Upserts[0].Kind != kindIncidents || string(res.Upserts[0].Item) != string(current) {
				t.Fatalf("upserts %+v", res.Upserts)
			}
			if props := mapItem(t, kindIncidents, res.Upserts[0].Item)["properties"].(map[string]any); props["status"] != tt.status {
				t.Errorf("upserted status %v", props["status"])
			}
			if string(res.Outputs) != `{"incident":"`+tt.id+`","status":"`+tt.status+`"}` {
				t.Errorf("outputs %s", res.Outputs)
			}
		})
	}
}

func TestActTrigger(t *testing.T) {
	tests := []struct {
		name, entity, inputs, wantBody string
	}{
		{"inputs", `null`, `{"service": "P00BUSE", "title": "Checkout down", "urgency": "low", "details": "5xx"}`,
			`{"incident":{"body":{"details":"5xx","type":"incident_body"},"service":{"id":"P00BUSE","type":"service_reference"},"title":"Checkout down","type":"incident","urgency":"low"}}`},
		{"on a service entity", `{"blueprint": "pagerdutyService", "identifier": "P9GEW6E"}`, `{"title": "Disk full"}`,
			`{"incident":{"service":{"id":"P9GEW6E","type":"service_reference"},"title":"Disk full","type":"incident","urgency":"high"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ctx, _, cfg := setup(t, "")
			before := len(s.Incidents())
			res, err := PagerDuty{}.Act(ctx, pdk.ActRequest{Action: "trigger", Config: cfg,
				Entity: json.RawMessage(tt.entity), Inputs: json.RawMessage(tt.inputs)})
			if err != nil {
				t.Fatal(err)
			}
			w := lastWrite(t, s)
			if w.Method != "POST" || w.Path != "/incidents" || w.Header.Get("From") != "oncall@example.com" {
				t.Errorf("request %s %s From %q", w.Method, w.Path, w.Header.Get("From"))
			}
			if string(w.Body) != tt.wantBody {
				t.Errorf("body %s\nwant %s", w.Body, tt.wantBody)
			}
			if len(s.Incidents()) != before+1 || len(res.Upserts) != 1 {
				t.Fatalf("incidents %d → %d, upserts %d", before, len(s.Incidents()), len(res.Upserts))
			}
			e := mapItem(t, kindIncidents, res.Upserts[0].Item)
			if e["properties"].(map[string]any)["status"] != "triggered" {
				t.Errorf("entity %v", e)
			}
			var out map[string]string
			if err := json.Unmarshal(res.Outputs, &out); err != nil || out["incident"] != e["identifier"] || out["htmlUrl"] == "" {
				t.Errorf("outputs %s (%v)", res.Outputs, err)
			}
		})
	}
}

func TestActErrors(t *testing.T) {
	tests := []struct {
		name, action, extraCfg, entity, inputs string
		sentinel                               error
		wantErr                                string
	}{
		{"unknown action", "snooze", "", `null`, ``, nil, `unknown action "snooze"`},
		{"no fromEmail", "acknowledge", `, "fromEmail": ""`, `{"blueprint": "pagerdutyIncident", "identifier": "Q1QGYB805SG874"}`, ``,
			ErrConfig, "fromEmail is required"},
		{"no incident", "resolve", "", `{"blueprint": "pagerdutyService", "identifier": "P00BUSE"}`, ``,
			ErrInputs, "resolve needs a pagerdutyIncident entity or inputs.incident"},
		{"unknown incident", "acknowledge", "", `null`, `{"incident": "PNOPE"}`, nil,
			"acknowledge incident PNOPE: status 404: Not Found (code 2100)"},
		{"already resolved", "resolve", "", `null`, `{"incident": "INCIDENT1"}`, nil,
			"resolve incident INCIDENT1: status 400: Invalid Input Provided (code 2001): Incident Already Resolved"},
		{"trigger without title", "trigger", "", `null`, `{"service": "P00BUSE"}`, ErrInputs, "trigger needs inputs.title"},
		{"trigger without service", "trigger", "", `null`, `{"title": "x"}`, ErrInputs, "trigger needs inputs.service"},
		{"trigger bad urgency", "trigger", "", `null`, `{"service": "P00BUSE", "title": "x", "urgency": "medium"}`, ErrInputs, `urgency "medium"`},
		{"trigger unknown service", "trigger", "", `null`, `{"service": "PNOPE", "title": "x"}`, nil,
			"trigger incident on service PNOPE: status 400"},
		{"inputs not an object", "trigger", "", `null`, `[1]`, ErrInputs, "inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx, _, cfg := setup(t, tt.extraCfg) // a later key wins: fromEmail "" overrides
			_, err := PagerDuty{}.Act(ctx, pdk.ActRequest{Action: tt.action, Config: cfg,
				Entity: json.RawMessage(tt.entity), Inputs: json.RawMessage(tt.inputs)})
			if err == nil || !contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.sentinel)
			}
		})
	}
}

func TestActTokenRefused(t *testing.T) {
	s, ctx, _, cfg := setup(t, "")
	s.FailNext("/incidents/{id}", 403)
	_, err := PagerDuty{}.Act(ctx, pdk.ActRequest{Action: "acknowledge", Config: cfg, Inputs: json.RawMessage(`{"incident": "Q1QGYB805SG874"}`)})
	if !errors.Is(err, ErrTokenRefused) {
		t.Fatalf("err = %v", err)
	}
}
