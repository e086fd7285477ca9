package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/portico-dev/portico/pdk"
)

// SignatureHeader carries a V3 webhook's signatures: comma-separated
// "v1=<hex HMAC-SHA256(webhookSecret, raw body)>", one per active secret.
const SignatureHeader = "X-PagerDuty-Signature"

// Webhook rejections (the host answers 401 and applies nothing).
var (
	ErrSignatureMissing  = errors.New("missing " + SignatureHeader)
	ErrSignatureMismatch = errors.New("no " + SignatureHeader + " signature matches")
)

// event is the event of a V3 webhook delivery ({"event": {...}}), split
// without decoding its data.
type event struct {
	ID, EventType, ResourceType, OccurredAt string
	Agent, Data                             json.RawMessage
}

// parseEvent splits a delivery in two tight passes: a Wasm guest pays
// dearly for encoding/json, and most deliveries need no more.
func parseEvent(body []byte) (event, error) {
	top, err := pdk.SplitObject(body)
	if err != nil {
		return event{}, fmt.Errorf("decode delivery: %w", err)
	}
	raw := top["event"]
	if len(raw) == 0 || raw[0] != '{' {
		return event{}, errors.New("decode delivery: no event object")
	}
	f, err := pdk.SplitObject(raw)
	if err != nil {
		return event{}, fmt.Errorf("decode delivery: event: %w", err)
	}
	return event{ID: rawString(f["id"]), EventType: rawString(f["event_type"]), ResourceType: rawString(f["resource_type"]),
		OccurredAt: rawString(f["occurred_at"]), Agent: f["agent"], Data: f["data"]}, nil
}

// Webhook verifies a PagerDuty V3 delivery and turns it into changes:
// incident.* events upsert the incident (its current state, fetched from
// the REST API; the event's own data, brought to the REST shape, when that
// fails), service.deleted deletes the service, pagey.ping is answered.
func (p PagerDuty) Webhook(ctx context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	if err := verify(ctx, req); err != nil {
		return nil, err
	}
	ev, err := parseEvent(req.Body)
	if err != nil {
		return nil, err
	}
	ok := &pdk.WebhookResponse{Status: 200, Body: `{"status":"ok"}`}
	switch {
	case ev.EventType == "pagey.ping":
		return &pdk.WebhookResult{Response: ok}, nil
	case ev.ResourceType == "incident" && strings.HasPrefix(ev.EventType, "incident."):
		item, err := p.webhookIncident(ctx, req.Config, ev)
		if err != nil {
			return nil, err
		}
		return &pdk.WebhookResult{Upserts: []pdk.KindItem{{Kind: kindIncidents, Item: item}}, Response: ok}, nil
	case ev.EventType == "service.deleted":
		id := stringField(ev.Data, "id")
		if id == "" {
			return nil, errors.New("decode delivery: service.deleted without data.id")
		}
		item, _ := json.Marshal(map[string]string{"id": id})
		return &pdk.WebhookResult{Deletes: []pdk.KindItem{{Kind: kindServices, Item: item}}, Response: ok}, nil
	}
	return &pdk.WebhookResult{Response: &pdk.WebhookResponse{Status: 202, Body: `{"status":"ignored"}`}}, nil
}

// verify checks X-PagerDuty-Signature against the HMAC the host computes
// with the webhookSecret: any v1 signature of the list may match (PagerDuty
// sends one per secret while a secret rotates).
func verify(ctx context.Context, req pdk.WebhookRequest) error {
	header := req.Header(SignatureHeader)
	if strings.TrimSpace(header) == "" {
		return ErrSignatureMissing
	}
	mac, err := pdk.HostFrom(ctx).HMAC(ctx, pdk.HMACRequest{Secret: "webhookSecret", Algorithm: "sha256", Data: req.Body})
	if err != nil {
		return fmt.Errorf("sign delivery: %w", err)
	}
	want := []byte(strings.ToLower(mac.Hex))
	matched := false
	for _, sig := range strings.Split(header, ",") {
		hexSig, found := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
		// Compare every candidate, in constant time each.
		if found && hmac.Equal([]byte(strings.ToLower(hexSig)), want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	return nil
}

// webhookIncident returns the REST object of the event's incident: GET
// /incidents/{id} (current state, so late or reordered deliveries cannot
// roll it back), or, when that fails, the event's data in the REST shape.
func (p PagerDuty) webhookIncident(ctx context.Context, rawCfg json.RawMessage, ev event) (json.RawMessage, error) {
	id := ""
	if len(ev.Data) > 0 && ev.Data[0] == '{' {
		id = stringField(ev.Data, "id")
	}
	if id == "" {
		return nil, errors.New("decode delivery: incident event without data.id")
	}
	cfg, err := decodeConfig(rawCfg)
	if err != nil {
		return nil, err
	}
	c := p.client(cfg)
	c.maxWait = 0 // answer the delivery now; PagerDuty retries failed ones
	resp, err := c.do(ctx, request{path: "/incidents/" + url.PathEscape(id)})
	if err == nil {
		var fields map[string]json.RawMessage
		if fields, err = resp.Fields(); err == nil {
			if inc := fields["incident"]; len(inc) > 0 && inc[0] == '{' {
				return inc, nil
			}
			err = fmt.Errorf("%w: no incident object", ErrMalformed)
		}
	}
	pdk.Logf(ctx, pdk.LevelWarn, "webhook %s: GET /incidents/%s: %v; applying the event's data", ev.ID, id, err)
	item, err := restIncident(ev)
	if err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	return item, nil
}

// restIncident brings a V3 event's incident to the REST shape the mapping
// reads: number → incident_number, assignees → assignments, and the
// event's time as created_at, acknowledgements or resolved_at when the
// data lacks them.
func restIncident(ev event) (json.RawMessage, error) {
	var d map[string]any
	if err := json.Unmarshal(ev.Data, &d); err != nil || d == nil {
		return nil, errors.New("incident event without a data object")
	}
	setDefault := func(k string, v any) {
		if d[k] == nil {
			d[k] = v
		}
	}
	if n, ok := d["number"]; ok {
		setDefault("incident_number", n)
	}
	if list, ok := d["assignees"].([]any); ok && d["assignments"] == nil {
		assignments := make([]any, 0, len(list))
		for _, a := range list {
			assignments = append(assignments, map[string]any{"assignee": a})
		}
		d["assignments"] = assignments
	}
	at := ev.OccurredAt
	var agent any
	_ = json.Unmarshal(ev.Agent, &agent)
	switch ev.EventType {
	case "incident.triggered":
		setDefault("created_at", at)
	case "incident.acknowledged":
		setDefault("acknowledgements", []any{map[string]any{"at": at, "acknowledger": agent}})
	case "incident.resolved":
		setDefault("resolved_at", at)
	}
	switch ev.EventType {
	case "incident.triggered", "incident.acknowledged", "incident.unacknowledged", "incident.resolved", "incident.reopened":
		d["last_status_change_at"] = at
	}
	if t, ok := d["title"].(string); ok {
		setDefault("summary", fmt.Sprintf("[#%v] %s", d["incident_number"], t))
	}
	return json.Marshal(d)
}
