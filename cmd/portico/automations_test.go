package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/redistest"
	"github.com/portico-dev/portico/workflows"
)

// hookReceiver counts webhook deliveries by Idempotency-Key and checks
// their signature; paths under /fail answer 500.
type hookReceiver struct {
	mu     sync.Mutex
	hits   map[string]int
	bodies map[string][]map[string]any // by path
	bad    int                         // deliveries with a wrong signature
	secret map[string]string           // path → signing secret
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.secret[r.URL.Path]; s != "" && workflows.Signature(s, r.Header.Get("X-Portico-Timestamp"), raw) != r.Header.Get("X-Portico-Signature") {
		h.bad++
	}
	h.hits[r.URL.Path+" "+r.Header.Get("Idempotency-Key")]++
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], body)
	if strings.HasPrefix(r.URL.Path, "/fail") {
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// count returns how many distinct keys path was hit with and the most
// hits of one key.
func (h *hookReceiver) count(path string) (keys, most int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, n := range h.hits {
		if strings.HasPrefix(k, path+" ") {
			keys++
			most = max(most, n)
		}
	}
	return keys, most
}

type autoEnv struct {
	t    testing.TB
	ctx  context.Context
	srv  *httptest.Server
	p    *portal
	eng  *engine
	hook *hookReceiver
	hurl string
}

func (e *autoEnv) call(want int, token, method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		}
	}
	req, _ := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func (e *autoEnv) admin(want int, method, path string, body any) map[string]any {
	e.t.Helper()
	return e.call(want, "admin-token", method, path, body)
}

// putAutomation defines an automation and registers its signing secret
// with the receiver for path.
func (e *autoEnv) putAutomation(id, path string, spec map[string]any) {
	e.t.Helper()
	out := e.admin(http.StatusCreated, "PUT", "/api/v1/automations/"+id, spec)
	secret, _ := out["signingSecret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		e.t.Fatalf("automation %s: no signing secret in %v", id, out)
	}
	e.hook.mu.Lock()
	e.hook.secret[path] = secret
	e.hook.mu.Unlock()
}

func (e *autoEnv) deliveries(id string) []automations.Delivery {
	e.t.Helper()
	out := e.admin(http.StatusOK, "GET", "/api/v1/automations/"+id+"/runs", nil)
	raw, _ := json.Marshal(out["runs"])
	var list []automations.Delivery
	if err := json.Unmarshal(raw, &list); err != nil {
		e.t.Fatal(err)
	}
	return list
}

func webhook(url string) map[string]any { return map[string]any{"type": "webhook", "url": url} }

