package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/pdk"
)

// Webhook headers GitHub sends.
const (
	SignatureHeader = "X-Hub-Signature-256"
	EventHeader     = "X-GitHub-Event"
)

// Errors that reject a delivery (the host answers 401 and applies nothing).
var (
	ErrMissingSignature = errors.New("missing " + SignatureHeader + " header")
	ErrBadSignature     = errors.New(SignatureHeader + " does not match the body signed with webhookSecret")
)

// Webhook verifies a delivery's X-Hub-Signature-256 with the webhookSecret
// (through the host: the plugin never sees the secret) and turns its event
// into upserts. Events about repositories the installation does not sync,
// and events it does not handle, are acknowledged with nothing applied.
func (g GitHub) Webhook(ctx context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	if err := verify(ctx, req); err != nil {
		return nil, err
	}
	event := req.Header(EventHeader)
	if event == "" {
		return respond(400, "missing "+EventHeader+" header"), nil
	}
	if event == "ping" {
		return respond(200, "pong"), nil
	}
	fields, err := pdk.SplitObject(req.Body)
	if err != nil {
		return respond(400, fmt.Sprintf("%s payload: malformed JSON: %v", event, err)), nil
	}
	repoRaw := fields["repository"]
	var repo struct {
		FullName string `json:"full_name"`
	}
	if len(repoRaw) > 0 && string(repoRaw) != "null" {
		if err := decodeMembers(repoRaw, &repo, "full_name"); err != nil {
			return respond(400, fmt.Sprintf("%s payload: repository: %v", event, err)), nil
		}
	}
	handle, known := handlers[event]
	if !known {
		return respond(202, "event "+event+" ignored"), nil
	}
	if repo.FullName == "" {
		return respond(400, event+" payload without repository.full_name"), nil
	}
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if !cfg.covers(repo.FullName) {
		return respond(202, "repository "+repo.FullName+" is not synced by this installation"), nil
	}
	res, err := handle(ctx, g, cfg, delivery{event: event, fields: fields, repo: repo.FullName})
	if err != nil {
		// The delivery was genuine: answer an error GitHub records (and
		// lets a user redeliver), not a rejection.
		return respond(502, err.Error()), nil
	}
	// The repository comes first: what else the event carries relates to it.
	res.Upserts = append([]pdk.KindItem{{Kind: kindRepository, Item: repoRaw}}, res.Upserts...)
	return res, nil
}

// delivery is a verified webhook payload split into its top-level members.
type delivery struct {
	event  string
	fields map[string]json.RawMessage
	repo   string // repository.full_name
}

// handlers turn an event into upserts (besides the repository's).
var handlers = map[string]func(context.Context, GitHub, config, delivery) (*pdk.WebhookResult, error){
	"workflow_run":      onWorkflowRun,
	"workflow_job":      onWorkflowJob,
	"deployment":        onDeployment,
	"deployment_status": onDeployment,
	"push":              onPush,
}

// onWorkflowRun upserts the run and its workflow.
func onWorkflowRun(_ context.Context, _ GitHub, _ config, d delivery) (*pdk.WebhookResult, error) {
	res := respond(200, "workflow_run applied")
	if wf := d.fields["workflow"]; isObject(wf) {
		res.Upserts = append(res.Upserts, pdk.KindItem{Kind: kindWorkflow, Item: wf})
	}
	run := d.fields["workflow_run"]
	if !isObject(run) {
		return nil, errors.New("workflow_run payload without workflow_run")
	}
	res.Upserts = append(res.Upserts, pdk.KindItem{Kind: kindRun, Item: run})
	return res, nil
}

// onWorkflowJob updates the job's run: a job's progress changes the run's
// status, and the job payload does not carry the run, so it is fetched.
// (Jobs are not entities of their own: a resync cannot list them cheaply,
// so the next resync would delete them.)
func onWorkflowJob(ctx context.Context, g GitHub, cfg config, d delivery) (*pdk.WebhookResult, error) {
	var job struct {
		RunID int64 `json:"run_id"`
	}
	if err := decodeMembers(d.fields["workflow_job"], &job, "run_id"); err != nil || job.RunID == 0 {
		return nil, fmt.Errorf("workflow_job payload without workflow_job.run_id (%v)", err)
	}
	c, err := newClient(cfg, g.clockOrReal())
	if err != nil {
		return nil, err
	}
	run, err := c.run(ctx, d.repo, strconv.FormatInt(job.RunID, 10))
	if err != nil {
		return nil, err
	}
	res := respond(200, "workflow_job applied to its run")
	res.Upserts = append(res.Upserts, pdk.KindItem{Kind: kindRun, Item: run})
	return res, nil
}

// onDeployment upserts the deployment with the status the event carries
// (deployment_status), or none yet (deployment).
func onDeployment(_ context.Context, _ GitHub, _ config, d delivery) (*pdk.WebhookResult, error) {
	dep := d.fields["deployment"]
	if !isObject(dep) {
		return nil, fmt.Errorf("%s payload without deployment", d.event)
	}
	status := d.fields["deployment_status"]
	if !isObject(status) {
		status = json.RawMessage("null")
	}
	item := make([]byte, 0, len(dep)+len(status)+40)
	item = append(item, `{"deployment":`...)
	item = append(item, dep...)
	item = append(item, `,"deployment_status":`...)
	item = append(item, status...)
	item = append(item, '}')
	res := respond(200, d.event+" applied")
	res.Upserts = append(res.Upserts, pdk.KindItem{Kind: kindDeployment, Item: item})
	return res, nil
}

// onPush refreshes the repository (pushedAt): the caller upserts it.
func onPush(context.Context, GitHub, config, delivery) (*pdk.WebhookResult, error) {
	return respond(200, "push applied"), nil
}

// verify checks X-Hub-Signature-256: sha256=<hex HMAC-SHA256(webhookSecret, body)>,
// in constant time.
func verify(ctx context.Context, req pdk.WebhookRequest) error {
	sig := strings.TrimSpace(req.Header(SignatureHeader))
	if sig == "" {
		return ErrMissingSignature
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%s: want sha256=<hex>", SignatureHeader)
	}
	mac, err := pdk.HostFrom(ctx).HMAC(ctx, pdk.HMACRequest{Secret: "webhookSecret", Algorithm: "sha256", Data: req.Body})
	if err != nil {
		return fmt.Errorf("sign with webhookSecret: %w", err)
	}
	if !hmac.Equal([]byte(strings.ToLower(hexSig)), []byte(strings.ToLower(mac.Hex))) {
		return ErrBadSignature
	}
	return nil
}

func respond(status int, message string) *pdk.WebhookResult {
	body, _ := json.Marshal(map[string]string{"message": message})
	return &pdk.WebhookResult{Response: &pdk.WebhookResponse{Status: status, Body: string(body)}}
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }
