package integrationtests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-dev/portico/plugins/github/standin"
)

const githubWebhookSecret = "It's a Secret to Everybody"

// syncRecord is GET /api/v1/integrations/{id}/syncs/{sid}.
// ghInstall installs integration id with spec and waits for the first
// resync the install starts.
func ghInstall(p *proc, id string, spec map[string]any) syncRecord {
	p.t.Helper()
	var st struct{ LastSync *syncRecord }
	if err := json.Unmarshal(p.must("PUT", "/api/v1/integrations/"+id, spec, 201), &st); err != nil {
		p.t.Fatal(err)
	}
	if st.LastSync == nil {
		p.t.Fatalf("installing %s started no resync", id)
	}
	return waitSync(p, id, *st.LastSync)
}

// entity is what the tests read of an entity.
type ghEntity struct {
	Identifier, Datasource string
	Properties             map[string]any
	Relations              map[string]any
}

// ghGetEntity reads an entity by its identifier, %2F-encoded in the path.
func ghGetEntity(p *proc, blueprint, id string) (int, ghEntity) {
	p.t.Helper()
	code, body := p.call("GET", "/api/v1/blueprints/"+blueprint+"/entities/"+url.PathEscape(id), nil)
	var e ghEntity
	if code == 200 {
		if err := json.Unmarshal(body, &e); err != nil {
			p.t.Fatal(err)
		}
	}
	return code, e
}

func ghMustEntity(p *proc, blueprint, id string) ghEntity {
	p.t.Helper()
	code, e := ghGetEntity(p, blueprint, id)
	if code != 200 {
		p.t.Fatalf("GET %s %s: %d", blueprint, id, code)
	}
	return e
}

// deliverGitHub posts a webhook delivery as GitHub does (signed with
// secret; unsigned when secret is "").
func deliverGitHub(p *proc, id, event, secret string, body []byte) (int, []byte) {
	p.t.Helper()
	req, err := standin.WebhookRequest(p.base+"/api/v1/integrations/"+id+"/webhook", event, secret, body)
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// ghWithMember returns a JSON object with one top-level member replaced.
func ghWithMember(t *testing.T, doc []byte, key string, value any) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	m[key] = b
	out, _ := json.Marshal(m)
	return out
}

