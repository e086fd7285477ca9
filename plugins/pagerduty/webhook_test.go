package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

func TestWebhookSignature(t *testing.T) {
	_, ctx, _, cfg := setup(t, "")
	body, err := standin.Fixture("incident.triggered.json")
	if err != nil {
		t.Fatal(err)
	}
	good := standin.Sign(testSecret, body)
	other := standin.Sign("an-old-secret", body)
	tests := []struct {
		name    string
		header  []string // nil: no header
		wantErr error
	}{
		{"valid", []string{good}, nil},
		{"valid, upper-case hex", []string{"v1=" + strings.ToUpper(strings.TrimPrefix(good, "v1="))}, nil},
		{"several, the second matches", []string{other + "," + good}, nil},
		{"several with spaces, the first matches", []string{good + ", " + other}, nil},
		{"wrong secret", []string{other}, ErrSignatureMismatch},
		{"no v1 prefix", []string{strings.TrimPrefix(good, "v1=")}, ErrSignatureMismatch},
		{"other scheme", []string{"v2=" + strings.TrimPrefix(good, "v1=")}, ErrSignatureMismatch},
		{"empty", []string{""}, ErrSignatureMissing},
		{"missing", nil, ErrSignatureMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := pdk.WebhookRequest{Body: body, Config: cfg, Headers: map[string][]string{"Content-Type": {"application/json"}}}
			if tt.header != nil {
				req.Headers["x-pagerduty-signature"] = tt.header
			}
			res, err := PagerDuty{}.Webhook(ctx, req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || res != nil {
					t.Fatalf("err = %v, res %+v; want %v", err, res, tt.wantErr)
				}
				return
			}
			if err != nil || len(res.Upserts) != 1 || res.Response.Status != 200 {
				t.Fatalf("res %+v, err %v", res, err)
			}
		})
	}
	// A signature over other bytes does not verify this body.
	req := pdk.WebhookRequest{Body: append([]byte(" "), body...), Config: cfg,
		Headers: map[string][]string{standin.SignatureHeader: {good}}}
	if _, err := (PagerDuty{}).Webhook(ctx, req); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("tampered body: %v", err)
	}
}

