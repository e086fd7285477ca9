package workflows

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
)

// TestWebhookEgress performs the attacks a webhook receiver (or whoever
// defines the URL) can try on the portal, through a real run: bounce it
// to another address, flood the step output, point it at the cloud
// metadata service; and a run of a deleted action must not sign with an
// empty key.
func TestWebhookEgress(t *testing.T) {
	var internalHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		_, _ = w.Write([]byte(`{"secret":"internal"}`))
	}))
	t.Cleanup(internal.Close)
	var receiverHits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		receiverHits.Add(1)
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
		case "/huge":
			chunk := []byte(strings.Repeat("<x>", 1<<10))
			for range (10 << 20) / len(chunk) { // 10 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/huge-json":
			_, _ = w.Write([]byte(`{"log":"` + strings.Repeat("<", 60<<10) + `"}`)) // under the cap raw, over it escaped
		case "/down":
			http.Error(w, "down", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	t.Cleanup(receiver.Close)

	tests := []struct {
		name      string
		action    string // the run's action; "deleted" has no signing secret
		url       string
		status    string
		errText   string
		attempts  int
		receiver  bool   // the receiver is reached
		output    string // substring of the step output ("" with wantNoOutput)
		truncated bool
	}{
		{name: "redirect is the answer", url: receiver.URL + "/redirect", status: actions.StatusFailure, attempts: 1, receiver: true,
			errText: "answered 302 (redirects are not followed)", output: `{"status":302,`},
		{name: "huge body is capped", url: receiver.URL + "/huge", status: actions.StatusSuccess, attempts: 1, receiver: true,
			output: `"body":"\u003cx\u003e\u003cx\u003e`, truncated: true},
		{name: "JSON that escapes past the cap", url: receiver.URL + "/huge-json", status: actions.StatusSuccess, attempts: 1, receiver: true,
			output: `"body":"{\"log\":\"\u003c`, truncated: true},
		{name: "retried failure keeps its answer", url: receiver.URL + "/down", status: actions.StatusFailure, attempts: 2, receiver: true,
			errText: "answered 503", output: `{"status":503,"body":"down\n","attempt":2}`},
		{name: "cloud metadata", url: "http://169.254.169.254/latest/meta-data/", status: actions.StatusFailure, attempts: 1,
			errText: "address refused: 169.254.169.254 is a link-local address"},
		{name: "IPv6 link-local", url: "http://[fe80::1]:80/", status: actions.StatusFailure, attempts: 1,
			errText: "fe80::1 is a link-local address"},
		{name: "deleted action", action: "deleted", url: receiver.URL + "/ok", status: actions.StatusFailure, attempts: 1,
			errText: `webhook not sent: action "deleted" has no signing secret`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			internalHits.Store(0)
			receiverHits.Store(0)
			f, store := redisFixture(t)
			var deliveries atomic.Int64 // attempts of the webhook activity
			f.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				if info.ActivityType.Name == activityWebhook {
					deliveries.Add(1)
				}
			})
			plan := actions.Plan{Steps: []actions.Step{{ID: "hook", Type: actions.StepWebhook, URL: tt.url,
				Retry: &actions.Retry{MaximumAttempts: 2, InitialInterval: "1s"}}}}
			in := newRun(plan)
			if tt.action != "" {
				in.Run.Action = tt.action
			}
			f.env.ExecuteWorkflow(ActionRun, in)
			var run actions.Run
			if err := f.env.GetWorkflowResult(&run); err != nil {
				t.Fatal(err)
			}
			step := run.Steps[0]
			if run.Status != tt.status || step.Status != tt.status || !strings.Contains(step.Error, tt.errText) {
				t.Fatalf("run %s, step %+v; want %s, error %q", run.Status, step, tt.status, tt.errText)
			}
			if n := deliveries.Load(); n != int64(tt.attempts) {
				t.Fatalf("%d attempts, want %d", n, tt.attempts)
			}
			if internalHits.Load() != 0 {
				t.Fatal("the redirect target was reached")
			}
			if got := receiverHits.Load() > 0; got != tt.receiver {
				t.Fatalf("receiver reached: %v, want %v", got, tt.receiver)
			}
			// The record the API serves is the stored one.
			stored, err := store.GetRun(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			out := stored.Steps[0].Output
			if tt.output == "" {
				if out != nil && string(out) != "null" {
					t.Fatalf("step output %s, want none", out)
				}
				return
			}
			if !strings.Contains(string(out), tt.output) {
				t.Fatalf("step output %.200s, want %s", out, tt.output)
			}
			var res WebhookResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			if res.Truncated != tt.truncated || len(res.Body) > MaxWebhookOutput || len(out) > MaxWebhookOutput+100 {
				t.Fatalf("output of %d bytes (body %d), truncated %v; want at most %d, truncated %v",
					len(out), len(res.Body), res.Truncated, MaxWebhookOutput, tt.truncated)
			}
		})
	}
}

// redisFixture runs the action workflow over the real Redis action store
// (on miniredis), where action "deploy" has a signing secret and action
// "deleted" had one until it was deleted.
func redisFixture(t *testing.T) (*fixture, *redisactions.Store) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisactions.New(rdb, redisactions.Options{})
	ctx := context.Background()
	for _, a := range []string{"deploy", "deleted"} {
		if _, err := store.InitSecret(ctx, a, "whsec_"+a); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.DeleteAction(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger)
	env := ts.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{})
	Register(env, &Activities{Store: store})
	return &fixture{env: env}, store
}
