package integrations_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host/integrations"
)

// memScheduler is an in-memory integrations.Scheduler; down makes every
// call fail as an unreachable workflow engine would. (The Temporal one is
// tested against a real server in cmd/portico.)
type memScheduler struct {
	mu    sync.Mutex
	every map[string]time.Duration
	state map[string]integrations.ScheduleState
	down  bool
}

func newMemScheduler() *memScheduler {
	return &memScheduler{every: map[string]time.Duration{}, state: map[string]integrations.ScheduleState{}}
}

func (s *memScheduler) check() error {
	if s.down {
		return fmt.Errorf("%w: connection refused", integrations.ErrSchedulesUnavailable)
	}
	return nil
}

func (s *memScheduler) Ensure(_ context.Context, id string, every time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.every[id] = every
	st := s.state[id]
	st.ID, st.Every = "resync:"+id, every.String()
	s.state[id] = st
	return nil
}

func (s *memScheduler) Remove(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	delete(s.every, id)
	delete(s.state, id)
	return nil
}

func (s *memScheduler) Describe(_ context.Context, id string) (*integrations.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	st, ok := s.state[id]
	if !ok {
		return nil, integrations.ErrNoSchedule
	}
	return &st, nil
}

func (s *memScheduler) SetPaused(_ context.Context, id string, paused bool, note string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	st, ok := s.state[id]
	if !ok {
		return integrations.ErrNoSchedule
	}
	st.Paused, st.Note = paused, note
	s.state[id] = st
	return nil
}

func (s *memScheduler) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	var ids []string
	for id := range s.every {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *memScheduler) snapshot() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Duration{}
	for k, v := range s.every {
		out[k] = v
	}
	return out
}

func (s *memScheduler) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// TestScheduleHooks checks that installing, changing and deleting
// integrations keeps the Scheduler in line, and the schedule routes.
func TestScheduleHooks(t *testing.T) {
	sched := newMemScheduler()
	p := newPortal(t, nil, integrations.Options{Scheduler: sched})
	api := newStandIn(t, 2)
	p.publish(examplePkg)

	p.install("items", "example", api, map[string]any{"schedule": "15m"})
	p.install("plain", "example", api, nil)
	if got := sched.snapshot(); len(got) != 1 || got["items"] != 15*time.Minute {
		t.Fatalf("after install: %v", got)
	}
	var view struct {
		Schedule      string                      `json:"schedule"`
		ScheduleState *integrations.ScheduleState `json:"scheduleState"`
	}
	p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &view)
	if view.Schedule != "15m" || view.ScheduleState == nil || view.ScheduleState.ID != "resync:items" || view.ScheduleState.Paused {
		t.Fatalf("GET items: %+v %+v", view, view.ScheduleState)
	}

	type call struct {
		name, path string
		body       any
		status     int
		code       string
		paused     bool
		note       string
	}
	for _, c := range []call{
		{"pause, default note", "/items/schedule/pause", nil, http.StatusOK, "", true, "paused by admin"},
		{"unpause with a note", "/items/schedule/unpause", map[string]string{"note": "back"}, http.StatusOK, "", false, "back"},
		{"pause with a note", "/items/schedule/pause", map[string]string{"note": "upstream maintenance"}, http.StatusOK, "", true, "upstream maintenance"},
		{"no schedule", "/plain/schedule/pause", nil, http.StatusConflict, "no_schedule", false, ""},
		{"unknown integration", "/nope/schedule/unpause", nil, http.StatusNotFound, "not_found", false, ""},
		{"unknown field", "/items/schedule/pause", map[string]string{"why": "x"}, http.StatusBadRequest, "malformed_request", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := p.must(c.status, "POST", "/api/v1/integrations"+c.path, c.body)
			if c.code != "" {
				if got := errorCode(t, r); got != c.code {
					t.Fatalf("code %q, want %q", got, c.code)
				}
				return
			}
			var st integrations.ScheduleState
			r.json(t, &st)
			if st.Paused != c.paused || st.Note != c.note {
				t.Fatalf("schedule %+v", st)
			}
		})
	}

	// A new period keeps the pause; dropping the schedule removes it.
	p.install("items", "example", api, map[string]any{"schedule": "1h"})
	if got := sched.snapshot(); got["items"] != time.Hour {
		t.Fatalf("after changing the period: %v", got)
	}
	if st, err := p.mgr.Schedule(t.Context(), "items"); err != nil || !st.Paused {
		t.Fatalf("after changing the period: %+v %v", st, err)
	}
	p.install("items", "example", api, nil)
	if got := sched.snapshot(); len(got) != 0 {
		t.Fatalf("after dropping the schedule: %v", got)
	}

	// An unreachable engine rejects a write that needs it, which then
	// changes nothing.
	sched.setDown(true)
	spec := map[string]any{"plugin": "example", "config": map[string]any{"baseUrl": api.URL}, "schedule": "5m"}
	if r := p.must(http.StatusServiceUnavailable, "PUT", "/api/v1/integrations/late", spec); errorCode(t, r) != "temporal_unavailable" {
		t.Fatalf("PUT while down: %s", r.body)
	}
	p.must(http.StatusNotFound, "GET", "/api/v1/integrations/late", nil)
	p.must(http.StatusServiceUnavailable, "PUT", "/api/v1/integrations/items", spec)
	view.Schedule = ""
	p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &view)
	if view.Schedule != "" {
		t.Fatalf("a refused update was stored: schedule %q", view.Schedule)
	}
	p.install("plain", "example", api, nil) // needs no engine
	sched.setDown(false)
	if got := sched.snapshot(); len(got) != 0 {
		t.Fatalf("schedules written while down: %v", got)
	}

	p.install("items", "example", api, map[string]any{"schedule": "1h"})
	p.must(http.StatusOK, "DELETE", "/api/v1/integrations/items", nil)
	if got := sched.snapshot(); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
}

