package main

import (
	"encoding/json"

	"github.com/portico-dev/portico/pdk"
)

// Blueprints the plugin declares.
const (
	bpRepository = "githubRepository"
	bpWorkflow   = "githubWorkflow"
	bpRun        = "githubWorkflowRun"
	bpDeployment = "githubDeployment"
)

const configSchema = `{"type": "object",
 "anyOf": [{"required": ["repositories"]}, {"required": ["org"]}],
 "properties": {
  "baseUrl": {"type": "string", "format": "uri", "default": "https://api.github.com",
              "description": "GitHub's REST API; GitHub Enterprise Server: https://HOST/api/v3"},
  "repositories": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"},
                   "description": "repositories to sync, as owner/name"},
  "org": {"type": "string", "description": "sync every repository of this organization"},
  "runsSinceDays": {"type": "integer", "minimum": 0, "default": 30,
                    "description": "sync runs and deployments created in the last days (0: all)"},
  "maxRunsPerRepository": {"type": "integer", "minimum": 1, "default": 1000},
  "pageSize": {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
  "maxRateLimitWaitSeconds": {"type": "integer", "minimum": 0, "default": 10,
                              "description": "wait at most this long for a rate limit to reset; longer fails the call"}}}`

const repositoryBlueprint = `{"identifier": "githubRepository", "title": "GitHub repository", "icon": "github",
 "schema": {"properties": {
  "name": {"type": "string"}, "owner": {"type": "string"}, "description": {"type": "string"},
  "defaultBranch": {"type": "string"}, "language": {"type": "string"}, "visibility": {"type": "string"},
  "private": {"type": "boolean"}, "archived": {"type": "boolean"}, "fork": {"type": "boolean"},
  "topics": {"type": "array", "items": {"type": "string"}},
  "htmlUrl": {"type": "string", "format": "url"},
  "createdAt": {"type": "string", "format": "date-time"}, "pushedAt": {"type": "string", "format": "date-time"}}}}`

const workflowBlueprint = `{"identifier": "githubWorkflow", "title": "GitHub workflow", "icon": "github",
 "schema": {"properties": {
  "name": {"type": "string"}, "path": {"type": "string"}, "state": {"type": "string"},
  "url": {"type": "string", "format": "url"},
  "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
 "relations": {"repository": {"title": "Repository", "target": "githubRepository", "many": false, "required": false}}}`

const runBlueprint = `{"identifier": "githubWorkflowRun", "title": "GitHub workflow run", "icon": "github",
 "schema": {"properties": {
  "name": {"type": "string"}, "displayTitle": {"type": "string"},
  "status": {"type": "string", "description": "queued, in_progress, completed, waiting, requested, pending"},
  "conclusion": {"type": "string", "description": "success, failure, cancelled, skipped, timed_out, action_required, neutral, stale"},
  "branch": {"type": "string"}, "sha": {"type": "string"}, "event": {"type": "string"},
  "actor": {"type": "string"}, "triggeringActor": {"type": "string"},
  "runNumber": {"type": "integer"}, "runAttempt": {"type": "integer"},
  "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"},
  "runStartedAt": {"type": "string", "format": "date-time"},
  "durationSeconds": {"type": "number", "description": "updatedAt - runStartedAt of a completed run"},
  "htmlUrl": {"type": "string", "format": "url"}}},
 "relations": {"workflow": {"title": "Workflow", "target": "githubWorkflow", "many": false, "required": false},
               "repository": {"title": "Repository", "target": "githubRepository", "many": false, "required": false}}}`

const deploymentBlueprint = `{"identifier": "githubDeployment", "title": "GitHub deployment", "icon": "github",
 "schema": {"properties": {
  "environment": {"type": "string"}, "ref": {"type": "string"}, "sha": {"type": "string"},
  "task": {"type": "string"}, "description": {"type": "string"}, "creator": {"type": "string"},
  "createdAt": {"type": "string", "format": "date-time"},
  "status": {"type": "string", "description": "state of the latest deployment status: success, failure, error, inactive, in_progress, queued, pending"},
  "statusAt": {"type": "string", "format": "date-time"},
  "environmentUrl": {"type": "string"}}},
 "relations": {"repository": {"title": "Repository", "target": "githubRepository", "many": false, "required": false}}}`

// jq helpers of the default mappings. Webhook payloads of push events
// carry Unix timestamps where the API has RFC 3339 strings.
const (
	jqTime = `if type == "number" then todate else . end`
	// The repository of a workflow's API URL, such as
	// https://HOST/api/v3/repos/o/r/actions/workflows/1 (GitHub Enterprise).
	jqRepoOfWorkflowURL = `(.url // "") | capture("/repos/(?<r>[^/]+/[^/]+)/actions/workflows/[^/]+$").r`
	// The repository of a deployment, from its repository_url.
	jqRepoOfDeployment = `(.deployment.repository_url // "") | capture("/repos/(?<r>[^/]+/[^/]+)$").r`
)