// newAutoEnv runs the portal as `portico dev` does (embedded Temporal,
// worker, background dispatcher) over a real redis-server.
func newAutoEnv(t testing.TB) *autoEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t), DB: 9})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
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
	bg, stopBG := context.WithCancel(ctx)
	p.runBackground(bg)
	srv := httptest.NewServer(p.srv.Handler)
	hook := &hookReceiver{hits: map[string]int{}, bodies: map[string][]map[string]any{}, secret: map[string]string{}}
	hs := httptest.NewServer(hook)
	t.Cleanup(func() {
		stopBG()
		hs.Close()
		srv.Close()
		if err := p.close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &autoEnv{t: t, ctx: ctx, srv: srv, p: p, eng: eng, hook: hook, hurl: hs.URL}
}

// TestAutomations drives every trigger type, conditions, validation,
// permissions, retries and the depth limit against real Temporal and
// Redis.
func TestAutomations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	e := newAutoEnv(t)
	e.admin(201, "PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"tier": map[string]any{"type": "integer"}, "expiresAt": map[string]any{"type": "string", "format": "timer"}}}})
	e.admin(201, "PUT", "/api/v1/blueprints/deployment", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"environment": map[string]any{"type": "string"}}}})
	e.admin(201, "PUT", "/api/v1/blueprints/counter", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"n": map[string]any{"type": "integer"}}}})

	t.Run("validation", func(t *testing.T) {
		e.t = t
		e.admin(400, "PUT", "/api/v1/automations/x", `{"trigger": {"event": "entity.created", "blueprint": "service"}, "invoke": {"type": "webhook", "url": "http://h/"}, "bogus": 1}`)
		e.admin(400, "PUT", "/api/v1/automations/x", `{"trigger": `)
		for name, spec := range map[string]map[string]any{
			"/trigger/event":     {"trigger": map[string]any{"event": "entity.exploded", "blueprint": "service"}, "invoke": webhook("http://h/")},
			"/trigger/blueprint": {"trigger": map[string]any{"event": "entity.created", "blueprint": "nope"}, "invoke": webhook("http://h/")},
			"/trigger/action":    {"trigger": map[string]any{"event": "run.finished"}, "invoke": webhook("http://h/")},
			"/trigger/direction": {"trigger": map[string]any{"event": "scorecard.level_changed", "blueprint": "service", "direction": "sideways"}, "invoke": webhook("http://h/")},
			"/trigger/schedule":  {"trigger": map[string]any{"schedule": "every tuesday"}, "invoke": webhook("http://h/")},
			"/condition":         {"trigger": map[string]any{"event": "entity.created", "blueprint": "service"}, "condition": ".entity | (", "invoke": webhook("http://h/")},
			"/invoke/url":        {"trigger": map[string]any{"event": "entity.created", "blueprint": "service"}, "invoke": webhook("ftp://h/")},
			"/invoke/type":       {"trigger": map[string]any{"event": "entity.created", "blueprint": "service"}, "invoke": map[string]any{"type": "email"}},
			"/invoke/action":     {"trigger": map[string]any{"event": "entity.created", "blueprint": "service"}, "invoke": map[string]any{"type": "action", "action": "missing"}},
		} {
			out := e.admin(422, "PUT", "/api/v1/automations/x", spec)
			if !strings.Contains(fmt.Sprint(out), name) {
				t.Errorf("%s: the 422 does not name it: %v", name, out)
			}
		}
		e.admin(404, "GET", "/api/v1/automations/x", nil)
		// A member may read, not define.
		e.admin(201, "PUT", "/api/v1/blueprints/_user/entities/bob@example.com", map[string]any{"properties": map[string]any{"name": "Bob", "role": "member"}})
		tok := e.admin(201, "POST", "/api/v1/tokens", map[string]any{"name": "t", "user": "bob@example.com"})["token"].(string)
		e.call(403, tok, "PUT", "/api/v1/automations/x", map[string]any{"trigger": map[string]any{"event": "entity.created", "blueprint": "service"}, "invoke": webhook("http://h/")})
		e.call(200, tok, "GET", "/api/v1/automations", nil)
	})

	t.Run("entity triggers and conditions", func(t *testing.T) {
		e.t = t
		e.putAutomation("prod-deploys", "/prod", map[string]any{
			"trigger":   map[string]any{"event": "entity.created", "blueprint": "deployment"},
			"condition": `.entity.properties.environment == "production"`,
			"invoke":    map[string]any{"type": "webhook", "url": e.hurl + "/prod", "body": `{deployment: .entity.identifier}`},
		})
		e.putAutomation("svc-any", "/any", map[string]any{"trigger": map[string]any{"event": "entity.any", "blueprint": "service"}, "invoke": webhook(e.hurl + "/any")})
		e.putAutomation("svc-updated", "/updated", map[string]any{"trigger": map[string]any{"event": "entity.updated", "blueprint": "service"}, "invoke": webhook(e.hurl + "/updated")})
		e.putAutomation("svc-deleted", "/deleted", map[string]any{"trigger": map[string]any{"event": "entity.deleted", "blueprint": "service"}, "invoke": webhook(e.hurl + "/deleted")})
		e.admin(201, "PUT", "/api/v1/blueprints/deployment/entities/d1", map[string]any{"properties": map[string]any{"environment": "production"}})
		e.admin(201, "PUT", "/api/v1/blueprints/deployment/entities/d2", map[string]any{"properties": map[string]any{"environment": "staging"}})
		e.admin(201, "PUT", "/api/v1/blueprints/service/entities/a", map[string]any{"properties": map[string]any{"tier": 1}})
		e.admin(200, "PUT", "/api/v1/blueprints/service/entities/a", map[string]any{"properties": map[string]any{"tier": 2}})
		e.admin(200, "DELETE", "/api/v1/blueprints/service/entities/a", nil)
		waitFor(t, "the deliveries", func() bool {
			p, _ := e.hook.count("/prod")
			a, _ := e.hook.count("/any")
			u, _ := e.hook.count("/updated")
			d, _ := e.hook.count("/deleted")
			return p == 1 && a == 3 && u == 1 && d == 1
		})
		e.hook.mu.Lock()
		if got := e.hook.bodies["/prod"][0]["deployment"]; got != "d1" {
			t.Errorf("prod webhook body: %v", e.hook.bodies["/prod"])
		}
		if e.hook.bad > 0 {
			t.Errorf("%d deliveries with a bad signature", e.hook.bad)
		}
		e.hook.mu.Unlock()
		waitFor(t, "the delivery record", func() bool {
			l := e.deliveries("prod-deploys")
			return len(l) == 1 && l[0].Status == automations.StatusSucceeded && l[0].Event.Identifier == "d1" && l[0].Event.Type == catalog.EventEntityCreated
		})
		if p, _ := e.hook.count("/prod"); p != 1 {
			t.Errorf("staging deployment fired the production automation: %d deliveries", p)
		}
	})

	t.Run("scorecard degraded starts an action run; run.finished fires", func(t *testing.T) {
		e.t = t
		e.admin(201, "PUT", "/api/v1/actions/incident-review", map[string]any{"blueprint": "service", "operation": "DAY-2",
			"userInputs": map[string]any{"properties": map[string]any{"reason": map[string]any{"type": "string"}}},
			"invocation": webhook(e.hurl + "/review")})
		e.putAutomation("review-on-degrade", "/none", map[string]any{
			"trigger": map[string]any{"event": "scorecard.level_changed", "blueprint": "service", "scorecard": "readiness", "direction": "degraded"},
			"invoke":  map[string]any{"type": "action", "action": "incident-review", "inputs": `{reason: ("readiness fell to " + .trigger.detail.to)}`},
		})
		e.putAutomation("review-finished", "/finished", map[string]any{"trigger": map[string]any{"event": "run.finished", "action": "incident-review"}, "invoke": webhook(e.hurl + "/finished")})
		e.putAutomation("review-created", "/created", map[string]any{"trigger": map[string]any{"event": "run.created", "action": "incident-review"}, "invoke": webhook(e.hurl + "/created")})
		e.admin(201, "PUT", "/api/v1/blueprints/service/entities/checkout", map[string]any{"properties": map[string]any{"tier": 1}})
		ctx := catalog.WithActor(e.ctx, catalog.SystemActor("scorecards"))
		for _, dir := range []string{"improved", "degraded"} {
			detail, _ := json.Marshal(catalog.ScorecardLevelChange{Scorecard: "readiness", From: "Gold", To: "Silver", Direction: dir})
			if err := e.p.catalog.Emit(ctx, catalog.Event{Type: catalog.EventScorecardLevelChanged, Blueprint: "service", Identifier: "checkout", Detail: detail}); err != nil {
				t.Fatal(err)
			}
		}
		var run string
		waitFor(t, "the review run", func() bool {
			l := e.deliveries("review-on-degrade")
			if len(l) == 1 && l[0].Status == automations.StatusSucceeded {
				run = l[0].Run
			}
			return run != ""
		})
		r := e.admin(200, "GET", "/api/v1/runs/"+run, nil)
		if r["triggeredBy"] != "automation:review-on-degrade" || r["entity"] != "checkout" || fmt.Sprint(r["inputs"]) != "map[reason:readiness fell to Silver]" {
			t.Errorf("run: %v", r)
		}
		waitFor(t, "run.created and run.finished deliveries", func() bool {
			c, _ := e.hook.count("/created")
			f, _ := e.hook.count("/finished")
			return c == 1 && f == 1
		})
	})

	t.Run("timer expiry deletes the entity", func(t *testing.T) {
		e.t = t
		e.putAutomation("expire-envs", "/none", map[string]any{"trigger": map[string]any{"event": "timer.expired", "blueprint": "service"}, "invoke": map[string]any{"type": "delete"}})
		e.admin(201, "PUT", "/api/v1/blueprints/service/entities/preview-1", map[string]any{"properties": map[string]any{"expiresAt": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)}})
		waitFor(t, "the expired entity to be deleted", func() bool {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/blueprints/service/entities/preview-1", nil)
			req.Header.Set("Authorization", "Bearer admin-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 404
		})
		evs, err := e.p.catalog.Events(catalog.WithActor(e.ctx, catalog.SystemActor("t")), "0", 100000, 0)
		if err != nil {
			t.Fatal(err)
		}
		var deleted *catalog.Event
		for i, ev := range evs {
			if ev.Type == catalog.EventEntityDeleted && ev.Identifier == "preview-1" {
				deleted = &evs[i]
			}
		}
		if deleted == nil || deleted.Actor != "automation:expire-envs" || deleted.Depth != 1 {
			t.Errorf("deletion event: %+v", deleted)
		}
		if l := e.deliveries("expire-envs"); len(l) != 1 || l[0].Event.Type != catalog.EventTimerExpired || l[0].Status != automations.StatusSucceeded {
			t.Errorf("deliveries: %+v", l)
		}
	})

	t.Run("schedule", func(t *testing.T) {
		e.t = t
		e.putAutomation("nightly", "/nightly", map[string]any{"trigger": map[string]any{"schedule": "0 3 * * *"}, "invoke": webhook(e.hurl + "/nightly")})
		h := e.eng.client.ScheduleClient().GetHandle(e.ctx, workflows.AutomationScheduleID("nightly"))
		if err := h.Trigger(e.ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the scheduled delivery", func() bool { n, _ := e.hook.count("/nightly"); return n == 1 })
		waitFor(t, "its record", func() bool {
			l := e.deliveries("nightly")
			return len(l) == 1 && l[0].Status == automations.StatusSucceeded && l[0].Event.Type == automations.EventSchedule
		})
		e.admin(204, "DELETE", "/api/v1/automations/nightly", nil)
		if _, err := h.Describe(e.ctx); err == nil {
			t.Error("the schedule outlived its automation")
		}
	})

	t.Run("failing webhook retries and records the error", func(t *testing.T) {
		e.t = t
		e.putAutomation("flaky", "/fail", map[string]any{"trigger": map[string]any{"event": "entity.created", "blueprint": "deployment"},
			"invoke": map[string]any{"type": "webhook", "url": e.hurl + "/fail", "retry": map[string]any{"maximumAttempts": 3, "initialInterval": "100ms"}}})
		e.admin(201, "PUT", "/api/v1/blueprints/deployment/entities/d3", map[string]any{"properties": map[string]any{"environment": "qa"}})
		var d automations.Delivery
		waitFor(t, "the failed delivery", func() bool {
			l := e.deliveries("flaky")
			if len(l) == 1 {
				d = l[0]
			}
			return d.Status == automations.StatusFailed
		})
		if !strings.Contains(d.Error, "answered 500") || d.Attempts != 3 || d.Event.Identifier != "d3" || d.EndedAt == nil {
			t.Errorf("delivery: %+v", d)
		}
		if keys, most := e.hook.count("/fail"); keys != 1 || most != 3 {
			t.Errorf("receiver saw %d keys, %d hits of one; want 1 key hit 3 times", keys, most)
		}
	})

	t.Run("a loop stops at the depth limit", func(t *testing.T) {
		e.t = t
		e.putAutomation("bump", "/none", map[string]any{"trigger": map[string]any{"event": "entity.updated", "blueprint": "counter"},
			"invoke": map[string]any{"type": "upsert", "entity": `{identifier: .entity.identifier, properties: {n: (.entity.properties.n + 1)}}`}})
		e.admin(201, "PUT", "/api/v1/blueprints/counter/entities/c", map[string]any{"properties": map[string]any{"n": 0}})
		e.admin(200, "PUT", "/api/v1/blueprints/counter/entities/c", map[string]any{"properties": map[string]any{"n": 1}})
		waitFor(t, "the depth limit", func() bool {
			for _, d := range e.deliveries("bump") {
				if d.Status == automations.StatusFailed && d.Error == automations.ErrDepthLimit && d.Event.Depth == automations.DepthLimit {
					return true
				}
			}
			return false
		})
		got := e.admin(200, "GET", "/api/v1/blueprints/counter/entities/c", nil)
		if n := got["properties"].(map[string]any)["n"]; n != float64(1+automations.DepthLimit) {
			t.Errorf("n = %v, want %d (one write per level of the chain)", n, 1+automations.DepthLimit)
		}
		if l := e.deliveries("bump"); len(l) != automations.DepthLimit+1 {
			t.Errorf("%d deliveries, want %d", len(l), automations.DepthLimit+1)
		}
	})
}

