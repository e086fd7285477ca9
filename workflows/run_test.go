package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

// memStore is an in-memory RunStore.
type memStore struct {
	mu   sync.Mutex
	runs map[string]*actions.Run
}

func (m *memStore) SaveRun(_ context.Context, r *actions.Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = map[string]*actions.Run{}
	}
	if old := m.runs[r.ID]; old == nil || old.Revision < r.Revision {
		m.runs[r.ID] = r
	}
	return nil
}

func (m *memStore) Secret(context.Context, string) (string, error) { return "s3cret", nil }

func (m *memStore) WebhookHeaders(_ context.Context, ref actions.HeaderRef) (map[string]string, error) {
	return map[string]string{"X-Step": ref.Step}, nil
}

// hookLog records webhook deliveries.
type hookLog struct {
	mu    sync.Mutex
	calls []string // path + " " + idempotency key
	fail  map[string]int
}

func (h *hookLog) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.calls = append(h.calls, r.URL.Path+" "+r.Header.Get("Idempotency-Key"))
		n := h.fail[r.URL.Path]
		if n > 0 {
			h.fail[r.URL.Path] = n - 1
		}
		h.mu.Unlock()
		if n > 0 || r.URL.Path == "/broken" {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (h *hookLog) paths() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.calls))
	for i, c := range h.calls {
		out[i], _, _ = strings.Cut(c, " ")
	}
	return out
}

type fixture struct {
	env   *testsuite.TestWorkflowEnvironment
	store *memStore
	hooks *hookLog
	url   string
}

func newFixture(t *testing.T) *fixture {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger)
	env := ts.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{})
	f := &fixture{env: env, store: &memStore{}, hooks: &hookLog{fail: map[string]int{}}}
	f.url = f.hooks.server(t).URL
	Register(env, &Activities{Store: f.store})
	return f
}

func newRun(plan actions.Plan) RunInput {
	run := &actions.Run{ID: "run_1", Action: "deploy", Status: actions.StatusInProgress, Blueprint: "service",
		Entity: "checkout", Inputs: map[string]any{"version": "1.2"}, TriggeredBy: "alice",
		Approvals: []actions.ApprovalRecord{}, Logs: []actions.LogLine{}, Affected: []actions.Affected{}, Revision: 1}
	run.Steps = actions.PlannedSteps(plan)
	return RunInput{Run: run, Plan: plan, Entity: json.RawMessage(`{"identifier":"checkout","properties":{"tier":1}}`)}
}

func (f *fixture) run(t *testing.T, in RunInput) *actions.Run {
	t.Helper()
	f.env.ExecuteWorkflow(ActionRun, in)
	if !f.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := f.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var out actions.Run
	if err := f.env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	// The mirror holds the final state too.
	if got := f.store.runs[in.Run.ID]; got == nil || got.Status != out.Status {
		t.Fatalf("mirror = %+v, want status %s", got, out.Status)
	}
	return &out
}

func approvalStep(count int, onTimeout string) actions.Step {
	s := actions.Step{ID: "approval", Type: actions.StepApproval, Count: count, Timeout: "1h", OnTimeout: onTimeout,
		Approvers: &access.Policy{Permission: catalog.Permission{Roles: []string{"member"}}}}
	if onTimeout == "escalate" {
		s.Escalation = &actions.Escalation{Approvers: &access.Policy{Permission: catalog.Permission{Users: []string{"boss"}}}, Timeout: "2h"}
	}
	return s
}

func decide(f *fixture, after time.Duration, by, decision string) {
	f.env.RegisterDelayedCallback(func() {
		f.env.SignalWorkflow(SignalDecision, actions.Decision{Step: "approval", By: by, Decision: decision})
	}, after)
}