func describe() *pdk.Info {
	return &pdk.Info{
		Name:        "github",
		Version:     "0.1.0",
		Description: "GitHub Actions / CI: repositories, workflows, workflow runs and deployments; webhooks; dispatch, rerun and cancel.",
		Kinds: []pdk.Kind{
			{Kind: kindRepository, Description: "A repository (GET /repos/{owner}/{repo}, /orgs/{org}/repos)"},
			{Kind: kindWorkflow, Description: "An Actions workflow (GET /repos/{owner}/{repo}/actions/workflows)"},
			{Kind: kindRun, Description: "A workflow run (GET /repos/{owner}/{repo}/actions/runs)"},
			{Kind: kindDeployment, Description: `{"deployment": <deployment>, "deployment_status": <its latest status or null>}`},
		},
		Blueprints: []json.RawMessage{
			json.RawMessage(repositoryBlueprint), json.RawMessage(workflowBlueprint),
			json.RawMessage(runBlueprint), json.RawMessage(deploymentBlueprint),
		},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{
			{Kind: kindRepository, Selector: "true", Entity: pdk.EntityMapping{
				Identifier: ".full_name", Title: ".full_name", Blueprint: `"` + bpRepository + `"`,
				Properties: map[string]string{
					"name": ".name", "owner": ".owner.login", "description": ".description",
					"defaultBranch": ".default_branch", "language": ".language", "visibility": ".visibility",
					"private": ".private", "archived": ".archived", "fork": ".fork", "topics": ".topics",
					"htmlUrl": ".html_url", "createdAt": ".created_at | " + jqTime, "pushedAt": ".pushed_at | " + jqTime,
				},
			}},
			{Kind: kindWorkflow, Selector: "true", Entity: pdk.EntityMapping{
				Identifier: ".id", Title: ".name", Blueprint: `"` + bpWorkflow + `"`,
				Properties: map[string]string{
					"name": ".name", "path": ".path", "state": ".state", "url": ".html_url",
					"createdAt": ".created_at", "updatedAt": ".updated_at",
				},
				Relations: map[string]string{"repository": jqRepoOfWorkflowURL},
			}},
			{Kind: kindRun, Selector: "true", Entity: pdk.EntityMapping{
				Identifier: ".id", Title: `(if (.name // "") == "" then "run" else .name end) + " #" + (.run_number | tostring)`, Blueprint: `"` + bpRun + `"`,
				Properties: map[string]string{
					"name": ".name", "displayTitle": ".display_title", "status": ".status", "conclusion": ".conclusion",
					"branch": ".head_branch", "sha": ".head_sha", "event": ".event",
					"actor": ".actor.login", "triggeringActor": ".triggering_actor.login",
					"runNumber": ".run_number", "runAttempt": ".run_attempt",
					"createdAt": ".created_at", "updatedAt": ".updated_at", "runStartedAt": ".run_started_at",
					"durationSeconds": `if .status == "completed" and .run_started_at != null and .updated_at != null ` +
						`then (.updated_at | fromdate) - (.run_started_at | fromdate) else null end`,
					"htmlUrl": ".html_url",
				},
				Relations: map[string]string{"workflow": ".workflow_id", "repository": ".repository.full_name"},
			}},
			{Kind: kindDeployment, Selector: "true", Entity: pdk.EntityMapping{
				Identifier: ".deployment.id", Title: `.deployment.environment + " " + (.deployment.ref // "")`,
				Blueprint: `"` + bpDeployment + `"`,
				Properties: map[string]string{
					"environment": ".deployment.environment", "ref": ".deployment.ref", "sha": ".deployment.sha",
					"task": ".deployment.task", "description": ".deployment.description",
					"creator": ".deployment.creator.login", "createdAt": ".deployment.created_at",
					"status": ".deployment_status.state", "statusAt": ".deployment_status.created_at",
					"environmentUrl": ".deployment_status.environment_url",
				},
				Relations: map[string]string{"repository": jqRepoOfDeployment},
			}},
		}},
		Config:  json.RawMessage(configSchema),
		Secrets: []string{"token", "webhookSecret"},
		Auth: []pdk.AuthTemplate{{
			Hosts: []string{"api.github.com", pdk.AuthHostBaseURL}, Header: "Authorization", Template: "Bearer {{token}}",
		}},
		Actions: []pdk.Action{
			{Name: "dispatch", Title: "Run workflow",
				Description: "Dispatch a workflow (workflow_dispatch) on a ref; on a githubWorkflow or githubRepository entity, or with inputs repository and workflow.",
				Inputs:      json.RawMessage(dispatchInputs)},
			{Name: "rerun", Title: "Re-run workflow run", Description: "Re-run a githubWorkflowRun (all its jobs).",
				Inputs: json.RawMessage(runInputs)},
			{Name: "cancel", Title: "Cancel workflow run", Description: "Cancel a queued or in-progress githubWorkflowRun.",
				Inputs: json.RawMessage(runInputs)},
		},
		Webhook: true,
	}
}

const dispatchInputs = `{"type": "object", "properties": {
 "repository": {"type": "string", "description": "owner/name (default: the entity's repository)"},
 "workflow": {"type": "string", "description": "workflow id or file name such as ci.yml (default: the entity)"},
 "ref": {"type": "string", "description": "branch or tag (default: the repository's default branch)"},
 "inputs": {"type": "object", "additionalProperties": {"type": "string"}}}}`

const runInputs = `{"type": "object", "properties": {
 "repository": {"type": "string", "description": "owner/name (default: the entity's repository relation)"},
 "run": {"type": "string", "description": "run id (default: the entity's identifier)"}}}`
