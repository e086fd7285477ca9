package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/portico-dev/portico/pdk"
)

// ErrInputs reports action inputs (or the entity) an action cannot use.
var ErrInputs = errors.New("inputs")

// actEntity is the part of the entity an action runs on that it reads.
type actEntity struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
}

// Act runs acknowledge, resolve or trigger. The incident PagerDuty returns
// comes back as an upsert, so the entity shows the new state at once.
func (p PagerDuty) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	switch req.Action {
	case "acknowledge", "resolve", "trigger":
	default:
		return nil, fmt.Errorf("unknown action %q", req.Action)
	}
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if cfg.FromEmail == "" {
		return nil, fmt.Errorf("%w: fromEmail is required for actions (PagerDuty's From header)", ErrConfig)
	}
	var entity actEntity
	if len(req.Entity) > 0 && string(req.Entity) != "null" {
		if err := json.Unmarshal(req.Entity, &entity); err != nil {
			return nil, fmt.Errorf("decode entity: %w", err)
		}
	}
	c := p.client(cfg)
	if req.Action == "trigger" {
		return trigger(ctx, c, req.Inputs, entity)
	}
	return setStatus(ctx, c, req.Action, req.Inputs, entity)
}

var statusOf = map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}

// setStatus acknowledges or resolves an incident: PUT /incidents/{id}.
func setStatus(ctx context.Context, c client, action string, inputs json.RawMessage, entity actEntity) (*pdk.ActResult, error) {
	var in struct {
		Incident string `json:"incident"`
	}
	if err := decodeInputs(inputs, &in); err != nil {
		return nil, err
	}
	id := in.Incident
	if id == "" {
		if entity.Blueprint != "pagerdutyIncident" || entity.Identifier == "" {
			return nil, fmt.Errorf("%w: %s needs a pagerdutyIncident entity or inputs.incident", ErrInputs, action)
		}
		id = entity.Identifier
	}
	status := statusOf[action]
	body, err := json.Marshal(map[string]any{"incident": map[string]string{"type": "incident_reference", "status": status}})
	if err != nil {
		return nil, err
	}
	path := "/incidents/" + url.PathEscape(id)
	resp, err := c.do(ctx, request{method: "PUT", path: path, body: body, from: true})
	if err != nil {
		return nil, fmt.Errorf("%s incident %s: %w", action, id, err)
	}
	inc, err := incidentOf(resp)
	if err != nil {
		return nil, fmt.Errorf("%s incident %s: %w", action, id, err)
	}
	outputs, _ := json.Marshal(map[string]string{"incident": id, "status": status})
	return &pdk.ActResult{
		Message: fmt.Sprintf("incident %s %s", id, status),
		Logs:    []string{"PUT " + path + " status=" + status + " as " + c.cfg.FromEmail},
		Outputs: outputs,
		Upserts: []pdk.KindItem{{Kind: kindIncidents, Item: inc}},
	}, nil
}

// trigger opens an incident: POST /incidents.
func trigger(ctx context.Context, c client, inputs json.RawMessage, entity actEntity) (*pdk.ActResult, error) {
	var in struct {
		Service string `json:"service"`
		Title   string `json:"title"`
		Urgency string `json:"urgency"`
		Details string `json:"details"`
	}
	if err := decodeInputs(inputs, &in); err != nil {
		return nil, err
	}
	if in.Service == "" && entity.Blueprint == "pagerdutyService" {
		in.Service = entity.Identifier
	}
	switch {
	case in.Service == "":
		return nil, fmt.Errorf("%w: trigger needs inputs.service or a pagerdutyService entity", ErrInputs)
	case in.Title == "":
		return nil, fmt.Errorf("%w: trigger needs inputs.title", ErrInputs)
	case in.Urgency == "":
		in.Urgency = "high"
	case in.Urgency != "high" && in.Urgency != "low":
		return nil, fmt.Errorf("%w: urgency %q: want high or low", ErrInputs, in.Urgency)
	}
	incident := map[string]any{
		"type": "incident", "title": in.Title, "urgency": in.Urgency,
		"service": map[string]string{"id": in.Service, "type": "service_reference"},
	}
	if in.Details != "" {
		incident["body"] = map[string]string{"type": "incident_body", "details": in.Details}
	}
	body, err := json.Marshal(map[string]any{"incident": incident})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: "POST", path: "/incidents", body: body, from: true})
	if err != nil {
		return nil, fmt.Errorf("trigger incident on service %s: %w", in.Service, err)
	}
	inc, err := incidentOf(resp)
	if err != nil {
		return nil, fmt.Errorf("trigger incident on service %s: %w", in.Service, err)
	}
	id, htmlURL := stringField(inc, "id"), stringField(inc, "html_url")
	outputs, _ := json.Marshal(map[string]string{"incident": id, "htmlUrl": htmlURL})
	return &pdk.ActResult{
		Message: fmt.Sprintf("incident %s triggered on service %s", id, in.Service),
		Logs:    []string{"POST /incidents service=" + in.Service + " urgency=" + in.Urgency + " as " + c.cfg.FromEmail},
		Outputs: outputs,
		Upserts: []pdk.KindItem{{Kind: kindIncidents, Item: inc}},
	}, nil
}

func decodeInputs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInputs, err)
	}
	return nil
}

// incidentOf returns the raw incident of a {"incident": {...}} response.
func incidentOf(resp *pdk.HTTPResponse) (json.RawMessage, error) {
	fields, err := resp.Fields()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	inc := fields["incident"]
	if len(inc) == 0 || inc[0] != '{' {
		return nil, fmt.Errorf("%w: no incident object", ErrMalformed)
	}
	return inc, nil
}
