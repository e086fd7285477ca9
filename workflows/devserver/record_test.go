package devserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/redisstore"
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
	cat := catalog.NewService(redisstore.New(rdb, redisstore.Options{}))
	if _, _, err := cat.PutBlueprint(ctx, &catalog.Blueprint{Identifier: "env", Schema: catalog.Schema{Properties: map[string]catalog.Property{
		"expiresAt": {Type: "string", Format: "timer"}}}}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.PutEntity(ctx, &catalog.Entity{Identifier: "pr-1", Blueprint: "env", Properties: map[string]any{}}, false); err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer hooks.Close()

	w := worker.New(c, "record", worker.Options{})
	workflows.Register(w, &workflows.Activities{Store: redisactions.New(rdb, ""), Catalog: cat, Resyncs: &stubResyncer{}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Each workflow type is a subtest: -run TestRecordHistories/Resync
	// re-records only that one.
	t.Run("ActionRun", func(t *testing.T) { recordActionRun(ctx, t, c, hooks.URL) })
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
