package workflows

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/internal/redistest"
	"github.com/portico-dev/portico/internal/secretbox"
)

// startCapture is a Runner that keeps the StartRequests it is given.
type startCapture struct {
	mu     sync.Mutex
	starts []actions.StartRequest
}

func (c *startCapture) Start(_ context.Context, req actions.StartRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts = append(c.starts, req)
	return nil
}
func (c *startCapture) Decide(context.Context, string, actions.Decision) error { return nil }
func (c *startCapture) Cancel(context.Context, string) error                   { return nil }
func (c *startCapture) Describe(context.Context, string) (*actions.Run, error) {
	return nil, actions.ErrNotFound
}

// TestWebhookHeadersStaySecret defines a webhook action and a workflow
// with CI credentials in their headers, runs both through the real
// interpreter, and checks that the receivers get the real headers while
// neither Redis, nor the plan handed to the workflow engine (its
// history), nor the API's view of the definitions holds the values.
func TestWebhookHeadersStaySecret(t *testing.T) {
	const actionToken, stepToken = "Bearer ci-token-4f1d2a", "Bearer chat-token-9b7e33"
	got := make(chan http.Header, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = w.Write([]byte(`{}`))
	}))
	defer hook.Close()

	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{ID: "admin@example.com", Role: catalog.RoleAdmin})
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{})
	bp, _ := catalog.DecodeBlueprint([]byte(`{"identifier":"service","schema":{"properties":{}}}`))
	if _, _, err := cat.PutBlueprint(ctx, bp, true); err != nil {
		t.Fatal(err)
	}
	key, _ := secretbox.GenerateKey()
	ring, err := secretbox.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	store := redisactions.New(rdb, redisactions.Options{Keyring: ring})
	runner := &startCapture{}
	svc := actions.NewService(store, cat, actions.Options{Runner: runner})

	wf := &actions.Workflow{Identifier: "ship", Steps: []actions.Step{
		{ID: "announce", Type: actions.StepWebhook, URL: hook.URL + "/announce", Headers: map[string]string{"Authorization": stepToken}},
	}}
	if _, _, err := svc.PutWorkflow(ctx, wf); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*actions.Action{
		{Identifier: "deploy", Blueprint: "service", Operation: actions.OperationCreate,
			Invocation: actions.Invocation{Type: actions.InvokeWebhook, URL: hook.URL + "/deploy", Headers: map[string]string{"Authorization": actionToken}}},
		{Identifier: "flow", Blueprint: "service", Operation: actions.OperationCreate,
			Invocation: actions.Invocation{Type: actions.InvokeWorkflow, Workflow: "ship"}},
	} {
		out, _, _, err := svc.PutAction(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		shown, _ := json.Marshal(out)
		if strings.Contains(string(shown), "-token-") {
			t.Fatalf("PUT answers with the header values: %s", shown)
		}
		if _, err := svc.Trigger(ctx, a.Identifier, actions.TriggerRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, view := range []any{must(svc.GetAction(ctx, "deploy")), must(svc.ListActions(ctx)), must(svc.GetWorkflow(ctx, "ship")), must(svc.ListWorkflows(ctx))} {
		raw, _ := json.Marshal(view)
		if strings.Contains(string(raw), "-token-") || !strings.Contains(string(raw), `"headersSet":["Authorization"]`) {
			t.Fatalf("API view of a definition: %s", raw)
		}
	}
	dump := redistest.Dump(t, rdb)
	for _, secret := range []string{actionToken, stepToken, "ci-token", "chat-token"} {
		if strings.Contains(dump, secret) {
			t.Fatalf("Redis holds the header value %q", secret)
		}
	}

	want := map[string]string{"deploy": actionToken, "flow": stepToken}
	for _, start := range runner.starts {
		history, _ := json.Marshal(start)
		if strings.Contains(string(history), "-token-") {
			t.Fatalf("the plan handed to the workflow engine holds a header value: %s", history)
		}
		var ts testsuite.WorkflowTestSuite
		ts.SetLogger(quietLogger)
		env := ts.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{})
		Register(env, &Activities{Store: store})
		env.ExecuteWorkflow(ActionRun, start)
		var run actions.Run
		if err := env.GetWorkflowResult(&run); err != nil || run.Status != actions.StatusSuccess {
			t.Fatalf("run of %s: %v %+v", start.Run.Action, err, run.Logs)
		}
		if h := <-got; h.Get("Authorization") != want[start.Run.Action] {
			t.Fatalf("receiver of %s got Authorization %q", start.Run.Action, h.Get("Authorization"))
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func jsonText(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}