func TestApproval(t *testing.T) {
	tests := []struct {
		name      string
		step      actions.Step
		decisions []actions.Decision // signalled a minute apart
		status    string
		approvers []string
		hooks     int
	}{
		{"approve", approvalStep(1, "decline"), []actions.Decision{{By: "bob", Decision: "approve"}}, actions.StatusSuccess, []string{"bob"}, 1},
		{"decline", approvalStep(1, "decline"), []actions.Decision{{By: "bob", Decision: "decline"}}, actions.StatusDeclined, []string{"bob"}, 0},
		{"two distinct approvers", approvalStep(2, "decline"), []actions.Decision{{By: "bob", Decision: "approve"}, {By: "bob", Decision: "approve"}, {By: "carol", Decision: "approve"}}, actions.StatusSuccess, []string{"bob", "carol"}, 1},
		{"self approval ignored", approvalStep(1, "decline"), []actions.Decision{{By: "alice", Decision: "approve"}}, actions.StatusDeclined, nil, 0},
		{"deadline declines", approvalStep(1, "decline"), nil, actions.StatusDeclined, nil, 0},
		{"escalation then approval", approvalStep(1, "escalate"), []actions.Decision{{By: "boss", Decision: "approve"}}, actions.StatusSuccess, []string{"boss"}, 1},
		{"escalation times out", approvalStep(1, "escalate"), nil, actions.StatusDeclined, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			plan := actions.Plan{Steps: []actions.Step{tt.step, {ID: "ship", Type: actions.StepWebhook, URL: f.url + "/ship"}}}
			start := time.Minute
			if tt.name == "escalation then approval" {
				start = 90 * time.Minute // after the first deadline
			}
			for i, d := range tt.decisions {
				decide(f, start+time.Duration(i)*time.Minute, d.By, d.Decision)
			}
			if tt.name == "approve" {
				f.env.RegisterDelayedCallback(func() {
					v, err := f.env.QueryWorkflow(QueryRun)
					if err != nil {
						t.Error(err)
						return
					}
					var r actions.Run
					_ = v.Get(&r)
					if r.Status != actions.StatusWaitingForApproval || r.Pending == nil || r.Pending.Step != "approval" {
						t.Errorf("while waiting: status %s pending %+v", r.Status, r.Pending)
					}
				}, 30*time.Second)
			}
			run := f.run(t, newRun(plan))
			if run.Status != tt.status {
				t.Fatalf("status %s, want %s; logs %+v", run.Status, tt.status, run.Logs)
			}
			var by []string
			for _, a := range run.Approvals {
				by = append(by, a.By)
			}
			if !slices.Equal(by, tt.approvers) {
				t.Fatalf("approvals by %v, want %v", by, tt.approvers)
			}
			if got := len(f.hooks.paths()); got != tt.hooks {
				t.Fatalf("%d webhook deliveries, want %d", got, tt.hooks)
			}
			if run.EndedAt == nil {
				t.Fatal("no endedAt")
			}
		})
	}
}

func TestInterpreter(t *testing.T) {
	f := newFixture(t)
	f.hooks.fail["/flaky"] = 2
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "pause", Type: actions.StepSleep, Duration: "5s"},
		{ID: "flaky", Type: actions.StepWebhook, URL: f.url + "/flaky", Retry: &actions.Retry{MaximumAttempts: 5, InitialInterval: "1s"}},
		{ID: "both", Type: actions.StepParallel, Steps: []actions.Step{
			{ID: "a", Type: actions.StepWebhook, URL: f.url + "/a"},
			{ID: "b", Type: actions.StepWebhook, URL: f.url + "/b", DependsOn: []string{"a"}},
			{ID: "c", Type: actions.StepSleep, Duration: "1m"},
		}},
	}}
	run := f.run(t, newRun(plan))
	if run.Status != actions.StatusSuccess {
		t.Fatalf("status %s: %+v", run.Status, run.Logs)
	}
	steps := map[string]actions.StepRun{}
	for _, s := range run.Steps {
		steps[s.ID] = s
	}
	if s := steps["flaky"]; s.Attempts != 3 || s.Status != actions.StatusSuccess {
		t.Fatalf("flaky step %+v, want 3 attempts", s)
	}
	if s := steps["pause"]; s.EndedAt.Sub(*s.StartedAt) != 5*time.Second {
		t.Fatalf("pause took %v", s.EndedAt.Sub(*s.StartedAt))
	}
	paths := f.hooks.paths()
	if ia, ib := slices.Index(paths, "/a"), slices.Index(paths, "/b"); ia < 0 || ib < ia {
		t.Fatalf("b must follow a: %v", paths)
	}
	for _, id := range []string{"a", "b", "c", "both"} {
		if steps[id].Status != actions.StatusSuccess {
			t.Fatalf("step %s: %+v", id, steps[id])
		}
	}
}

