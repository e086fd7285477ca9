package main

import (
	"context"
	"encoding/json"

	"github.com/portico-dev/portico/pdk"
)

// Kinds of raw items, listed in this order by a resync: incidents relate to
// services and on-calls to schedules, so the targets come first.
const (
	kindServices  = "services"
	kindSchedules = "schedules"
	kindOncalls   = "oncalls"
	kindIncidents = "incidents"
)

const configSchema = `{"type": "object",
 "properties": {
  "baseUrl": {"type": "string", "format": "uri", "default": "https://api.pagerduty.com",
              "description": "PagerDuty REST API endpoint (https://api.eu.pagerduty.com for the EU service region, or a proxy)"},
  "fromEmail": {"type": "string", "format": "email",
                "description": "Email of the PagerDuty user actions act as (the From header); required for actions"},
  "teamIds": {"type": "array", "items": {"type": "string"},
              "description": "Only services and incidents of these PagerDuty teams"},
  "incidentsSinceDays": {"type": "integer", "minimum": 1, "maximum": 180, "default": 30,
                         "description": "Incidents created in this many past days are synced, plus every open incident"},
  "serviceStats": {"type": "boolean", "default": true,
                   "description": "Open incidents, MTTA and MTTR over 30 days on each service (MTTA/MTTR need PagerDuty Analytics)"},
  "pageSize": {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
  "maxRetryWaitSeconds": {"type": "integer", "minimum": 0, "maximum": 25, "default": 10,
                          "description": "Longest a call waits on PagerDuty's Retry-After when rate limited (429) before failing"}
 }}`

var blueprints = []string{
	`{"identifier": "pagerdutyService", "title": "PagerDuty service", "icon": "pagerduty",
  "schema": {"properties": {
   "status": {"type": "string", "title": "Status"},
   "description": {"type": "string", "title": "Description"},
   "htmlUrl": {"type": "string", "format": "url", "title": "PagerDuty URL"},
   "escalationPolicy": {"type": "string", "title": "Escalation policy"},
   "escalationPolicyId": {"type": "string", "title": "Escalation policy id"},
   "teams": {"type": "array", "title": "PagerDuty teams", "items": {"type": "string"}},
   "oncallNow": {"type": "array", "title": "On call now", "description": "Users on call at the first escalation level", "items": {"type": "string"}},
   "openIncidents": {"type": "integer", "minimum": 0, "title": "Open incidents", "description": "Triggered or acknowledged, as of the last resync"},
   "incidents30d": {"type": "integer", "minimum": 0, "title": "Incidents (30 days)"},
   "mttaSeconds": {"type": "number", "title": "MTTA (s, 30 days)", "description": "Mean time to first acknowledgement, PagerDuty Analytics"},
   "mttrSeconds": {"type": "number", "title": "MTTR (s, 30 days)", "description": "Mean time to resolve, PagerDuty Analytics"},
   "lastIncidentAt": {"type": "string", "format": "date-time", "title": "Last incident"},
   "createdAt": {"type": "string", "format": "date-time", "title": "Created"}}}}`,
	`{"identifier": "pagerdutySchedule", "title": "PagerDuty schedule", "icon": "pagerduty",
  "schema": {"properties": {
   "description": {"type": "string", "title": "Description"},
   "timeZone": {"type": "string", "title": "Time zone"},
   "htmlUrl": {"type": "string", "format": "url", "title": "PagerDuty URL"},
   "users": {"type": "array", "title": "Users", "items": {"type": "string"}},
   "escalationPolicies": {"type": "array", "title": "Escalation policies", "items": {"type": "string"}}}}}`,
	`{"identifier": "pagerdutyOncall", "title": "PagerDuty on-call", "icon": "pagerduty",
  "schema": {"properties": {
   "user": {"type": "string", "title": "User"},
   "userEmail": {"type": "string", "title": "User email"},
   "escalationPolicy": {"type": "string", "title": "Escalation policy"},
   "escalationPolicyId": {"type": "string", "title": "Escalation policy id"},
   "escalationLevel": {"type": "integer", "title": "Escalation level"},
   "start": {"type": "string", "format": "date-time", "title": "From"},
   "end": {"type": "string", "format": "date-time", "title": "Until"}}},
  "relations": {"schedule": {"title": "Schedule", "target": "pagerdutySchedule", "many": false, "required": false}}}`,
	`{"identifier": "pagerdutyIncident", "title": "PagerDuty incident", "icon": "pagerduty",
  "schema": {"properties": {
   "status": {"type": "string", "title": "Status", "enum": ["triggered", "acknowledged", "resolved"]},
   "urgency": {"type": "string", "title": "Urgency"},
   "priority": {"type": "string", "title": "Priority"},
   "number": {"type": "integer", "title": "Number"},
   "description": {"type": "string", "title": "Description"},
   "assignees": {"type": "array", "title": "Assignees", "items": {"type": "string"}},
   "escalationPolicy": {"type": "string", "title": "Escalation policy"},
   "createdAt": {"type": "string", "format": "date-time", "title": "Created"},
   "acknowledgedAt": {"type": "string", "format": "date-time", "title": "Acknowledged"},
   "resolvedAt": {"type": "string", "format": "date-time", "title": "Resolved"},
   "lastStatusChangeAt": {"type": "string", "format": "date-time", "title": "Last status change"},
   "htmlUrl": {"type": "string", "format": "url", "title": "PagerDuty URL"}}},
  "relations": {"service": {"title": "Service", "target": "pagerdutyService", "many": false, "required": false}}}`,
}

