package workflows

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/mocks"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

// TestSchedulerRecoversATrimmedStream: when the change stream was trimmed
// past the scheduler's position, it arms every entity's timer from the
// catalog and moves to the newest event; without a gap it does nothing.
func TestSchedulerRecoversATrimmedStream(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{EventRetention: 5}), catalog.Options{})
	ctx := context.Background()
	bp, _ := catalog.DecodeBlueprint([]byte(`{"identifier":"env","schema":{"properties":{"expiresAt":{"type":"string","format":"timer"}}}}`))
	if _, _, err := cat.PutBlueprint(ctx, bp, true); err != nil {
		t.Fatal(err)
	}
	plain, _ := catalog.DecodeBlueprint([]byte(`{"identifier":"team","schema":{}}`))
	if _, _, err := cat.PutBlueprint(ctx, plain, true); err != nil {
		t.Fatal(err)
	}
	_, position, _ := cat.EventBounds(ctx)
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	const envs = 30
	for i := 0; i < envs; i++ {
		e, _ := catalog.DecodeEntity([]byte(fmt.Sprintf(`{"identifier":"pr-%d","properties":{"expiresAt":%q}}`, i, expires)))
		e.Blueprint = "env"
		if _, _, err := cat.PutEntity(ctx, e, true); err != nil {
			t.Fatal(err)
		}
	}
	team, _ := catalog.DecodeEntity([]byte(`{"identifier":"payments"}`))
	team.Blueprint = "team"
	if _, _, err := cat.PutEntity(ctx, team, true); err != nil {
		t.Fatal(err)
	}
	oldest, newest, err := cat.EventBounds(ctx)
	if err != nil || !catalog.EventIDBefore(position, oldest) {
		t.Fatalf("stream not trimmed past %s: oldest %s (%v)", position, oldest, err)
	}

	c := &mocks.Client{}
	armed := map[string]bool{}
	c.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, SignalReschedule, mock.Anything, mock.Anything, TimerWorkflow, mock.Anything).
		Run(func(args mock.Arguments) { armed[args.String(1)] = true }).Return(nil, nil)
	s := &TimerScheduler{Catalog: cat, Client: c, TaskQueue: TaskQueue, Logger: quietSlog}

	got, err := s.recoverGap(ctx, position)
	if err != nil || got != newest {
		t.Fatalf("recoverGap = %s, %v; want the newest id %s", got, err, newest)
	}
	if len(armed) != envs || !armed[TimerID("env", "pr-0", "expiresAt")] || !armed[TimerID("env", "pr-29", "expiresAt")] {
		t.Fatalf("armed %d timers: %v", len(armed), armed)
	}
	calls := len(c.Calls)
	if got, err := s.recoverGap(ctx, newest); err != nil || got != newest || len(c.Calls) != calls {
		t.Fatalf("no gap: %s, %v, %d new calls", got, err, len(c.Calls)-calls)
	}
}