func TestCompensationsRunInReverse(t *testing.T) {
	f := newFixture(t)
	comp := func(id string) []actions.Step {
		return []actions.Step{{ID: "undo-" + id, Type: actions.StepWebhook, URL: f.url + "/undo-" + id}}
	}
	plan := actions.Plan{
		Steps: []actions.Step{
			{ID: "one", Type: actions.StepWebhook, URL: f.url + "/one", OnFailure: comp("one")},
			{ID: "two", Type: actions.StepWebhook, URL: f.url + "/two", OnFailure: comp("two")},
			{ID: "three", Type: actions.StepWebhook, URL: f.url + "/broken", Retry: &actions.Retry{MaximumAttempts: 2}},
			{ID: "never", Type: actions.StepWebhook, URL: f.url + "/never"},
		},
		OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: f.url + "/notify"}},
	}
	run := f.run(t, newRun(plan))
	if run.Status != actions.StatusFailure {
		t.Fatalf("status %s", run.Status)
	}
	want := []string{"/one", "/two", "/broken", "/broken", "/undo-two", "/undo-one", "/notify"}
	if got := f.hooks.paths(); !slices.Equal(got, want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
	for _, s := range run.Steps {
		if s.ID == "never" && s.Status != actions.StepSkipped {
			t.Fatalf("never: %+v", s)
		}
		if s.ID == "three" && (s.Attempts != 2 || s.Status != actions.StatusFailure) {
			t.Fatalf("three: %+v", s)
		}
	}
}

func TestWaitStep(t *testing.T) {
	tests := []struct {
		name    string
		healthy int // poll at which the entity turns healthy (0: never)
		status  string
	}{
		{"holds after polls", 3, actions.StatusSuccess},
		{"times out", 0, actions.StatusTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			polls := 0
			f.env.OnActivity(activityCheckEntity, mockAny, mockAny).Return(func(_ context.Context, req CheckRequest) (*CheckResult, error) {
				polls++
				if req.Blueprint != `"workload"` || req.Identifier != ".entity.identifier" {
					return nil, errors.New("unexpected selector " + req.Blueprint + " " + req.Identifier)
				}
				return &CheckResult{Blueprint: "workload", Identifier: "checkout", Exists: true, Holds: tt.healthy > 0 && polls >= tt.healthy}, nil
			})
			plan := actions.Plan{Steps: []actions.Step{{ID: "healthy", Type: actions.StepWait, Timeout: "10m", PollInterval: "1m",
				Entity: &actions.EntitySelector{Blueprint: "workload", Identifier: ".entity.identifier"},
				Until:  &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "isHealthy", Operator: "=", Value: true}}}}}}
			run := f.run(t, newRun(plan))
			if run.Status != tt.status {
				t.Fatalf("status %s, want %s", run.Status, tt.status)
			}
			if tt.healthy > 0 && polls != tt.healthy {
				t.Fatalf("%d polls, want %d", polls, tt.healthy)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	plan := actions.Plan{Steps: []actions.Step{approvalStep(1, "decline"), {ID: "ship", Type: actions.StepWebhook, URL: f.url + "/ship"}}}
	f.env.RegisterDelayedCallback(f.env.CancelWorkflow, time.Minute)
	run := f.run(t, newRun(plan))
	if run.Status != actions.StatusCancelled || len(f.hooks.paths()) != 0 {
		t.Fatalf("status %s, hooks %v", run.Status, f.hooks.paths())
	}
}