// mappings are the default resource mappings: jq over PagerDuty's REST
// objects (webhook deliveries are brought to the same shape). Services
// carry "__oncalls" and "__stats", added by the resync (see services.go).
var mappings = []pdk.ResourceMapping{
	{Kind: kindServices, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: ".id", Title: ".name", Blueprint: `"pagerdutyService"`,
		Properties: map[string]string{
			"status":             ".status",
			"description":        ".description",
			"htmlUrl":            ".html_url",
			"escalationPolicy":   ".escalation_policy.summary",
			"escalationPolicyId": ".escalation_policy.id",
			"teams":              "[.teams[]?.summary]",
			"oncallNow":          "[.__oncalls[]? | select(.escalation_level == 1) | .user.summary] | unique",
			"openIncidents":      ".__stats.openIncidents",
			"incidents30d":       ".__stats.incidents",
			"mttaSeconds":        ".__stats.mttaSeconds",
			"mttrSeconds":        ".__stats.mttrSeconds",
			"lastIncidentAt":     ".last_incident_timestamp",
			"createdAt":          ".created_at",
		},
	}},
	{Kind: kindSchedules, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: ".id", Title: ".name // .summary", Blueprint: `"pagerdutySchedule"`,
		Properties: map[string]string{
			"description":        ".description",
			"timeZone":           ".time_zone",
			"htmlUrl":            ".html_url",
			"users":              "[.users[]?.summary]",
			"escalationPolicies": "[.escalation_policies[]?.summary]",
		},
	}},
	{Kind: kindOncalls, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: `[.escalation_policy.id, (.escalation_level | tostring), (.schedule.id // "direct"), .user.id] | join("-")`,
		Title:      `"\(.user.summary), \(.escalation_policy.summary) level \(.escalation_level)"`,
		Blueprint:  `"pagerdutyOncall"`,
		Properties: map[string]string{
			"user":               ".user.summary",
			"userEmail":          ".user.email",
			"escalationPolicy":   ".escalation_policy.summary",
			"escalationPolicyId": ".escalation_policy.id",
			"escalationLevel":    ".escalation_level",
			"start":              ".start",
			"end":                ".end",
		},
		Relations: map[string]string{"schedule": ".schedule.id"},
	}},
	{Kind: kindIncidents, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: ".id", Title: ".title", Blueprint: `"pagerdutyIncident"`,
		Properties: map[string]string{
			"status":             ".status",
			"urgency":            ".urgency",
			"priority":           ".priority.summary",
			"number":             ".incident_number",
			"description":        ".description",
			"assignees":          "[.assignments[]?.assignee.summary]",
			"escalationPolicy":   ".escalation_policy.summary",
			"createdAt":          ".created_at",
			"acknowledgedAt":     "[.acknowledgements[]?.at] | min",
			"resolvedAt":         `.resolved_at // (if .status == "resolved" then .last_status_change_at else null end)`,
			"lastStatusChangeAt": ".last_status_change_at",
			"htmlUrl":            ".html_url",
		},
		Relations: map[string]string{"service": ".service.id"},
	}},
}

var actions = []pdk.Action{
	{Name: "acknowledge", Title: "Acknowledge incident",
		Description: "Acknowledges a PagerDuty incident (run on a pagerdutyIncident entity, or name it in inputs.incident).",
		Inputs:      json.RawMessage(`{"type": "object", "properties": {"incident": {"type": "string", "description": "Incident id, when not run on an entity"}}}`)},
	{Name: "resolve", Title: "Resolve incident",
		Description: "Resolves a PagerDuty incident (run on a pagerdutyIncident entity, or name it in inputs.incident).",
		Inputs:      json.RawMessage(`{"type": "object", "properties": {"incident": {"type": "string", "description": "Incident id, when not run on an entity"}}}`)},
	{Name: "trigger", Title: "Trigger incident",
		Description: "Opens a PagerDuty incident on a service (inputs.service, or the pagerdutyService entity it runs on).",
		Inputs: json.RawMessage(`{"type": "object", "required": ["title"], "properties": {
		  "service": {"type": "string", "description": "PagerDuty service id"},
		  "title": {"type": "string", "minLength": 1},
		  "urgency": {"type": "string", "enum": ["high", "low"], "default": "high"},
		  "details": {"type": "string"}}}`)},
}

// Info describes the plugin.
func (PagerDuty) Info(context.Context) (*pdk.Info, error) {
	bps := make([]json.RawMessage, len(blueprints))
	for i, b := range blueprints {
		bps[i] = json.RawMessage(b)
	}
	return &pdk.Info{
		Name:        "pagerduty",
		Version:     "0.1.0",
		Description: "PagerDuty services, schedules, on-calls and incidents; V3 webhooks; acknowledge, resolve and trigger.",
		Kinds: []pdk.Kind{
			{Kind: kindServices, Description: "Services (GET /services), with who is on call and incident numbers"},
			{Kind: kindSchedules, Description: "On-call schedules (GET /schedules)"},
			{Kind: kindOncalls, Description: "Current on-call entries (GET /oncalls)"},
			{Kind: kindIncidents, Description: "Incidents of the configured window plus every open one (GET /incidents)"},
		},
		Blueprints: bps,
		Mappings:   pdk.Mappings{Resources: mappings},
		Config:     json.RawMessage(configSchema),
		Secrets:    []string{"apiToken", "webhookSecret"},
		Auth: []pdk.AuthTemplate{{
			Hosts: []string{"api.pagerduty.com", "api.eu.pagerduty.com", pdk.AuthHostBaseURL}, Header: "Authorization",
			Template: "Token token={{apiToken}}",
		}},
		Actions: actions,
		Webhook: true,
	}, nil
}
