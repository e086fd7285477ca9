package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/internal/redistest"
	"github.com/portico-dev/portico/internal/secretbox"
)

// TestWebhookHeadersAreWriteOnly puts an action and a workflow with CI
// credentials in their webhook headers, then tries every way a reader
// could get them back: GET and list as a member, the PUT answer, the
// audit log, the plan a run hands the workflow engine, and a dump of all
// of Redis. Only the names show; a PUT that omits the headers keeps them,
// {} clears them.
func TestWebhookHeadersAreWriteOnly(t *testing.T) {
	const actionToken, stepToken = "Bearer ci-token-0f3a9c", "chat-token-77d1e2"
	runner := &fakeRunner{runs: map[string]*actions.Run{}}
	cfg, rdb := actionsConfig(t, runner)
	key, _ := secretbox.GenerateKey()
	ring, err := secretbox.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Actions = actions.NewService(redisactions.New(rdb, redisactions.Options{Keyring: ring}), cfg.Catalog, actions.Options{Runner: runner})
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(srv.Close)
	e := &accessEnv{env: &env{t: t, srv: srv}, rdb: rdb}
	e.must(201, "PUT", "/api/v1/blueprints/service", M{"schema": M{"properties": M{}}})
	e.must(201, "PUT", "/api/v1/blueprints/service/entities/checkout", M{})
	e.user("reader@example.com", "member")
	_, reader := e.mint("reader@example.com", "read", "run")

	action := M{"blueprint": "service", "operation": "DAY-2",
		"invocation": M{"type": "webhook", "url": "https://ci.example/deploy", "headers": M{"Authorization": actionToken}}}
	workflow := M{"steps": []M{{"id": "announce", "type": "webhook", "url": "https://chat.example/hook", "headers": M{"X-Chat-Token": stepToken}}}}
	var shown []string
	shown = append(shown, string(e.must(201, "PUT", "/api/v1/actions/deploy", action).Raw))
	shown = append(shown, string(e.must(201, "PUT", "/api/v1/workflows/flow", workflow).Raw))
	e.must(201, "PUT", "/api/v1/actions/flow", M{"blueprint": "service", "operation": "DAY-2", "invocation": M{"type": "workflow", "workflow": "flow"}})

	inv := func(r resp) M { return r.obj(t)["invocation"].(M) }
	if got := inv(e.as(reader, "GET", "/api/v1/actions/deploy", nil)); got["headers"] != nil || !equalJSON(got["headersSet"], []any{"Authorization"}) {
		t.Fatalf("GET shows %v, want headersSet [Authorization] and no headers", got)
	}
	for _, path := range []string{"/api/v1/actions/deploy", "/api/v1/actions", "/api/v1/workflows/flow", "/api/v1/workflows"} {
		shown = append(shown, string(e.as(reader, "GET", path, nil).Raw))
	}
	if !strings.Contains(shown[len(shown)-1], `"headersSet":["X-Chat-Token"]`) {
		t.Fatalf("workflow list does not name the step's header: %s", shown[len(shown)-1])
	}

	// Idempotent PUT: the body GET answers (headers omitted) keeps the
	// stored headers and makes no new version.
	again := e.must(200, "PUT", "/api/v1/actions/deploy", e.must(200, "GET", "/api/v1/actions/deploy", nil).obj(t))
	if o := again.obj(t); o["version"] != 1.0 || !equalJSON(o["invocation"].(M)["headersSet"], []any{"Authorization"}) {
		t.Fatalf("PUT of the GET body: %s", again.Raw)
	}
	if r := e.must(200, "PUT", "/api/v1/workflows/flow", M{"steps": []M{{"id": "announce", "type": "webhook", "url": "https://chat.example/hook"}}}); r.obj(t)["version"] != 1.0 {
		t.Fatalf("workflow PUT without headers made a new version: %s", r.Raw)
	}

	// A run's plan names the headers and carries no value.
	for _, id := range []string{"deploy", "flow"} {
		if r := e.as(reader, "POST", "/api/v1/actions/"+id+"/runs", M{"entity": "checkout"}); r.Status != 202 {
			t.Fatalf("trigger %s: %d %s", id, r.Status, r.Raw)
		}
	}
	for _, st := range runner.started() {
		step := st.Plan.Steps[len(st.Plan.Steps)-1]
		if step.Headers != nil || len(step.HeadersSet) != 1 {
			t.Fatalf("plan step %+v", step)
		}
	}

	shown = append(shown, string(e.must(200, "GET", "/api/v1/audit", nil).Raw), redistest.Dump(t, rdb))
	for i, text := range shown {
		for _, secret := range []string{actionToken, stepToken, "ci-token", "chat-token"} {
			if strings.Contains(text, secret) {
				t.Fatalf("response or store %d shows a header value: %.400s", i, text)
			}
		}
	}

	// {} clears the headers.
	action["invocation"].(M)["headers"] = M{}
	if got := inv(e.must(200, "PUT", "/api/v1/actions/deploy", action)); got["headersSet"] != nil {
		t.Fatalf("cleared headers still set: %v", got)
	}
}

func equalJSON(got any, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}
