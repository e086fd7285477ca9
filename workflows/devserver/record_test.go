package devserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	workflows.Register(w, &workflows.Activities{Store: redisactions.New(rdb, ""), Catalog: cat})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// ActionRun: approval, sleep, parallel webhooks, a failing step, compensations.
	plan := actions.Plan{Steps: []actions.Step{
		{ID: "approval", Type: actions.StepApproval, Count: 1, Timeout: "1h"},
		{ID: "announce", Type: actions.StepWebhook, URL: hooks.URL + "/announce", OnFailure: []actions.Step{{ID: "retract", Type: actions.StepWebhook, URL: hooks.URL + "/retract"}}},
		{ID: "pause", Type: actions.StepSleep, Duration: "1s"},
		{ID: "both", Type: actions.StepParallel, Steps: []actions.Step{
			{ID: "a", Type: actions.StepWebhook, URL: hooks.URL + "/a"},
			{ID: "b", Type: actions.StepWebhook, URL: hooks.URL + "/b", DependsOn: []string{"a"}},
		}},
		{ID: "fail", Type: actions.StepWebhook, URL: hooks.URL + "/broken"},
	}, OnFailure: []actions.Step{{ID: "notify", Type: actions.StepWebhook, URL: hooks.URL + "/notify"}}}
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

	// Timer: armed, rescheduled, expired.
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