// TestStoppedRunsCompensate: a run declined at a mid-plan approval or
// cancelled while it sleeps undoes the steps it started, in reverse, but
// does not run the plan's onFailure (nothing failed).
func TestStoppedRunsCompensate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		second actions.Step
		stop   func(f *fixture)
		status string
	}{
		{"declined mid-plan", approvalStep(1, "decline"), func(f *fixture) { decide(f, time.Minute, "bob", "decline") }, actions.StatusDeclined},
		{"cancelled while sleeping", actions.Step{ID: "nap", Type: actions.StepSleep, Duration: "1h"},
			func(f *fixture) { f.env.RegisterDelayedCallback(f.env.CancelWorkflow, time.Minute) }, actions.StatusCancelled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			plan := actions.Plan{
				Steps: []actions.Step{
					{ID: "one", Type: actions.StepWebhook, URL: f.url + "/one", OnFailure: []actions.Step{{ID: "undo-one", Type: actions.StepWebhook, URL: f.url + "/undo-one"}}},
					{ID: "two", Type: actions.StepWebhook, URL: f.url + "/two", OnFailure: []actions.Step{{ID: "undo-two", Type: actions.StepWebhook, URL: f.url + "/undo-two"}}},
					tt.second,
					{ID: "never", Type: actions.StepWebhook, URL: f.url + "/never"},
				},
				OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: f.url + "/notify"}},
			}
			tt.stop(f)
			run := f.run(t, newRun(plan))
			if run.Status != tt.status {
				t.Fatalf("status %s, want %s", run.Status, tt.status)
			}
			if got, want := f.hooks.paths(), []string{"/one", "/two", "/undo-two", "/undo-one"}; !slices.Equal(got, want) {
				t.Fatalf("webhooks %v, want %v", got, want)
			}
		})
	}
}

func TestTimerExpiresAndReschedules(t *testing.T) {
	env, start := timerEnv()
	var expired []TimerInput
	env.OnActivity(activityExpire, mockAny, mockAny).Return(func(_ context.Context, in TimerInput) (*ExpireResult, error) {
		expired = append(expired, in)
		return &ExpireResult{}, nil
	})
	in := TimerInput{Blueprint: "env", Identifier: "pr-1", Property: "expiresAt", ExpiresAt: start.Add(time.Hour), ExpiryAction: "destroy"}
	env.RegisterDelayedCallback(func() {
		next := in
		next.ExpiresAt = start.Add(3 * time.Hour)
		env.SignalWorkflow(SignalReschedule, next)
	}, 30*time.Minute)
	env.ExecuteWorkflow(Timer, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(expired) != 1 || !expired[0].ExpiresAt.Equal(start.Add(3*time.Hour)) {
		t.Fatalf("expired %+v", expired)
	}
	if got := env.Now().Sub(start); got < 3*time.Hour {
		t.Fatalf("expired after %v, want 3h", got)
	}
}

// TestTimerFollowsAMovedValue: when Expire finds the value moved later
// (its reschedule signal not yet delivered), the timer continues as new
// with the new deadline instead of ending.
func TestTimerFollowsAMovedValue(t *testing.T) {
	env, start := timerEnv()
	later := start.Add(24 * time.Hour)
	env.OnActivity(activityExpire, mockAny, mockAny).Return(&ExpireResult{Rescheduled: &later}, nil)
	env.ExecuteWorkflow(Timer, TimerInput{Blueprint: "env", Identifier: "pr-1", Property: "expiresAt", ExpiresAt: start.Add(time.Hour)})
	continuedAt(t, env, later)
}

// TestTimerTakesLateReschedules: a reschedule signalled while Expire runs
// (after it read the entity) re-arms the timer at the new deadline.
func TestTimerTakesLateReschedules(t *testing.T) {
	env, start := timerEnv()
	in := TimerInput{Blueprint: "env", Identifier: "pr-1", Property: "expiresAt", ExpiresAt: start.Add(time.Hour)}
	later := in
	later.ExpiresAt = start.Add(48 * time.Hour)
	env.OnActivity(activityExpire, mockAny, mockAny).Return(func(_ context.Context, _ TimerInput) (*ExpireResult, error) {
		env.SignalWorkflow(SignalReschedule, later) // arrives while the activity runs
		return &ExpireResult{}, nil
	})
	env.ExecuteWorkflow(Timer, in)
	continuedAt(t, env, later.ExpiresAt)
}

// timerEnv is a workflow test environment for Timer and its start time.
func timerEnv() (*testsuite.TestWorkflowEnvironment, time.Time) {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger)
	env := ts.NewTestWorkflowEnvironment()
	Register(env, &Activities{})
	return env, env.Now()
}

// continuedAt asserts the timer continued as new with deadline want.
func continuedAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, want time.Time) {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next TimerInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil || !next.ExpiresAt.Equal(want) {
		t.Fatalf("continued with %+v (%v), want deadline %v", next, err, want)
	}
}

var mockAny = mock.Anything

var (
	quietSlog   = slog.New(slog.NewTextHandler(io.Discard, nil))
	quietLogger = sdklog.NewStructuredLogger(quietSlog)
)