// TestAutomationsExactlyOnce runs three dispatchers at once over the same
// stream (the portal's and two more), kills one mid-stream, and replays
// the stream from an old position: each (automation, event) is still
// delivered once.
func TestAutomationsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	e := newAutoEnv(t)
	e.admin(201, "PUT", "/api/v1/blueprints/item", map[string]any{"schema": map[string]any{"properties": map[string]any{}}})
	e.putAutomation("a1", "/a1", map[string]any{"trigger": map[string]any{"event": "entity.created", "blueprint": "item"}, "invoke": webhook(e.hurl + "/a1")})
	e.putAutomation("a2", "/a2", map[string]any{"trigger": map[string]any{"event": "entity.any", "blueprint": "item"}, "invoke": webhook(e.hurl + "/a2")})
	_, start, err := e.p.catalog.EventBounds(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	dispatcher := func() *automations.Dispatcher {
		return &automations.Dispatcher{Store: e.p.automationStore, Catalog: e.p.catalog, Service: e.p.automations,
			Starter: workflows.NewAutomations(e.eng.client, ""), Batch: 7, Block: 100 * time.Millisecond}
	}
	run := func(ctx context.Context) chan struct{} {
		done := make(chan struct{})
		go func() { defer close(done); _ = dispatcher().Run(ctx) }()
		return done
	}
	ctx1, kill1 := context.WithCancel(e.ctx)
	defer kill1()
	done1 := run(ctx1)
	ctx2, stop2 := context.WithCancel(e.ctx)
	done2 := run(ctx2)
	const n = 60
	for i := range n {
		e.admin(201, "PUT", fmt.Sprintf("/api/v1/blueprints/item/entities/i%d", i), map[string]any{})
		if i == n/2 {
			kill1() // a dispatcher dies mid-stream
			<-done1
			run(e.ctx) // and another starts from the stored position
		}
	}
	waitFor(t, "every delivery", func() bool {
		a, _ := e.hook.count("/a1")
		b, _ := e.hook.count("/a2")
		return a == n && b == n
	})
	// A crash that lost the position: replay everything since the start.
	if err := e.p.automationStore.SetCursor(e.ctx, start); err != nil {
		t.Fatal(err)
	}
	replay, stopReplay := context.WithCancel(e.ctx)
	d := dispatcher()
	doneReplay := make(chan struct{})
	go func() { defer close(doneReplay); _ = d.Run(replay) }()
	_, newest, _ := e.p.catalog.EventBounds(e.ctx)
	waitFor(t, "the replay to reach the end", func() bool {
		c, _ := e.p.automationStore.Cursor(e.ctx)
		return !catalog.EventIDBefore(c, newest)
	})
	stopReplay()
	<-doneReplay
	stop2()
	<-done2
	for _, path := range []string{"/a1", "/a2"} {
		keys, most := e.hook.count(path)
		if keys != n || most != 1 {
			t.Errorf("%s: %d keys, at most %d hits per key; want %d keys hit once each", path, keys, most, n)
		}
	}
	for _, id := range []string{"a1", "a2"} {
		l := e.deliveries(id)
		ok := 0
		for _, d := range l {
			if d.Status == automations.StatusSucceeded {
				ok++
			}
		}
		if ok != n {
			t.Errorf("%s: %d succeeded deliveries recorded, want %d", id, ok, n)
		}
	}
}
