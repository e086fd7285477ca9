package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/github/standin"
)

// deliver hands a delivery to the plugin as the host does.
func (e *env) deliver(event string, body []byte, signature string, cfg json.RawMessage) (*pdk.WebhookResult, error) {
	h := map[string][]string{"Content-Type": {"application/json"}}
	if event != "" {
		h["X-Github-Event"] = []string{event}
	}
	if signature != "" {
		h["X-Hub-Signature-256"] = []string{signature}
	}
	return e.g.Webhook(e.ctx, pdk.WebhookRequest{Headers: h, Body: body, Config: cfg})
}

func TestWebhookSignature(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{"org": "octo-org"})
	body := standin.Payload("workflow_run.completed")
	good := standin.Sign(testSecret, body)
	tests := []struct {
		name, signature string
		body            []byte
		want            error
		wantText        string
	}{
		{"good", good, body, nil, ""},
		{"good, upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, nil, ""},
		{"missing", "", body, ErrMissingSignature, ""},
		{"wrong secret", standin.Sign("another secret", body), body, ErrBadSignature, ""},
		{"body changed", good, append([]byte(" "), body...), ErrBadSignature, ""},
		{"sha1 form", "sha1=" + strings.TrimPrefix(good, "sha256="), body, nil, "want sha256=<hex>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.deliver("workflow_run", tt.body, tt.signature, cfg)
			switch {
			case tt.want == nil && tt.wantText == "":
				if err != nil || res.Response.Status != 200 || len(res.Upserts) != 3 {
					t.Fatalf("%+v, %v", res, err)
				}
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want %v", err, tt.want)
			case tt.wantText != "" && (err == nil || !strings.Contains(err.Error(), tt.wantText)):
				t.Fatalf("error %v, want %q", err, tt.wantText)
			}
			if err != nil && res != nil {
				t.Errorf("a rejected delivery has a result: %+v", res)
			}
		})
	}
}

// TestWebhookEvents: each event upserts the raw objects its payload
// carries (the host maps them like resynced items).
func TestWebhookEvents(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{"org": "octo-org", "repositories": []string{"Codertocat/Hello-World"}})
	type upsert struct{ kind, id string }
	tests := []struct {
		event, payload string
		status         int
		want           []upsert
	}{
		{"ping", "ping", 200, nil},
		{"workflow_run", "workflow_run.requested", 200, []upsert{{kindRepository, "octo-org/octo-repo"}, {kindWorkflow, "2823525"}, {kindRun, "289782451"}}},
		{"workflow_run", "workflow_run.completed", 200, []upsert{{kindRepository, "octo-org/octo-repo"}, {kindWorkflow, "2823525"}, {kindRun, "289782451"}}},
		// The job's run is read from the API (the stand-in's run 2202229078).
		{"workflow_job", "workflow_job.in_progress", 200, []upsert{{kindRepository, "Codertocat/Hello-World"}, {kindRun, "2202229078"}}},
		{"workflow_job", "workflow_job.completed.failure.with-organization", 200, []upsert{{kindRepository, "Codertocat/Hello-World"}, {kindRun, "2202229078"}}},
		{"deployment", "deployment", 200, []upsert{{kindRepository, "Codertocat/Hello-World"}, {kindDeployment, "145988746"}}},
		{"deployment_status", "deployment_status", 200, []upsert{{kindRepository, "Codertocat/Hello-World"}, {kindDeployment, "145988746"}}},
		{"push", "push", 200, []upsert{{kindRepository, "Codertocat/Hello-World"}}},
		{"issues", "push", 202, nil},
	}
	for _, tt := range tests {
		t.Run(tt.event+" "+tt.payload, func(t *testing.T) {
			body := standin.Payload(tt.payload)
			res, err := e.deliver(tt.event, body, standin.Sign(testSecret, body), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response == nil || res.Response.Status != tt.status {
				t.Fatalf("response %+v, want %d", res.Response, tt.status)
			}
			var got []upsert
			for _, u := range res.Upserts {
				id := field(t, u.Item, "id")
				switch u.Kind {
				case kindRepository:
					id = field(t, u.Item, "full_name")
				case kindDeployment:
					id = field(t, u.Item, "deployment", "id")
				}
				got = append(got, upsert{u.Kind, id})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("upserts %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("upsert %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
			if len(res.Deletes) != 0 {
				t.Errorf("deletes %v", res.Deletes)
			}
		})
	}
}

// TestWebhookItemsAreThePayloads: items pass through as GitHub sent them;
// a deployment pairs the deployment with the event's status.
func TestWebhookItemsAreThePayloads(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{"repositories": []string{"Codertocat/Hello-World", "octo-org/octo-repo"}})
	body := standin.Payload("workflow_run.completed")
	res, err := e.deliver("workflow_run", body, standin.Sign(testSecret, body), cfg)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := pdk.SplitObject(body)
	for i, key := range []string{"repository", "workflow", "workflow_run"} {
		if string(res.Upserts[i].Item) != string(payload[key]) {
			t.Errorf("upsert %d is not the payload's %s", i, key)
		}
	}
	tests := []struct {
		payload string
		status  []string
		want    string
	}{{"deployment", []string{"deployment_status"}, "null"}, {"deployment_status", []string{"deployment_status", "state"}, "success"}}
	for _, tt := range tests {
		body := standin.Payload(tt.payload)
		res, err := e.deliver(tt.payload, body, standin.Sign(testSecret, body), cfg)
		if err != nil {
			t.Fatal(err)
		}
		item := res.Upserts[1].Item
		if !json.Valid(item) || field(t, item, tt.status...) != tt.want || field(t, item, "deployment", "environment") != "production" {
			t.Errorf("%s item %.300s", tt.payload, item)
		}
	}
}

func TestWebhookIgnoresAndRefuses(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(map[string]any{"repositories": []string{"octo-org/octo-repo"}})
	signed := func(b []byte) string { return standin.Sign(testSecret, b) }
	deploy := standin.Payload("deployment")
	notJSON := []byte(`{"action": "created", "repository": `)
	noRepo := []byte(`{"action": "created"}`)
	tests := []struct {
		name, event string
		body        []byte
		status      int
		message     string
	}{
		{"repository not synced", "deployment", deploy, 202, "Codertocat/Hello-World is not synced"},
		{"no event header", "", deploy, 400, "missing X-GitHub-Event"},
		{"malformed JSON", "deployment", notJSON, 400, "malformed JSON"},
		{"no repository", "deployment", noRepo, 400, "without repository.full_name"},
		{"unknown event", "star", noRepo, 202, "event star ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.deliver(tt.event, tt.body, signed(tt.body), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.Status != tt.status || !strings.Contains(res.Response.Body, tt.message) || len(res.Upserts) != 0 {
				t.Errorf("%d %s, %d upserts; want %d %q", res.Response.Status, res.Response.Body, len(res.Upserts), tt.status, tt.message)
			}
		})
	}
	// A job whose run cannot be read: the delivery was genuine, so it is
	// answered (502, GitHub records it) rather than rejected, with nothing applied.
	e.api.RemoveRun("Codertocat/Hello-World", 2202229078)
	body := standin.Payload("workflow_job.queued")
	res, err := e.deliver("workflow_job", body, signed(body), e.config(map[string]any{"repositories": []string{"Codertocat/Hello-World"}}))
	if err != nil || res.Response.Status != 502 || len(res.Upserts) != 0 || !strings.Contains(res.Response.Body, "get run 2202229078 of Codertocat/Hello-World") {
		t.Errorf("%+v %v", res, err)
	}
}