// The fixtures' incidents are unknown upstream (404): the event's own
// data, brought to the REST shape, is applied.
func TestWebhookFixturesFallBackToEventData(t *testing.T) {
	_, ctx, h, cfg := setup(t, "")
	tests := []struct {
		fixture string
		want    map[string]any
		unset   []string
	}{
		{"incident.triggered.json", map[string]any{"status": "triggered", "number": 9, "urgency": "high",
			"assignees": []any{"PIG 208"}, "createdAt": "2021-06-04T13:35:29.781Z", "lastStatusChangeAt": "2021-06-04T13:35:29.781Z"},
			[]string{"acknowledgedAt", "resolvedAt", "priority"}},
		{"incident.acknowledged.json", map[string]any{"status": "acknowledged", "number": 10,
			"acknowledgedAt": "2021-06-04T13:55:30.394Z"}, []string{"resolvedAt", "createdAt"}},
		{"incident.resolved.json", map[string]any{"status": "resolved", "assignees": []any{},
			"resolvedAt": "2021-06-04T13:16:53.816Z"}, []string{"acknowledgedAt"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body, err := standin.Fixture(tt.fixture)
			if err != nil {
				t.Fatal(err)
			}
			res, err := PagerDuty{}.Webhook(ctx, pdk.WebhookRequest{Body: body, Config: cfg,
				Headers: map[string][]string{standin.SignatureHeader: {standin.Sign(testSecret, body)}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Upserts) != 1 || res.Upserts[0].Kind != kindIncidents {
				t.Fatalf("upserts %+v", res.Upserts)
			}
			e := mapItem(t, kindIncidents, res.Upserts[0].Item)
			props := e["properties"].(map[string]any)
			for k, v := range tt.want {
				if jsonString(props[k]) != jsonString(v) {
					t.Errorf("%s = %s, want %s", k, jsonString(props[k]), jsonString(v))
				}
			}
			for _, k := range tt.unset {
				if v, ok := props[k]; ok {
					t.Errorf("%s = %v, want unset", k, v)
				}
			}
			if rel := e["relations"].(map[string]any)["service"]; rel != "PA2P440" {
				t.Errorf("service relation %v", rel)
			}
		})
	}
	if len(h.logs) != 3 || !contains(h.logs[0], "status 404") {
		t.Errorf("logs %q, want one warning per 404", h.logs)
	}
}

// An incident PagerDuty knows is applied in its current REST state, even
// when the delivery is older (here: a late "triggered" after the resolve).
func TestWebhookAppliesCurrentState(t *testing.T) {
	s, ctx, _, cfg := setup(t, "")
	const id = "Q1QGYB805SG874"
	late, err := s.WebhookEvent("incident.triggered", id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetIncidentStatus(id, "resolved", "ops@example.com"); err != nil {
		t.Fatal(err)
	}
	res, err := PagerDuty{}.Webhook(ctx, pdk.WebhookRequest{Body: late, Config: cfg,
		Headers: map[string][]string{standin.SignatureHeader: {standin.Sign(testSecret, late)}}})
	if err != nil {
		t.Fatal(err)
	}
	current, _ := s.Incident(id)
	if len(res.Upserts) != 1 || string(res.Upserts[0].Item) != string(current) {
		t.Fatalf("upserted %s\nwant the stand-in's %s", res.Upserts[0].Item, current)
	}
	props := mapItem(t, kindIncidents, res.Upserts[0].Item)["properties"].(map[string]any)
	if props["status"] != "resolved" || props["createdAt"] != "2025-11-07T08:48:39Z" || props["priority"] != "P2" {
		t.Errorf("properties %v", props)
	}
}

func TestWebhookOtherEvents(t *testing.T) {
	_, ctx, _, cfg := setup(t, "")
	tests := []struct {
		name, body string
		status     int
		deletes    string
		wantErr    string
	}{
		{"ping", `{"event": {"event_type": "pagey.ping", "resource_type": "pagey", "data": {"type": "ping", "message": "Hello from your friend Pagey!"}}}`, 200, "", ""},
		{"service deleted", `{"event": {"event_type": "service.deleted", "resource_type": "service", "data": {"id": "P00BUSE", "type": "service"}}}`, 200, `{"id":"P00BUSE"}`, ""},
		{"unhandled", `{"event": {"event_type": "service.updated", "resource_type": "service", "data": {"id": "P00BUSE"}}}`, 202, "", ""},
		{"not JSON", `{"event": `, 0, "", "decode delivery"},
		{"incident without id", `{"event": {"event_type": "incident.triggered", "resource_type": "incident", "data": {"type": "incident"}}}`, 0, "", "incident event without data.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			res, err := PagerDuty{}.Webhook(ctx, pdk.WebhookRequest{Body: body, Config: cfg,
				Headers: map[string][]string{standin.SignatureHeader: {standin.Sign(testSecret, body)}}})
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.Status != tt.status || len(res.Upserts) != 0 {
				t.Errorf("res %+v", res)
			}
			var deletes string
			if len(res.Deletes) == 1 && res.Deletes[0].Kind == kindServices {
				deletes = string(res.Deletes[0].Item)
			}
			if deletes != tt.deletes {
				t.Errorf("deletes %+v, want %s", res.Deletes, tt.deletes)
			}
		})
	}
}

func TestRestIncidentKeepsRESTFields(t *testing.T) {
	ev := event{EventType: "incident.acknowledged", OccurredAt: "2026-12-04T10:00:00Z"}
	ev.Data = json.RawMessage(`{"id": "P1", "number": 3, "title": "x", "created_at": "2026-12-04T09:00:00Z",
		"assignments": [{"assignee": {"summary": "kept"}}], "assignees": [{"summary": "ignored"}],
		"acknowledgements": [{"at": "2026-12-04T09:30:00Z"}]}`)
	raw, err := restIncident(ev)
	if err != nil {
		t.Fatal(err)
	}
	props := mapItem(t, kindIncidents, raw)["properties"].(map[string]any)
	want := map[string]any{"createdAt": "2026-12-04T09:00:00Z", "acknowledgedAt": "2026-12-04T09:30:00Z",
		"assignees": []any{"kept"}, "number": 3, "lastStatusChangeAt": "2026-12-04T10:00:00Z"}
	for k, v := range want {
		if jsonString(props[k]) != jsonString(v) {
			t.Errorf("%s = %s, want %s", k, jsonString(props[k]), jsonString(v))
		}
	}
}
