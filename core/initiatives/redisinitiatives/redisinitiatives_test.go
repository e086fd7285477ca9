package redisinitiatives_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/core/initiatives/redisinitiatives"
	"github.com/portico-dev/portico/devredis/devredistest"
)

func newStore(t *testing.T) *redisinitiatives.Store {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	devredistest.Check(t, rdb)
	return redisinitiatives.New(rdb, redisinitiatives.Options{})
}

// TestPositionOnlyMovesForward: a process behind another cannot move the
// shared position back.
func TestPositionOnlyMovesForward(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, c := range []struct{ save, want string }{
		{"", ""}, {"1700000000000-2", "1700000000000-2"}, {"1700000000000-1", "1700000000000-2"},
		{"1700000000000-10", "1700000000000-10"}, {"999-0", "1700000000000-10"}, {"1700000000001-0", "1700000000001-0"},
	} {
		if c.save != "" {
			if err := s.SavePosition(ctx, c.save); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Position(ctx); err != nil || got != c.want {
			t.Errorf("after saving %q: position %q (%v), want %q", c.save, got, err, c.want)
		}
	}
}

// TestFiguresByDay: a day's figure is replaced by a later one of the
// same day; days come back in date order; regressions are bounded and
// newest first; deleting an initiative deletes its figures.
func TestFiguresByDay(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, p := range []initiatives.SharePoint{{Date: "2026-12-07", Share: 0.5}, {Date: "2026-12-05", Share: 0.1}, {Date: "2026-12-07", Share: 0.75}} {
		if err := s.SaveShare(ctx, "q1", p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Shares(ctx, "q1")
	if err != nil || len(got) != 2 || got[0].Date != "2026-12-05" || got[1].Share != 0.75 {
		t.Errorf("shares %+v %v, want 12-05 then 12-07 at 0.75", got, err)
	}
	for i := range initiatives.MaxRegressions + 5 {
		if err := s.AddRegression(ctx, "q1", initiatives.Regression{Identifier: strconv.Itoa(i), At: time.Unix(int64(i), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	regs, err := s.Regressions(ctx, "q1")
	if err != nil || len(regs) != initiatives.MaxRegressions || regs[0].Identifier != strconv.Itoa(initiatives.MaxRegressions+4) {
		t.Errorf("%d regressions, first %+v (%v)", len(regs), regs[0], err)
	}
	if created, err := s.Put(ctx, &initiatives.Initiative{Identifier: "q1"}); err != nil || !created {
		t.Fatalf("put: %v %v", created, err)
	}
	if created, _ := s.Put(ctx, &initiatives.Initiative{Identifier: "q1"}); created {
		t.Error("second put created")
	}
	if err := s.Delete(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Shares(ctx, "q1"); len(got) != 0 {
		t.Errorf("shares after delete: %+v", got)
	}
	if regs, _ := s.Regressions(ctx, "q1"); len(regs) != 0 {
		t.Errorf("regressions after delete: %d", len(regs))
	}
	if _, err := s.Get(ctx, "q1"); !errors.Is(err, initiatives.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
}