// TestGitHubIntegration installs the github plugin into a running portal
// on a real Redis, resyncs from the GitHub stand-in, applies webhooks and
// an action, and checks the catalog after each step, including deletions
// reconciled by a resync, a failed resync that deletes nothing and a token
// GitHub refuses.
func TestGitHubIntegration(t *testing.T) {
	api := standin.New()
	defer api.Close()
	p := startBundled(t) // registers bin/plugins/github.wasm at start
	apiHost := strings.TrimPrefix(api.URL, "http://")
	const id = "github-test"
	// The install starts a full resync: 4 repositories, 5 workflows, 5
	// runs, 1 deployment.
	s := ghInstall(p, id, map[string]any{
		"plugin": "github",
		"config": map[string]any{"baseUrl": api.URL, "org": "hub4j-test-org", "pageSize": 2, "runsSinceDays": 0,
			"repositories": []string{"octo-org/octo-repo", "Codertocat/Hello-World"}},
		"secrets":      map[string]any{"token": standin.Token, "webhookSecret": githubWebhookSecret},
		"allowedHosts": []string{apiHost},
		"auth":         []map[string]any{{"hosts": []string{"127.0.0.1"}, "header": "Authorization", "template": "Bearer {{token}}"}},
	})
	if s.Status != "succeeded" || s.Upserts != 15 || s.Deletes != 0 {
		t.Fatalf("first resync: %+v\n%s", s, p.output())
	}
	if s := resync(p, id); s.Status != "succeeded" || s.Upserts != 0 || s.Unchanged != 15 || s.Deletes != 0 {
		t.Fatalf("resync with nothing changed: %+v", s)
	}
	for _, r := range api.Requests() {
		if r.Authorization != "Bearer "+standin.Token {
			t.Fatalf("%s %s sent with Authorization %q", r.Method, r.Path, r.Authorization)
		}
	}
	repo := ghMustEntity(p, "githubRepository", "octo-org/octo-repo")
	if repo.Properties["defaultBranch"] != "master" || repo.Datasource != "integration:"+id {
		t.Errorf("repository %+v", repo)
	}
	wf := ghMustEntity(p, "githubWorkflow", "6820790")
	if wf.Relations["repository"] != "hub4j-test-org/GHWorkflowRunTest" || wf.Properties["name"] != "Fast workflow" {
		t.Errorf("workflow %+v", wf)
	}
	run := ghMustEntity(p, "githubWorkflowRun", "289782451")
	if run.Properties["status"] != "queued" || run.Relations["workflow"] != "2823525" || run.Relations["repository"] != "octo-org/octo-repo" {
		t.Errorf("run %+v", run)
	}
	dep := ghMustEntity(p, "githubDeployment", "145988746")
	if dep.Properties["status"] != "success" || dep.Relations["repository"] != "Codertocat/Hello-World" {
		t.Errorf("deployment %+v", dep)
	}
	// The repository's related entities, through its %2F-encoded identifier.
	related := string(p.must("GET", "/api/v1/blueprints/githubRepository/entities/"+url.PathEscape("octo-org/octo-repo")+"/related", nil, 200))
	if !strings.Contains(related, "2823525") {
		t.Errorf("related of octo-org/octo-repo: %s", related)
	}

	// Webhooks: workflow_run completes the run.
	completed := standin.Payload("workflow_run.completed")
	if code, out := deliverGitHub(p, id, "workflow_run", githubWebhookSecret, completed); code != 200 {
		t.Fatalf("workflow_run: %d %s", code, out)
	}
	if run := ghMustEntity(p, "githubWorkflowRun", "289782451"); run.Properties["status"] != "completed" || run.Properties["conclusion"] != "success" {
		t.Errorf("run after workflow_run completed: %+v", run.Properties)
	}
	// A bad or missing signature: 401 and nothing changes.
	requested := standin.Payload("workflow_run.requested")
	for _, secret := range []string{"wrong secret", ""} {
		if code, out := deliverGitHub(p, id, "workflow_run", secret, requested); code != 401 {
			t.Errorf("signed with %q: %d %s", secret, code, out)
		}
	}
	if run := ghMustEntity(p, "githubWorkflowRun", "289782451"); run.Properties["status"] != "completed" {
		t.Errorf("a refused delivery changed the run: %+v", run.Properties)
	}
	// deployment_status: the deployment's latest status.
	status, err := api.AddDeploymentStatus("Codertocat/Hello-World", 145988746, "failure")
	if err != nil {
		t.Fatal(err)
	}
	body := ghWithMember(t, standin.Payload("deployment_status"), "deployment_status", status)
	if code, out := deliverGitHub(p, id, "deployment_status", githubWebhookSecret, body); code != 200 {
		t.Fatalf("deployment_status: %d %s", code, out)
	}
	if dep := ghMustEntity(p, "githubDeployment", "145988746"); dep.Properties["status"] != "failure" {
		t.Errorf("deployment after deployment_status: %+v", dep.Properties)
	}
	if code, out := deliverGitHub(p, id, "ping", githubWebhookSecret, standin.Payload("ping")); code != 200 {
		t.Errorf("ping: %d %s", code, out)
	}

	// cancel: the run shows the new state at once.
	out := p.must("POST", "/api/v1/integrations/"+id+"/actions/cancel", map[string]any{
		"entity": map[string]any{"blueprint": "githubWorkflowRun", "identifier": "2202229078"}}, 200)
	if !strings.Contains(string(out), "2202229078") {
		t.Errorf("cancel result: %s", out)
	}
	if run := ghMustEntity(p, "githubWorkflowRun", "2202229078"); run.Properties["conclusion"] != "cancelled" {
		t.Errorf("run after cancel: %+v", run.Properties)
	}

	// A run removed upstream is deleted by the next resync.
	if !api.RemoveRun("hub4j-test-org/GHWorkflowRunTest", 677006583) {
		t.Fatal("remove run")
	}
	if s := resync(p, id); s.Status != "succeeded" || s.Deletes != 1 {
		t.Fatalf("resync after a removal: %+v", s)
	}
	if code, _ := ghGetEntity(p, "githubWorkflowRun", "677006583"); code != 404 {
		t.Errorf("removed run: GET %d, want 404", code)
	}

	// A server error mid-resync (on the last kind) fails it: nothing is deleted.
	api.RemoveRun("hub4j-test-org/GHWorkflowRunTest", 686039314)
	api.Inject(standin.Fault{Path: "/repos/hub4j-test-org/GHWorkflowRunTest/deployments", Status: 500})
	s = resync(p, id)
	if s.Status != "failed" || s.Deletes != 0 || len(s.Errors) == 0 || !strings.Contains(s.Errors[0].Message, "status 500") {
		t.Fatalf("resync with a 500: %+v", s)
	}
	if code, _ := ghGetEntity(p, "githubWorkflowRun", "686039314"); code != 200 {
		t.Errorf("a failed resync deleted run 686039314: GET %d", code)
	}
	api.ClearFaults()

	// A refused token: the installation's status says so; nothing is deleted.
	api.SetToken("rotated")
	s = resync(p, id)
	if s.Status != "failed" || s.Deletes != 0 {
		t.Fatalf("resync with a refused token: %+v", s)
	}
	var inst struct{ LastError string }
	if err := json.Unmarshal(p.must("GET", "/api/v1/integrations/"+id, nil, 200), &inst); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inst.LastError, "GitHub refused the token (401)") || !strings.Contains(inst.LastError, "Bad credentials") {
		t.Errorf("installation lastError %q", inst.LastError)
	}
	if code, _ := ghGetEntity(p, "githubWorkflowRun", "686039314"); code != 200 {
		t.Errorf("a refused token deleted run 686039314: GET %d", code)
	}

	// With the token accepted again, the next resync reconciles.
	api.SetToken(standin.Token)
	if s := resync(p, id); s.Status != "succeeded" || s.Deletes != 1 {
		t.Fatalf("resync after the token is fixed: %+v", s)
	}
	if code, _ := ghGetEntity(p, "githubWorkflowRun", "686039314"); code != 404 {
		t.Errorf("run 686039314: GET %d, want 404", code)
	}
}
