package redisactions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/devredis/devredistest"
)

func newStore(t *testing.T) *redisactions.Store {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	devredistest.Check(t, rdb)
	return redisactions.New(rdb, redisactions.Options{})
}

func TestDefinitionsAreVersioned(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := &actions.Workflow{Identifier: "flow", Steps: []actions.Step{{ID: "a", Type: "sleep", Duration: "1s"}}}
	steps := []struct {
		duration string
		version  int
		created  bool
	}{{"1s", 1, true}, {"1s", 1, false}, {"2s", 2, false}, {"3s", 3, false}}
	for _, st := range steps {
		w.Steps[0].Duration = st.duration
		out, created, err := s.PutWorkflow(ctx, w)
		if err != nil || out.Version != st.version || created != st.created {
			t.Fatalf("put %s: version %d created %v err %v", st.duration, out.Version, created, err)
		}
	}
	old, err := s.GetWorkflow(ctx, "flow", 2)
	if err != nil || old.Steps[0].Duration != "2s" {
		t.Fatalf("version 2: %+v %v", old, err)
	}
	if latest, _ := s.GetWorkflow(ctx, "flow", 0); latest.Version != 3 {
		t.Fatalf("latest %d", latest.Version)
	}
	if _, err := s.GetWorkflow(ctx, "nope", 0); !errors.Is(err, actions.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestSaveRunKeepsNewestRevision(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r := &actions.Run{ID: "run_1", Action: "deploy", Blueprint: "service", Entity: "checkout", CreatedAt: time.Now()}
	for _, step := range []struct {
		rev    int
		status string
	}{{1, actions.StatusWaitingForApproval}, {3, actions.StatusSuccess}, {2, actions.StatusInProgress}} {
		r.Revision, r.Status = step.rev, step.status
		if err := s.SaveRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetRun(ctx, "run_1")
	if err != nil || got.Status != actions.StatusSuccess || got.Revision != 3 {
		t.Fatalf("run %+v %v", got, err)
	}
	for _, f := range []actions.RunFilter{{Status: actions.StatusSuccess}, {Action: "deploy"}, {Entity: "service/checkout"}, {Entity: "checkout"}} {
		page, err := s.ListRuns(ctx, f)
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("%+v: %v %v", f, page, err)
		}
	}
	for _, st := range []string{actions.StatusWaitingForApproval, actions.StatusInProgress} {
		if page, _ := s.ListRuns(ctx, actions.RunFilter{Status: st}); len(page.Runs) != 0 {
			t.Fatalf("stale status index %s", st)
		}
	}
}
