package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/secretbox"
	"github.com/portico-dev/portico/workflows"
)

// TestPortalWiring builds the object graph as serve does (with an engine
// over a stand-in Temporal client) against miniredis, and checks that
// every service is there and talks to the ones it depends on: a
// dependency left unset fails one of the checks.
func TestPortalWiring(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	key, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secretbox.ParseKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	// A secret stored in plain text before the key: newPortal seals it.
	if _, err := redisactions.New(rdb, redisactions.Options{}).InitSecret(ctx, "legacy", "whsec_plain"); err != nil {
		t.Fatal(err)
	}
	temporal := &fakeTemporal{}
	eng := &engine{log: discardLog(), client: temporal, runner: workflows.NewRunner(temporal, workflows.TaskQueue), taskQueue: workflows.TaskQueue}

	p, err := newPortal(discardLog(), rdb, portalConfig{
		access: accessConfig{adminToken: "T"}, addr: "127.0.0.1:0", cacheDir: t.TempDir(), keys: keys, engine: eng,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := p.start(startOptions{api: true, pluginDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.srv.Handler)
	t.Cleanup(srv.Close)

	for name, v := range map[string]any{
		"catalog store": p.catalogStore, "action store": p.actionStore, "catalog": p.catalog, "access": p.access,
		"plugin registry": p.plugins.registry, "integrations": p.plugins.integrations, "actions": p.actions,
		"engine": p.engine, "handler": p.srv.Handler,
	} {
		if isNil(v) {
			t.Errorf("%s is nil", name)
		}
	}

	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer T")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}

	t.Run("access bootstrapped through the catalog", func(t *testing.T) {
		if _, err := p.catalogStore.Blueprint(ctx, "_user"); err != nil {
			t.Fatalf("built-in _user blueprint: %v", err)
		}
	})
	t.Run("catalog enforces the access policy", func(t *testing.T) {
		_, _, err := p.catalog.PutBlueprint(ctx, &catalog.Blueprint{Identifier: "anonymous"}, false)
		if !errors.Is(err, catalog.ErrForbidden) {
			t.Fatalf("anonymous blueprint write: %v, want %v", err, catalog.ErrForbidden)
		}
	})
	t.Run("API writes reach the catalog store", func(t *testing.T) {
		if code, out := call("PUT", "/api/v1/blueprints/service", map[string]any{"title": "Service"}); code/100 != 2 {
			t.Fatalf("PUT blueprint: %d %s", code, out)
		}
		if code, out := call("PUT", "/api/v1/blueprints/service/entities/checkout", map[string]any{}); code/100 != 2 {
			t.Fatalf("PUT entity: %d %s", code, out)
		}
		es, err := p.catalogStore.Entities(ctx, []catalog.Ref{{Blueprint: "service", Identifier: "checkout"}})
		if err != nil || len(es) != 1 || es[0] == nil {
			t.Fatalf("stored entity: %v %v", es, err)
		}
	})
	t.Run("actions see the catalog and seal secrets", func(t *testing.T) {
		action := func(bp string) map[string]any {
			return map[string]any{"title": "Deploy", "blueprint": bp, "operation": "DAY-2",
				"invocation": map[string]any{"type": "webhook", "url": "https://ci.example/deploy"}}
		}
		if code, out := call("PUT", "/api/v1/actions/bad", action("nope")); code != http.StatusUnprocessableEntity {
			t.Fatalf("action on a missing blueprint: %d %s", code, out)
		}
		if code, out := call("PUT", "/api/v1/actions/deploy", action("service")); code != http.StatusCreated {
			t.Fatalf("PUT action: %d %s", code, out)
		}
		census, err := p.actionStore.SecretCensus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if census[keys.Primary()] != 2 || len(census) != 1 {
			t.Fatalf("secret census %v: want both signing secrets sealed with %s", census, keys.Primary())
		}
	})
	t.Run("actions run on the engine", func(t *testing.T) {
		if p.actions.Runner() != p.engine.runner {
			t.Fatalf("actions runner %v, want the engine's", p.actions.Runner())
		}
	})
	t.Run("readiness asks Temporal", func(t *testing.T) {
		code, out := call("GET", "/readyz", nil)
		if code != http.StatusOK || !strings.Contains(string(out), `"temporal":"ok"`) || temporal.health.Load() == 0 {
			t.Fatalf("readyz: %d %s (health checks: %d)", code, out, temporal.health.Load())
		}
	})
	t.Run("integrations keep schedules in Temporal", func(t *testing.T) {
		// With a Scheduler, Run reconciles it and returns; without one it
		// would tick until ctx ends.
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		p.plugins.integrations.Run(ctx)
		if ctx.Err() != nil || temporal.lists.Load() == 0 {
			t.Fatalf("Run returned %v after %d schedule listings", ctx.Err(), temporal.lists.Load())
		}
	})
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// isNil reports whether v is nil or a nil pointer.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return v == nil || rv.Kind() == reflect.Pointer && rv.IsNil()
}

// fakeTemporal stands in for a Temporal client: it answers health
// checks and lists no schedules, counting both; any other call panics.
type fakeTemporal struct {
	client.Client
	health, lists atomic.Int32
}

func (f *fakeTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	f.health.Add(1)
	return &client.CheckHealthResponse{}, nil
}

func (f *fakeTemporal) ScheduleClient() client.ScheduleClient { return fakeSchedules{f: f} }

func (f *fakeTemporal) Close() {}

type fakeSchedules struct {
	client.ScheduleClient
	f *fakeTemporal
}

func (s fakeSchedules) List(context.Context, client.ScheduleListOptions) (client.ScheduleListIterator, error) {
	s.f.lists.Add(1)
	return noSchedules{}, nil
}

type noSchedules struct{}

func (noSchedules) HasNext() bool                            { return false }
func (noSchedules) Next() (*client.ScheduleListEntry, error) { return nil, io.EOF }
