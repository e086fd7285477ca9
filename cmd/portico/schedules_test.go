package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/workflows"
)

// TestResyncSchedules runs the portal as `portico dev` does (embedded
// Temporal server, worker, plugin host) and checks that an integration's
// schedule is a Temporal Schedule: created with the integration, running
// scheduled resyncs, pausable through the API, updated and removed with
// the integration, and reconciled at start.
func TestResyncSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server and builds a Wasm plugin")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wasm := buildExamplePlugin(t)
	items := itemsAPI(t, 3)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	eng, err := startEmbedded(log, t.TempDir(), temporalConfig{namespace: "default", taskQueue: workflows.TaskQueue})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPortal(log, rdb, portalConfig{access: accessConfig{adminToken: "admin-token"}, addr: "127.0.0.1:0", cacheDir: t.TempDir(), engine: eng})
	if err != nil {
		_ = eng.stop()
		t.Fatal(err)
	}
	if err := p.start(startOptions{api: true, worker: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.srv.Handler)
	defer func() {
		srv.Close()
		if err := p.close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	call := func(want int, method, path string, body any, out any) {
		t.Helper()
		var rd io.Reader
		ctype := "application/json"
		switch b := body.(type) {
		case nil:
		case []byte:
			rd, ctype = bytes.NewReader(b), "application/wasm"
		default:
			raw, _ := json.Marshal(b)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer admin-token")
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, raw)
			}
		}
	}
	spec := func(schedule string) map[string]any {
		return map[string]any{"plugin": "example", "config": map[string]any{"baseUrl": items.URL},
			"secrets":      map[string]string{"apiToken": "t", "webhookSecret": "w"},
			"allowedHosts": []string{items.Listener.Addr().String()}, "schedule": schedule}
	}
	schedules := eng.client.ScheduleClient()
	describe := func() (*client.ScheduleDescription, error) {
		return schedules.GetHandle(ctx, workflows.ResyncScheduleID("items")).Describe(ctx)
	}
	mustDescribe := func() *client.ScheduleDescription {
		t.Helper()
		d, err := describe()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type view struct {
		integrations.Status
		ScheduleState *integrations.ScheduleState `json:"scheduleState"`
	}

	// Reconciled at start: an orphan schedule goes, a missing one comes.
	call(http.StatusCreated, "POST", "/api/v1/plugins", wasm, nil)
	ghosts := workflows.NewSchedules(eng.client, workflows.TaskQueue)
	if err := ghosts.Ensure(ctx, "ghost", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ghost schedule to be listed", func() bool {
		ids, err := ghosts.List(ctx)
		return err == nil && slices.Contains(ids, "ghost")
	})
	call(http.StatusCreated, "PUT", "/api/v1/integrations/items", spec("1s"), nil)
	if err := schedules.GetHandle(ctx, workflows.ResyncScheduleID("items")).Delete(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.plugins.integrations.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("reconcile did not finish")
	}
	if _, err := ghosts.Describe(ctx, "ghost"); !errors.Is(err, integrations.ErrNoSchedule) {
		t.Fatalf("ghost schedule after reconcile: %v", err)
	}

	// (a) The schedule: every 1s, skip overlaps, Resync on our task queue.
	d := mustDescribe()
	act, _ := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if len(d.Schedule.Spec.Intervals) != 1 || d.Schedule.Spec.Intervals[0].Every != time.Second ||
		d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || act == nil ||
		act.Workflow != workflows.ResyncWorkflow || act.TaskQueue != workflows.TaskQueue {
		t.Fatalf("schedule %+v %+v %+v", d.Schedule.Spec, d.Schedule.Policy, d.Schedule.Action)
	}

	// (b) A scheduled resync ran through the worker and is visible.
	var v view
	waitFor(t, "a scheduled resync", func() bool {
		call(http.StatusOK, "GET", "/api/v1/integrations/items", nil, &v)
		return v.LastSync != nil && v.LastSync.Trigger == integrations.TriggerSchedule && v.LastSync.Status == integrations.SyncSucceeded
	})
	if v.Entities != 3 || v.Schedule != "1s" || v.ScheduleState == nil || v.ScheduleState.ID != "resync:items" ||
		v.ScheduleState.Every != "1s" || v.ScheduleState.Paused || v.ScheduleState.NextRunAt == nil || v.ScheduleState.LastRunAt == nil {
		t.Fatalf("after a scheduled resync: %d entities, schedule %q, %+v", v.Entities, v.Schedule, v.ScheduleState)
	}

	// (c) Paused: no new runs, shown paused; a new period keeps the pause.
	var st integrations.ScheduleState
	call(http.StatusOK, "POST", "/api/v1/integrations/items/schedule/pause", map[string]string{"note": "upstream maintenance"}, &st)
	if !st.Paused || st.Note != "upstream maintenance" || st.NextRunAt != nil {
		t.Fatalf("paused: %+v", st)
	}
	// An action that began just before the pause may still be counted: the
	// count must settle, then stay put for 3 s (three periods of 1 s),
	// which a schedule that still runs never does.
	before := mustDescribe().Info.NumActions
	for deadline := time.Now().Add(60 * time.Second); ; {
		time.Sleep(3 * time.Second)
		n := mustDescribe().Info.NumActions
		if n == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("paused schedule still takes actions (%d in the last 3 s)", n-before)
		}
		before = n
	}
	call(http.StatusOK, "PUT", "/api/v1/integrations/items", spec("2s"), nil)
	d = mustDescribe()
	if d.Schedule.Spec.Intervals[0].Every != 2*time.Second || !d.Schedule.State.Paused {
		t.Fatalf("after a new period: every %s, paused %v", d.Schedule.Spec.Intervals[0].Every, d.Schedule.State.Paused)
	}
	call(http.StatusOK, "GET", "/api/v1/integrations/items", nil, &v)
	if v.ScheduleState == nil || !v.ScheduleState.Paused || v.ScheduleState.Every != "2s" {
		t.Fatalf("GET while paused: %+v", v.ScheduleState)
	}
	call(http.StatusOK, "POST", "/api/v1/integrations/items/schedule/unpause", nil, &st)
	if st.Paused || st.Note != "unpaused by admin" || st.NextRunAt == nil {
		t.Fatalf("unpaused: %+v", st)
	}
	waitFor(t, "a run after unpausing", func() bool { return mustDescribe().Info.NumActions > before })

	// Without a schedule: 409; unknown: 404.
	call(http.StatusOK, "PUT", "/api/v1/integrations/items", spec(""), nil)
	if _, err := describe(); err == nil {
		t.Fatal("schedule kept after the integration dropped it")
	}
	call(http.StatusConflict, "POST", "/api/v1/integrations/items/schedule/pause", nil, nil)
	call(http.StatusNotFound, "POST", "/api/v1/integrations/nope/schedule/pause", nil, nil)

	// (d) Deleting the integration deletes its schedule.
	call(http.StatusOK, "PUT", "/api/v1/integrations/items", spec("1h"), nil)
	mustDescribe()
	call(http.StatusOK, "DELETE", "/api/v1/integrations/items", nil, nil)
	if _, err := describe(); err == nil {
		t.Fatal("schedule kept after the integration was deleted")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildExamplePlugin builds plugins/example as a Wasm module.
func buildExamplePlugin(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "example.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./plugins/example")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build example plugin: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// itemsAPI serves n items the way the example plugin reads them: one
// page, GET /items.
func itemsAPI(t *testing.T, n int) *httptest.Server {
	var list []map[string]any
	for i := range n {
		list = append(list, map[string]any{"id": fmt.Sprintf("item-%d", i), "name": fmt.Sprintf("Item %d", i), "status": "ok", "size": i})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"items": list, "next": ""})
	}))
	t.Cleanup(srv.Close)
	return srv
}
