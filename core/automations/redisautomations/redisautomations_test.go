package redisautomations_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/automations/redisautomations"
	"github.com/portico-dev/portico/internal/redistest"
	"github.com/portico-dev/portico/internal/secretbox"
)

// backends runs fn against the embedded Redis of `portico dev` and a
// real redis-server.
func backends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		fn(t, rdb)
	})
	t.Run("redis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t), DB: 11})
		t.Cleanup(func() { _ = rdb.Close() })
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		fn(t, rdb)
	})
}

func hook(id, auth string) *automations.Automation {
	return &automations.Automation{Identifier: id,
		Trigger: automations.Trigger{Event: "entity.created", Blueprint: "service"},
		Invoke:  automations.Invoke{Type: automations.InvokeWebhook, URL: "https://hooks.example/" + id, Headers: map[string]string{"Authorization": auth}}}
}

// TestDefinitions: versions move only on a change, the list is sorted,
// every put and delete bumps the generation, a header value is sealed at
// rest and read back whole.
func TestDefinitions(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		key, _ := secretbox.GenerateKey()
		ring, err := secretbox.ParseKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		s := redisautomations.New(rdb, redisautomations.Options{Prefix: "t", Keyring: ring})
		gen := func() int64 {
			t.Helper()
			g, err := s.Generation(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		g0 := gen()
		for _, id := range []string{"b", "a", "c"} {
			if _, created, err := s.Put(ctx, hook(id, "Bearer s3cret-"+id)); err != nil || !created {
				t.Fatalf("put %s: created %v, %v", id, created, err)
			}
		}
		if g := gen(); g != g0+3 {
			t.Errorf("generation %d after 3 puts from %d", g, g0)
		}
		same, created, err := s.Put(ctx, hook("a", "Bearer s3cret-a"))
		if err != nil || created || same.Version != 1 || gen() != g0+3 {
			t.Errorf("unchanged put: version %d, created %v, %v; generation %d", same.Version, created, err, gen())
		}
		next, _, err := s.Put(ctx, hook("a", "Bearer other"))
		if err != nil || next.Version != 2 || gen() != g0+4 {
			t.Errorf("changed put: version %d, %v", next.Version, err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 3 || list[0].Identifier != "a" || list[1].Identifier != "b" || list[2].Identifier != "c" {
			t.Fatalf("list: %v, %v", list, err)
		}
		keys, _ := rdb.Keys(ctx, "t|*").Result()
		for _, k := range keys {
			if typ, _ := rdb.Type(ctx, k).Result(); typ == "string" {
				if raw, _ := rdb.Get(ctx, k).Result(); strings.Contains(raw, "s3cret") || strings.Contains(raw, "Bearer other") {
					t.Errorf("%s holds a header value in the clear: %s", k, raw)
				}
			}
		}
		got, err := s.Get(ctx, "b")
		if err != nil || got.Invoke.Headers["Authorization"] != "Bearer s3cret-b" {
			t.Fatalf("get b: %+v, %v", got, err)
		}
		if err := s.Delete(ctx, "b"); err != nil || gen() != g0+5 {
			t.Fatalf("delete: %v, generation %d", err, gen())
		}
		if _, err := s.Get(ctx, "b"); !errors.Is(err, automations.ErrNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if ok, err := s.InitSecret(ctx, "a", "first"); err != nil || !ok {
			t.Fatalf("init secret: %v, %v", ok, err)
		}
		if ok, err := s.InitSecret(ctx, "a", "second"); err != nil || ok {
			t.Fatalf("init secret again: %v, %v", ok, err)
		}
		if sec, err := s.Secret(ctx, "a"); err != nil || sec != "first" {
			t.Errorf("secret %q, %v", sec, err)
		}
	})
}

// TestDeliveries: a finished record is never replaced by a started one
// (a slower replica's late "started"), the first start time stays, the
// list is newest first and bounded, and the cursor round-trips.
func TestDeliveries(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := redisautomations.New(rdb, redisautomations.Options{Prefix: "t", MaxDeliveries: 3})
		t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
		rec := func(ev, status string, at time.Time) *automations.Delivery {
			return &automations.Delivery{ID: ev, Automation: "a", Status: status, StartedAt: at, UpdatedAt: at}
		}
		save := func(d *automations.Delivery) {
			t.Helper()
			if err := s.SaveDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		save(rec("1-0", automations.StatusStarted, t0))
		done := rec("1-0", automations.StatusSucceeded, t0.Add(time.Second))
		done.Run = "run_x"
		save(done)
		save(rec("1-0", automations.StatusStarted, t0.Add(2*time.Second)))
		ds, err := s.Deliveries(ctx, "a", 10)
		if err != nil || len(ds) != 1 || ds[0].Status != automations.StatusSucceeded || ds[0].Run != "run_x" || !ds[0].StartedAt.Equal(t0) {
			t.Fatalf("after a late start: %+v, %v", ds, err)
		}
		for i, ev := range []string{"2-0", "3-0", "4-0"} {
			save(rec(ev, automations.StatusStarted, t0.Add(time.Duration(i+1)*time.Minute)))
		}
		ds, err = s.Deliveries(ctx, "a", 10)
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if err != nil || strings.Join(ids, " ") != "4-0 3-0 2-0" {
			t.Errorf("deliveries %v, %v; want the 3 newest, newest first", ids, err)
		}
		if c, err := s.Cursor(ctx); err != nil || c != "" {
			t.Errorf("cursor before any: %q, %v", c, err)
		}
		if err := s.SetCursor(ctx, "1700000000000-3"); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx); err != nil || c != "1700000000000-3" {
			t.Errorf("cursor %q, %v", c, err)
		}
	})
}
