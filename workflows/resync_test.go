package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/portico-dev/portico/host/integrations"
)

// fakeResyncer answers StartScheduledResync with a fixed outcome; the
// sync it starts reports running for polls more Sync calls, then final.
type fakeResyncer struct {
	mu      sync.Mutex
	start   *integrations.Sync
	started bool
	err     error
	polls   int
	final   *integrations.Sync
	calls   []string
}

func (f *fakeResyncer) StartScheduledResync(_ context.Context, id string) (*integrations.Sync, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "start "+id)
	return f.start, f.started, f.err
}

func (f *fakeResyncer) Sync(_ context.Context, id, sid string) (*integrations.Sync, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "sync "+id+"/"+sid)
	if f.polls > 0 {
		f.polls--
		return f.start, nil
	}
	return f.final, nil
}

func TestResync(t *testing.T) {
	running := &integrations.Sync{ID: "s1", Integration: "pd", Status: integrations.SyncRunning}
	succeeded := &integrations.Sync{ID: "s1", Integration: "pd", Status: integrations.SyncSucceeded, Items: 7, Upserts: 3, Deletes: 1}
	failed := &integrations.Sync{ID: "s1", Integration: "pd", Status: integrations.SyncFailed,
		Errors: []integrations.SyncError{{Message: "page 2: 502"}}}
	tests := []struct {
		name    string
		fake    *fakeResyncer
		want    *ResyncResult
		wantErr string
		calls   int
	}{
		{"runs and waits", &fakeResyncer{start: running, started: true, polls: 1, final: succeeded},
			&ResyncResult{Sync: "s1", Status: integrations.SyncSucceeded, Items: 7, Upserts: 3, Deletes: 1}, "", 3},
		{"already running", &fakeResyncer{start: running},
			&ResyncResult{Sync: "s1", Status: ResyncSkipped, Skipped: "a resync is already running"}, "", 1},
		{"lock held, no record", &fakeResyncer{},
			&ResyncResult{Status: ResyncSkipped, Skipped: "a resync is already running"}, "", 1},
		{"integration deleted", &fakeResyncer{err: fmt.Errorf("read: %w", integrations.ErrNotFound)},
			&ResyncResult{Status: ResyncSkipped, Skipped: "integration not found"}, "", 1},
		{"sync failed", &fakeResyncer{start: running, started: true, final: failed},
			nil, "resync s1 of pd failed: page 2: 502", 2},
		{"store down, retried", &fakeResyncer{err: errors.New("redis: connection refused")},
			nil, "connection refused", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			ts.SetLogger(quietLogger)
			env := ts.NewTestWorkflowEnvironment()
			Register(env, &Activities{Resyncs: tt.fake})
			env.ExecuteWorkflow(ResyncWorkflow, ResyncInput{Integration: "pd"})
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var got ResyncResult
				if err := env.GetWorkflowResult(&got); err != nil {
					t.Fatal(err)
				}
				if got != *tt.want {
					t.Fatalf("result %+v, want %+v", got, *tt.want)
				}
			}
			if len(tt.fake.calls) != tt.calls {
				t.Fatalf("calls %v, want %d", tt.fake.calls, tt.calls)
			}
		})
	}
}

func TestResyncWithoutPluginHost(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger)
	env := ts.NewTestWorkflowEnvironment()
	Register(env, &Activities{})
	env.ExecuteWorkflow(ResyncWorkflow, ResyncInput{Integration: "pd"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != "NoPluginHost" {
		t.Fatalf("error %v", err)
	}
}

func TestShortDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1s"},
		{15 * time.Minute, "15m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{90 * time.Second, "1m30s"},
		{36*time.Hour + time.Second, "36h0m1s"},
	} {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