// TestReconcile checks that Run, given a Scheduler, reconciles the
// schedules and returns instead of running the ticker loop.
func TestReconcile(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{ScheduleTick: 10 * time.Millisecond})
	api := newStandIn(t, 2)
	p.publish(examplePkg)
	p.install("items", "example", api, map[string]any{"schedule": "1s"}) // before any scheduler
	p.install("plain", "example", api, nil)

	// A restart with a scheduler, over the same store.
	sched := newMemScheduler()
	sched.every["gone"] = time.Minute // its integration was deleted meanwhile
	sched.every["plain"] = time.Minute
	restarted := newPortal(t, p.rdb, integrations.Options{ScheduleTick: 10 * time.Millisecond, Scheduler: sched})
	done := make(chan struct{})
	go func() { restarted.mgr.Run(t.Context()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with a scheduler did not return")
	}
	if got := sched.snapshot(); len(got) != 1 || got["items"] != time.Second {
		t.Fatalf("after reconcile: %v", got)
	}
	time.Sleep(1500 * time.Millisecond) // the ticker would have resynced "items" by now
	var st integrations.Status
	p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &st)
	if st.LastSync != nil {
		t.Fatalf("a resync ran without the scheduler: %+v", st.LastSync)
	}
}

// TestScheduleWithoutTemporal checks the routes' answers with no Scheduler.
func TestScheduleWithoutTemporal(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 2)
	p.publish(examplePkg)
	p.install("items", "example", api, map[string]any{"schedule": "15m"})
	var view map[string]any
	p.must(http.StatusOK, "GET", "/api/v1/integrations/items", nil).json(t, &view)
	if _, ok := view["scheduleState"]; ok || view["schedule"] != "15m" {
		t.Fatalf("GET without Temporal: %v", view)
	}
	r := p.must(http.StatusServiceUnavailable, "POST", "/api/v1/integrations/items/schedule/pause", nil)
	if errorCode(t, r) != "temporal_unavailable" {
		t.Fatalf("pause without Temporal: %s", r.body)
	}
}
