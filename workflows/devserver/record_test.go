package devserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/workflows"
	"github.com/portico-dev/portico/workflows/devserver"
)

// TestRecordHistories runs one execution of each workflow type on the
// embedded server and, with PORTICO_RECORD_HISTORIES=1, writes their
// histories to workflows/testdata for the replay tests. Re-record only
// on purpose: a workflow change that fails replay breaks running runs.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("PORTICO_RECORD_HISTORIES") == "" {
		t.Skip("set PORTICO_RECORD_HISTORIES=1 to re-record workflows/testdata")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(devserver.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := srv.Dial(ctx, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{})
	if _, _, err := cat.PutBlueprint(ctx, &catalog.Blueprint{Identifier: "env", Schema: catalog.Schema{Properties: map[string]catalog.Property{
		"expiresAt": {Type: "string", Format: "timer"}}}}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.PutEntity(ctx, &catalog.Entity{Identifier: "pr-1", Blueprint: "env", Properties: map[string]any{}}, false); err != nil {
		t.Fatal(err)
	}
	// service/svc-1 turns healthy through an update step; svc-2 never does.
	if _, _, err := cat.PutBlueprint(ctx, &catalog.Blueprint{Identifier: "service", Schema: catalog.Schema{Properties: map[string]catalog.Property{
		"healthy": {Type: "boolean"}, "version": {Type: "string"}}}}, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"svc-1", "svc-2"} {
		if _, _, err := cat.PutEntity(ctx, &catalog.Entity{Identifier: id, Blueprint: "service", Properties: map[string]any{"healthy": false}}, false); err != nil {
			t.Fatal(err)
		}
	}
	// /broken rejects (not retried), /down answers 502 (retried), /flaky
	// answers 502 once per run and step, then 200.
	calls := &hookCalls{seen: map[string]int{}}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.add(r.Header.Get("Idempotency-Key"))
		switch {
		case r.URL.Path == "/broken":
			http.Error(w, "no", http.StatusBadRequest)
		case r.URL.Path == "/down", r.URL.Path == "/flaky" && n == 1:
			http.Error(w, "down", http.StatusBadGateway)
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer hooks.Close()

	w := worker.New(c, "record", worker.Options{})
	workflows.Register(w, &workflows.Activities{Store: redisactions.New(rdb, redisactions.Options{}), Catalog: cat, Resyncs: &stubResyncer{}, Plugins: fakePlugins{}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Each workflow type is a subtest: -run TestRecordHistories/Resync
	// re-records only that one.
	t.Run("ActionRun", func(t *testing.T) { recordActionRun(ctx, t, c, hooks.URL) })
	// The other ActionRun paths, one history each (actionrun-*.json):
	// -run 'TestRecordHistories/ActionRun' re-records all of them.
	t.Run("ActionRunDeclined", func(t *testing.T) { recordDeclined(ctx, t, c, hooks.URL) })
	t.Run("ActionRunDeadline", func(t *testing.T) { recordDeadline(ctx, t, c, hooks.URL) })
	t.Run("ActionRunEscalated", func(t *testing.T) { recordEscalated(ctx, t, c, hooks.URL) })
	t.Run("ActionRunWaitUpdate", func(t *testing.T) { recordWaitUpdate(ctx, t, c, cat, hooks.URL) })
	t.Run("ActionRunWaitTimeout", func(t *testing.T) { recordWaitTimeout(ctx, t, c, hooks.URL, calls) })
	t.Run("ActionRunCompensate", func(t *testing.T) { recordCompensate(ctx, t, c, hooks.URL, calls) })
	t.Run("ActionRunCancelled", func(t *testing.T) { recordCancelled(ctx, t, c, hooks.URL, calls) })
	t.Run("Timer", func(t *testing.T) { recordTimer(ctx, t, c) })
	t.Run("Resync", func(t *testing.T) { recordResync(ctx, t, c) })
}

// recordActionRun: approval, sleep, parallel webhooks, a failing step, compensations.
func recordActionRun(ctx context.Context, t *testing.T, c client.Client, hooks string) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "approval", Type: actions.StepApproval, Count: 1, Timeout: "1h"},
		{ID: "announce", Type: actions.StepWebhook, URL: hooks + "/announce", OnFailure: []actions.Step{{ID: "retract", Type: actions.StepWebhook, URL: hooks + "/retract"}}},
		{ID: "pause", Type: actions.StepSleep, Duration: "1s"},
		{ID: "both", Type: actions.StepParallel, Steps: []actions.Step{
			{ID: "a", Type: actions.StepWebhook, URL: hooks + "/a"},
			{ID: "b", Type: actions.StepWebhook, URL: hooks + "/b", DependsOn: []string{"a"}},
		}},
		{ID: "fail", Type: actions.StepWebhook, URL: hooks + "/broken"},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks + "/notify"}}}
	run := &actions.Run{ID: "run_record", Action: "deploy", Blueprint: "env", Entity: "pr-1", Inputs: map[string]any{"v": "1"},
		TriggeredBy: "alice", Status: actions.StatusWaitingForApproval, Revision: 1, CreatedAt: time.Now().UTC(),
		Approvals: []actions.ApprovalRecord{}, Logs: []actions.LogLine{}, Affected: []actions.Affected{}}
	wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: run.ID, TaskQueue: "record"}, workflows.ActionRunWorkflow,
		workflows.RunInput{Run: run, Plan: plan, Entity: json.RawMessage(`{"identifier":"pr-1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, by := range []string{"alice", "bob"} {
		if err := c.SignalWorkflow(ctx, run.ID, "", workflows.SignalDecision, actions.Decision{Step: "approval", By: by, Decision: "approve"}); err != nil {
			t.Fatal(err)
		}
	}
	var out actions.Run
	if err := wr.Get(ctx, &out); err != nil || out.Status != actions.StatusFailure {
		t.Fatalf("run: %s %v", out.Status, err)
	}
	save(t, c, run.ID, "actionrun.json")
}

// recordDeclined: an approval needing two approvals ignores the
// requester's own decision, a decision for another step and a second
// decision by the same approver, counts one approval, then a decline ends
// the run DECLINED (no compensation: nothing failed).
func recordDeclined(ctx context.Context, t *testing.T, c client.Client, hooks string) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "approval", Type: actions.StepApproval, Count: 2, Timeout: "1h"},
		{ID: "ship", Type: actions.StepWebhook, URL: hooks + "/ship"},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks + "/notify"}}}
	id := startRun(ctx, t, c, "run_declined", plan)
	waitRun(ctx, t, c, id, func(r *actions.Run) bool { return r.Pending != nil })
	for _, d := range []actions.Decision{
		{Step: "approval", By: "alice", Decision: actions.DecisionApprove}, // the requester
		{Step: "other", By: "bob", Decision: actions.DecisionApprove},
		{Step: "approval", By: "bob", Decision: actions.DecisionApprove},
		{Step: "approval", By: "bob", Decision: actions.DecisionApprove},
		{Step: "approval", By: "carol", Decision: actions.DecisionDecline, Comment: "not today"},
	} {
		signal(ctx, t, c, id, d)
	}
	out := finish(ctx, t, c, id, actions.StatusDeclined)
	if len(out.Approvals) != 2 || out.Steps[1].Status != actions.StepSkipped {
		t.Fatalf("approvals %+v, steps %+v", out.Approvals, out.Steps)
	}
	save(t, c, id, "actionrun-declined.json")
}

// recordDeadline: nobody decides within the approval's 1s deadline and
// onTimeout is "decline": the run ends DECLINED. The history holds the
// "approval-deadline-declines" version marker.
func recordDeadline(ctx context.Context, t *testing.T, c client.Client, hooks string) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "approval", Type: actions.StepApproval, Count: 1, Timeout: "1s", OnTimeout: "decline"},
		{ID: "ship", Type: actions.StepWebhook, URL: hooks + "/ship", OnFailure: []actions.Step{{ID: "unship", Type: actions.StepWebhook, URL: hooks + "/unship"}}},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks + "/notify"}}}
	id := startRun(ctx, t, c, "run_deadline", plan)
	finish(ctx, t, c, id, actions.StatusDeclined)
	save(t, c, id, "actionrun-deadline.json")
}

// recordEscalated: bob approves (1/2), the 2s deadline passes and the
// approval escalates (new deadline 1h), the escalation approver approves
// (2/2) and the run goes on.
func recordEscalated(ctx context.Context, t *testing.T, c client.Client, hooks string) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "approval", Type: actions.StepApproval, Count: 2, Timeout: "2s", OnTimeout: "escalate",
			Escalation: &actions.Escalation{Approvers: &access.Policy{Permission: catalog.Permission{Users: []string{"boss"}}}, Timeout: "1h"}},
		{ID: "ship", Type: actions.StepWebhook, URL: hooks + "/ship"},
	}}
	id := startRun(ctx, t, c, "run_escalated", plan)
	waitRun(ctx, t, c, id, func(r *actions.Run) bool { return r.Pending != nil })
	signal(ctx, t, c, id, actions.Decision{Step: "approval", By: "bob", Decision: actions.DecisionApprove})
	r := waitRun(ctx, t, c, id, func(r *actions.Run) bool { return len(r.Approvals) == 1 || r.Pending == nil || r.Pending.Escalated })
	if r.Pending == nil || r.Pending.Escalated {
		t.Fatal("bob's approval arrived after the deadline")
	}
	waitRun(ctx, t, c, id, func(r *actions.Run) bool { return r.Pending != nil && r.Pending.Escalated })
	signal(ctx, t, c, id, actions.Decision{Step: "approval", By: "boss", Decision: actions.DecisionApprove})
	finish(ctx, t, c, id, actions.StatusSuccess)
	save(t, c, id, "actionrun-escalated.json")
}

// recordWaitUpdate: a parallel group where a wait step polls svc-1 until
// it is healthy while a sleep and then an update step (dependsOn the
// sleep) merge-patch it healthy; then a plugin step (fake plugin host)
// and a webhook whose jq body reads both steps' outputs.
func recordWaitUpdate(ctx context.Context, t *testing.T, c client.Client, cat *catalog.Service, hooks string) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "rollout", Type: actions.StepParallel, Steps: []actions.Step{
			{ID: "healthy", Type: actions.StepWait, Timeout: "30s", PollInterval: "1s",
				Entity: &actions.EntitySelector{Blueprint: "service", Identifier: ".run.entity"},
				Until:  &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "healthy", Operator: "=", Value: true}}}},
			{ID: "settle", Type: actions.StepSleep, Duration: "1s"},
			{ID: "mark", Type: actions.StepUpdate, DependsOn: []string{"settle"}, Patch: `{properties: {healthy: true, version: .inputs.v}}`},
		}},
		{ID: "tag", Type: actions.StepPlugin, Integration: "fake", Action: "tag", Inputs: `{version: .inputs.v}`},
		{ID: "announce", Type: actions.StepWebhook, URL: hooks + "/announce", Body: `{holds: .steps.healthy.output.holds, tag: .steps.tag.output.tag}`},
	}}
	id := startRun(ctx, t, c, "run_wait_update", plan)
	out := finish(ctx, t, c, id, actions.StatusSuccess)
	e, err := cat.GetEntity(ctx, catalog.Ref{Blueprint: "service", Identifier: "svc-1"})
	if err != nil || e.Properties["healthy"] != true || e.Properties["version"] != "1" {
		t.Fatalf("svc-1 after the run: %+v %v", e, err)
	}
	if len(out.Affected) != 2 {
		t.Fatalf("affected %+v", out.Affected)
	}
	save(t, c, id, "actionrun-wait-update.json")
}

// recordWaitTimeout: a wait step on svc-2, which never turns healthy,
// times out after 2s (polls each second): the run ends TIMED_OUT and runs
// the started steps' compensations, then the plan's.
func recordWaitTimeout(ctx context.Context, t *testing.T, c client.Client, hooks string, calls *hookCalls) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "ping", Type: actions.StepWebhook, URL: hooks + "/ping", OnFailure: []actions.Step{{ID: "unping", Type: actions.StepWebhook, URL: hooks + "/unping"}}},
		{ID: "healthy", Type: actions.StepWait, Timeout: "2s", PollInterval: "1s",
			Entity: &actions.EntitySelector{Blueprint: "service", Identifier: "svc-2"},
			Until:  &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "healthy", Operator: "=", Value: true}}}},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks + "/notify"}}}
	id := startRun(ctx, t, c, "run_wait_timeout", plan)
	finish(ctx, t, c, id, actions.StatusTimedOut)
	calls.expect(t, id, "ping", "unping", "notify")
	save(t, c, id, "actionrun-wait-timeout.json")
}

// recordCompensate: a webhook that fails once then succeeds on retry, a
// webhook that answers 502 through all 3 attempts, then the compensations
// of every started step in reverse order (the failed step's own first)
// and the plan's onFailure.
func recordCompensate(ctx context.Context, t *testing.T, c client.Client, hooks string, calls *hookCalls) {
	retry := &actions.Retry{MaximumAttempts: 3, InitialInterval: "200ms", BackoffCoefficient: 2}
	undo := func(id string) []actions.Step {
		return []actions.Step{{ID: id, Type: actions.StepWebhook, URL: hooks + "/" + id}}
	}
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "provision", Type: actions.StepWebhook, URL: hooks + "/provision", OnFailure: undo("deprovision")},
		{ID: "flaky", Type: actions.StepWebhook, URL: hooks + "/flaky", Retry: retry, OnFailure: undo("unflake")},
		{ID: "deploy", Type: actions.StepWebhook, URL: hooks + "/down", Retry: retry, OnFailure: undo("rollback")},
		{ID: "after", Type: actions.StepWebhook, URL: hooks + "/after", OnFailure: undo("unafter")},
	}, OnFailure: undo("notify")}
	id := startRun(ctx, t, c, "run_compensate", plan)
	out := finish(ctx, t, c, id, actions.StatusFailure)
	calls.expect(t, id, "provision", "flaky", "flaky", "deploy", "deploy", "deploy", "rollback", "unflake", "deprovision", "notify")
	if out.Steps[1].Attempts != 2 || out.Steps[2].Attempts != 3 {
		t.Fatalf("attempts: %+v", out.Steps)
	}
	save(t, c, id, "actionrun-compensate.json")
}

// recordCancelled: the run is cancelled while it sleeps: it ends
// CANCELLED, the rest is skipped and nothing is compensated.
func recordCancelled(ctx context.Context, t *testing.T, c client.Client, hooks string, calls *hookCalls) {
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "prepare", Type: actions.StepWebhook, URL: hooks + "/prepare", OnFailure: []actions.Step{{ID: "unprepare", Type: actions.StepWebhook, URL: hooks + "/unprepare"}}},
		{ID: "nap", Type: actions.StepSleep, Duration: "1h"},
		{ID: "ship", Type: actions.StepWebhook, URL: hooks + "/ship"},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks + "/notify"}}}
	id := startRun(ctx, t, c, "run_cancelled", plan)
	waitRun(ctx, t, c, id, func(r *actions.Run) bool { return len(r.Steps) > 1 && r.Steps[1].Status == actions.StatusInProgress })
	if err := c.CancelWorkflow(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	out := finish(ctx, t, c, id, actions.StatusCancelled)
	if out.Steps[1].Status != actions.StatusCancelled || out.Steps[2].Status != actions.StepSkipped {
		t.Fatalf("steps %+v", out.Steps)
	}
	calls.expect(t, id, "prepare")
	save(t, c, id, "actionrun-cancelled.json")
}

// startRun starts an ActionRun of plan on entity service/svc-1 by alice.
func startRun(ctx context.Context, t *testing.T, c client.Client, id string, plan actions.Plan) string {
	t.Helper()
	status := actions.StatusInProgress
	if plan.Steps[0].Type == actions.StepApproval {
		status = actions.StatusWaitingForApproval
	}
	run := &actions.Run{ID: id, Action: "deploy", Blueprint: "service", Entity: "svc-1", Inputs: map[string]any{"v": "1"},
		TriggeredBy: "alice", Status: status, Revision: 1, CreatedAt: time.Now().UTC(),
		Approvals: []actions.ApprovalRecord{}, Logs: []actions.LogLine{}, Affected: []actions.Affected{}}
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "record"}, workflows.ActionRunWorkflow,
		workflows.RunInput{Run: run, Plan: plan, Entity: json.RawMessage(`{"identifier":"svc-1","properties":{"healthy":false}}`)}); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitRun queries the run until cond holds (queries leave no events).
func waitRun(ctx context.Context, t *testing.T, c client.Client, id string, cond func(*actions.Run) bool) *actions.Run {
	t.Helper()
	for {
		if v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryRun); err == nil {
			var r actions.Run
			if err := v.Get(&r); err != nil {
				t.Fatal(err)
			}
			if cond(&r) {
				return &r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s: %v", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func signal(ctx context.Context, t *testing.T, c client.Client, id string, d actions.Decision) {
	t.Helper()
	if err := c.SignalWorkflow(ctx, id, "", workflows.SignalDecision, d); err != nil {
		t.Fatal(err)
	}
}

// finish waits for the run's result and checks its status.
func finish(ctx context.Context, t *testing.T, c client.Client, id, status string) *actions.Run {
	t.Helper()
	var out actions.Run
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &out); err != nil || out.Status != status {
		t.Fatalf("run %s: %s (want %s) %v", id, out.Status, status, err)
	}
	return &out
}

// hookCalls counts webhook deliveries by Idempotency-Key (run:step), in
// order.
type hookCalls struct {
	mu    sync.Mutex
	order []string
	seen  map[string]int
}

// add records a delivery and returns how many that key has had.
func (h *hookCalls) add(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.order = append(h.order, key)
	h.seen[key]++
	return h.seen[key]
}

// expect checks the steps run delivered to, in order.
func (h *hookCalls) expect(t *testing.T, run string, steps ...string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, k := range h.order {
		if step, ok := strings.CutPrefix(k, run+":"); ok {
			got = append(got, step)
		}
	}
	if !slices.Equal(got, steps) {
		t.Fatalf("deliveries of %s: %v, want %v", run, got, steps)
	}
}

// fakePlugins stands in for the plugin host: every action tags the
// entity and reports it upserted.
type fakePlugins struct{}

func (fakePlugins) Act(_ context.Context, id, action string, entity *catalog.Ref, inputs json.RawMessage) (*integrations.ActResult, error) {
	var in struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(inputs, &in)
	res := &integrations.ActResult{Message: id + "/" + action + " done", Logs: []string{"tagging"},
		Outputs: json.RawMessage(`{"tag":"v` + in.Version + `"}`)}
	if entity != nil {
		res.Upserted = []catalog.Ref{*entity}
	}
	return res, nil
}

// recordTimer: armed, rescheduled, expired.
func recordTimer(ctx context.Context, t *testing.T, c client.Client) {
	in := workflows.TimerInput{Blueprint: "env", Identifier: "pr-1", Property: "expiresAt", ExpiresAt: time.Now().Add(time.Hour)}
	id := workflows.TimerID("env", "pr-1", "expiresAt")
	tr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "record"}, workflows.TimerWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	in.ExpiresAt = time.Now().Add(time.Second)
	if err := c.SignalWorkflow(ctx, id, "", workflows.SignalReschedule, in); err != nil {
		t.Fatal(err)
	}
	if err := tr.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	save(t, c, id, "timer.json")
}

// recordResync: started by the integration's Temporal Schedule; the
// resync runs for one poll, then succeeds.
func recordResync(ctx context.Context, t *testing.T, c client.Client) {
	sched := workflows.NewSchedules(c, "record")
	if err := sched.Ensure(ctx, "items", time.Second); err != nil {
		t.Fatal(err)
	}
	h := c.ScheduleClient().GetHandle(ctx, workflows.ResyncScheduleID("items"))
	var started *client.ScheduleWorkflowExecution
	for started == nil {
		d, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Info.RecentActions) > 0 {
			started = d.Info.RecentActions[0].StartWorkflowResult
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := sched.Remove(ctx, "items"); err != nil {
		t.Fatal(err)
	}
	var res workflows.ResyncResult
	if err := c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &res); err != nil || res.Status != "succeeded" {
		t.Fatalf("resync: %+v %v", res, err)
	}
	save(t, c, started.WorkflowID, "resync.json")
}

// stubResyncer starts a sync that is running at the first poll and has
// succeeded at the second.
type stubResyncer struct {
	mu    sync.Mutex
	polls int
}

func (s *stubResyncer) StartScheduledResync(_ context.Context, id string) (*integrations.Sync, bool, error) {
	return &integrations.Sync{ID: "sync-1", Integration: id, Trigger: integrations.TriggerSchedule, Status: integrations.SyncRunning}, true, nil
}

func (s *stubResyncer) Sync(_ context.Context, id, sid string) (*integrations.Sync, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	st := integrations.SyncRunning
	if s.polls > 1 {
		st = integrations.SyncSucceeded
	}
	return &integrations.Sync{ID: sid, Integration: id, Trigger: integrations.TriggerSchedule, Status: st, Items: 4, Upserts: 4}, nil
}

func save(t *testing.T, c client.Client, id, name string) {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "testdata", name), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
