package integrationtests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/redistest"
)

// receiver is a webhook receiver that deduplicates by idempotency key, as
// a real one would: it applies the first delivery of a key and counts the
// rest. Deliveries to paths in slow are answered after a delay, so a test
// can kill Portico while they are in flight.
type receiver struct {
	mu         sync.Mutex
	deliveries map[string]int    // idempotency key → deliveries
	firstEpoch map[string]int    // idempotency key → epoch of its first delivery
	bodies     map[string][]byte // idempotency key → applied body
	unsigned   int
	epoch      int // bumped by the test before each restart
	slow       map[string]time.Duration

	lastArrival time.Time
}

// settle waits until no delivery has arrived for quiet: after a kill,
// requests the process sent before it died may still be on their way, and
// must count in the epoch before the restart.
func (r *receiver) settle(quiet time.Duration) {
	for {
		r.mu.Lock()
		idle := time.Since(r.lastArrival)
		r.mu.Unlock()
		if idle >= quiet {
			return
		}
		time.Sleep(quiet - idle)
	}
}

func newReceiver() *receiver {
	return &receiver{deliveries: map[string]int{}, firstEpoch: map[string]int{}, bodies: map[string][]byte{}, slow: map[string]time.Duration{}}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body json.RawMessage
	_ = json.NewDecoder(req.Body).Decode(&body)
	key := req.Header.Get("Idempotency-Key")
	r.mu.Lock()
	if r.deliveries[key] == 0 {
		r.firstEpoch[key] = r.epoch
		r.bodies[key] = body
	}
	r.deliveries[key]++
	if req.Header.Get("X-Portico-Signature") == "" || req.Header.Get("X-Portico-Timestamp") == "" {
		r.unsigned++
	}
	delay := r.slow[req.URL.Path]
	r.lastArrival = time.Now()
	r.mu.Unlock()
	time.Sleep(delay)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// count returns how many distinct keys with prefix suffix were delivered.
func (r *receiver) count(suffix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k := range r.deliveries {
		if strings.HasSuffix(k, suffix) {
			n++
		}
	}
	return n
}

func (r *receiver) nextEpoch() {
	r.mu.Lock()
	r.epoch++
	r.mu.Unlock()
}

// deployment runs Portico in a topology whose workflow-running process
// a test can kill and restart.
type deployment struct {
	name string
	// api is the process serving HTTP now.
	api func() *proc
	// kill sends SIGKILL to the process that runs workflows (in dev, the
	// whole portal).
	kill func()
	// restart starts it again on the same state and waits until it is
	// ready.
	restart func()
}

// devDeployment is `portico dev`: API, worker, embedded Temporal and
// embedded Redis in one process, killed as a whole.
func devDeployment(t *testing.T) *deployment {
	dir, addr := t.TempDir(), freeAddr(t)
	var p *proc
	up := func() {
		p = start(t, addr, "dev", "--data-dir", dir)
		waitReady(t, p)
	}
	up()
	return &deployment{name: "dev", api: func() *proc { return p }, kill: func() { p.stop(syscall.SIGKILL) }, restart: up}
}

// splitDeployment is `portico serve` + `portico worker` + an external
// Temporal server (`portico temporal`) on a real redis-server; only the
// worker is killed.
func splitDeployment(t *testing.T) *deployment {
	redisURL := "redis://" + redistest.Start(t) + "/7"
	taddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(taddr)
	temporal := spawn(t, "temporal", "--data-dir", t.TempDir(), "--port", port)
	temporal.waitLog("temporal server running", time.Minute)
	api := start(t, freeAddr(t), "serve", "--redis-url", redisURL, "--temporal-address", taddr)
	waitReady(t, api)
	var w *proc
	up := func() {
		w = spawn(t, "worker", "--redis-url", redisURL, "--temporal-address", taddr)
		w.waitLog("portico worker running", 30*time.Second)
	}
	up()
	return &deployment{name: "serve+worker", api: func() *proc { return api }, kill: func() { w.stop(syscall.SIGKILL) }, restart: up}
}

func waitReady(t *testing.T, p *proc) {
	t.Helper()
	waitFor(t, "readyz", 60*time.Second, func() bool { c, _ := p.call("GET", "/readyz", nil); return c == 200 })
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// runView is what the test reads of a run.
type runView struct {
	ID     string
	Status string
	Inputs map[string]any
	Steps  []struct {
		ID, Status string
		Attempts   int
	}
	Logs []struct{ Message string }
}

func getRuns(p *proc, ids []string) map[string]runView {
	out := map[string]runView{}
	for _, id := range ids {
		code, raw := p.call("GET", "/api/v1/runs/"+id, nil)
		if code != 200 {
			continue
		}
		var r runView
		if json.Unmarshal(raw, &r) == nil {
			out[id] = r
		}
	}
	return out
}

// all reports whether every one of n runs satisfies ok.
func all(runs map[string]runView, n int, ok func(runView) bool) bool {
	if len(runs) != n {
		return false
	}
	for _, r := range runs {
		if !ok(r) {
			return false
		}
	}
	return true
}

func stepStatus(r runView, id string) string {
	for _, s := range r.Steps {
		if s.ID == id {
			return s.Status
		}
	}
	return ""
}

// TestActionRunsSurviveKill9 runs the restart scenario in both
// topologies: `portico dev` killed as a whole, and `serve` + `worker` +
// an external Temporal server with only the worker killed.
func TestActionRunsSurviveKill9(t *testing.T) {
	for _, tc := range []struct {
		name   string
		deploy func(*testing.T) *deployment
	}{
		{"dev", devDeployment},
		{"serve+worker", splitDeployment},
	} {
		// The topologies share nothing (processes, ports, data), and the
		// scenario mostly waits on timers and restarts: run them side by side.
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); restartScenario(t, tc.deploy) })
	}
}

// restartScenario triggers 20 runs of an action that needs one approval
// and then runs a 3-step composed workflow (webhook, 5 s sleep, slow
// webhook). It kills the workflow process with SIGKILL while the runs
// wait for approval, while they sleep, and while the second webhooks are
// in flight, restarting it on the same state each time. Every run must
// end SUCCESS with each step run once (one start and one success in its
// log), each webhook applied once per idempotency key, a second delivery
// only for a webhook in flight at a kill, and a TTL timer that came due
// while the process was down must fire after the restart.
func restartScenario(t *testing.T, deploy func(*testing.T) *deployment) {
	const runs = 20
	rcv := newReceiver()
	rcv.slow["/deploy"] = 1500 * time.Millisecond
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	d := deploy(t)
	p := d.api()

	p.must("PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"tier": map[string]any{"type": "integer"}}}}, 201)
	p.must("PUT", "/api/v1/blueprints/env", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"expiresAt": map[string]any{"type": "string", "format": "timer"}}}}, 201)
	p.must("PUT", "/api/v1/blueprints/service/entities/checkout", map[string]any{"properties": map[string]any{"tier": 1}}, 201)
	p.must("PUT", "/api/v1/blueprints/_user/entities/bob@example.com", map[string]any{"properties": map[string]any{"name": "Bob", "role": "member"}, "relations": map[string]any{"teams": []string{}}}, 201)
	var tok struct{ Token string }
	_ = json.Unmarshal(p.must("POST", "/api/v1/tokens", map[string]any{"name": "bob", "user": "bob@example.com", "scopes": []string{"read", "approve"}}, 201), &tok)

	p.must("PUT", "/api/v1/workflows/ship", map[string]any{"steps": []any{
		map[string]any{"id": "announce", "type": "webhook", "url": hooks.URL + "/announce"},
		map[string]any{"id": "pause", "type": "sleep", "duration": "5s"},
		map[string]any{"id": "deploy", "type": "webhook", "url": hooks.URL + "/deploy", "timeout": "8s",
			"body": "{version: .inputs.version, announced: .steps.announce.status}"},
	}}, 201)
	p.must("PUT", "/api/v1/actions/deploy", map[string]any{"blueprint": "service", "operation": "DAY-2",
		"userInputs": map[string]any{"properties": map[string]any{"version": map[string]any{"type": "string"}}, "required": []string{"version"}},
		"invocation": map[string]any{"type": "workflow", "workflow": "ship"},
		"approval":   map[string]any{"count": 1, "approvers": map[string]any{"roles": []string{"member"}}, "timeout": "72h"}}, 201)

	var ids []string
	for i := 0; i < runs; i++ {
		var r struct{ ID, Status string }
		_ = json.Unmarshal(p.must("POST", "/api/v1/actions/deploy/runs", map[string]any{"entity": "checkout", "inputs": map[string]any{"version": fmt.Sprint(i)}}, 202), &r)
		if r.Status != "WAITING_FOR_APPROVAL" {
			t.Fatalf("run %s: %s", r.ID, r.Status)
		}
		ids = append(ids, r.ID)
	}
	// A TTL timer due in 3 s, while the process will be down.
	p.must("PUT", "/api/v1/blueprints/env/entities/pr-1", map[string]any{"properties": map[string]any{"expiresAt": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)}}, 201)
	waitFor(t, "runs waiting", 20*time.Second, func() bool {
		return all(getRuns(p, ids), runs, func(r runView) bool { return stepStatus(r, "approval") == "WAITING_FOR_APPROVAL" })
	})
	time.Sleep(time.Second) // let the scheduler arm the timer

	// Kill 1: while the runs wait for approval and before the timer is due.
	d.kill()
	time.Sleep(4 * time.Second)
	rcv.nextEpoch()
	d.restart()
	p = d.api()
	waitFor(t, "timer.expired after restart", 90*time.Second, func() bool {
		_, raw := p.call("GET", "/api/v1/blueprints/env/entities/pr-1/history", nil)
		return strings.Contains(string(raw), "timer.expired")
	})
	for _, id := range ids {
		waitFor(t, "approval of "+id, 90*time.Second, func() bool {
			req, _ := http.NewRequest("POST", p.base+"/api/v1/runs/"+id+"/approval", strings.NewReader(`{"decision":"approve","comment":"ok"}`))
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 202
		})
	}

	// Kill 2: while every run sleeps between its webhooks.
	waitFor(t, "runs sleeping", 90*time.Second, func() bool {
		return all(getRuns(p, ids), runs, func(r runView) bool { return stepStatus(r, "pause") == "IN_PROGRESS" })
	})
	d.kill()
	rcv.nextEpoch()
	d.restart()
	p = d.api()

	// Kill 3: while deploy webhooks are in flight (the receiver holds
	// each for 1.5 s).
	waitFor(t, "a deploy webhook in flight", 60*time.Second, func() bool { return rcv.count(":deploy") > 0 })
	d.kill()
	rcv.settle(time.Second) // requests already sent still arrive
	rcv.nextEpoch()
	d.restart()
	p = d.api()

	waitFor(t, "all runs SUCCESS", 120*time.Second, func() bool {
		return all(getRuns(p, ids), runs, func(r runView) bool { return r.Status == "SUCCESS" })
	})

	final := getRuns(p, ids)
	wantLog := []string{
		"waiting for 1 approval(s)", "approved by bob@example.com (1/1)",
		"step announce (webhook) started", "step announce succeeded",
		"step pause (sleep) started", "step pause succeeded",
		"step deploy (webhook) started", "step deploy succeeded",
		"run finished: SUCCESS",
	}
	for i, id := range ids {
		r := final[id]
		for _, want := range wantLog {
			n := 0
			for _, l := range r.Logs {
				if l.Message == want {
					n++
				}
			}
			if n != 1 {
				t.Errorf("run %s: log line %q appears %d times, want once", id, want, n)
			}
		}
		for _, step := range []string{"approval", "announce", "pause", "deploy"} {
			if s := stepStatus(r, step); s != "SUCCESS" {
				t.Errorf("run %s: step %s is %s", id, step, s)
			}
		}
		rcv.mu.Lock()
		var body struct{ Version, Announced string }
		_ = json.Unmarshal(rcv.bodies[id+":deploy"], &body)
		rcv.mu.Unlock()
		if body.Version != fmt.Sprint(i) || body.Announced != "SUCCESS" {
			t.Errorf("run %s: deploy body %+v, want version %d announced SUCCESS", id, body, i)
		}
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var keys, retried []string
	for k := range rcv.deliveries {
		keys = append(keys, k)
	}
	for _, id := range ids {
		for _, step := range []string{"announce", "deploy"} {
			key := id + ":" + step
			n := rcv.deliveries[key]
			switch {
			case n == 0:
				t.Errorf("%s never delivered", key)
			case n == 1:
			case n == 2 && rcv.firstEpoch[key] < rcv.epoch:
				retried = append(retried, key) // in flight when its process was killed
			default:
				t.Errorf("%s delivered %d times (first in epoch %d of %d): only a webhook in flight at a kill may be delivered twice", key, n, rcv.firstEpoch[key], rcv.epoch)
			}
		}
	}
	if len(keys) != 2*runs {
		slices.Sort(keys)
		t.Errorf("%d idempotency keys delivered, want %d: %v", len(keys), 2*runs, keys)
	}
	if rcv.unsigned > 0 {
		t.Errorf("%d deliveries without signature headers", rcv.unsigned)
	}
	t.Logf("%s: %d runs SUCCESS; %d webhook(s) in flight at a kill were delivered again and deduplicated by key", d.name, runs, len(retried))

	var list struct{ Runs []any }
	_ = json.Unmarshal(p.must("GET", "/api/v1/runs?action=deploy&status=SUCCESS", nil, 200), &list)
	if len(list.Runs) != runs {
		t.Fatalf("%d successful runs listed, want %d", len(list.Runs), runs)
	}
}

// TestTimersExtendAndCancel: in `portico dev`, three environments expire
// in 20 s. One is extended by a day through a DAY-2 "update" action, one is
// deleted, one is left alone: only the last expires, exactly once, and
// its expiry action runs once.
func TestTimersExtendAndCancel(t *testing.T) {
	rcv := newReceiver()
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	p := devDeployment(t).api()

	p.must("PUT", "/api/v1/blueprints/env", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"expiresAt": map[string]any{"type": "string", "format": "timer", "expiryAction": "destroy"}}}}, 201)
	p.must("PUT", "/api/v1/actions/destroy", map[string]any{"blueprint": "env", "operation": "DELETE",
		"invocation": map[string]any{"type": "webhook", "url": hooks.URL + "/destroy"}}, 201)
	p.must("PUT", "/api/v1/actions/extend-ttl", map[string]any{"blueprint": "env", "operation": "DAY-2",
		"userInputs": map[string]any{"properties": map[string]any{"days": map[string]any{"type": "integer", "minimum": 1, "maximum": 30}}, "required": []string{"days"}},
		"invocation": map[string]any{"type": "update",
			"patch": "{properties: {expiresAt: ((.entity.properties.expiresAt | fromdate) + .inputs.days * 86400 | todate)}}"}}, 201)
	// Due late enough that the extension and the deletion below are done
	// before it on a loaded machine.
	due := time.Now().Add(20 * time.Second).UTC().Truncate(time.Second)
	for _, id := range []string{"pr-1", "pr-2", "pr-3"} {
		p.must("PUT", "/api/v1/blueprints/env/entities/"+id, map[string]any{"properties": map[string]any{"expiresAt": due.Format(time.RFC3339)}}, 201)
	}

	var run struct{ ID string }
	_ = json.Unmarshal(p.must("POST", "/api/v1/actions/extend-ttl/runs", map[string]any{"entity": "pr-1", "inputs": map[string]any{"days": 1}}, 202), &run)
	var done struct {
		Status   string
		Affected []struct{ Blueprint, Identifier, Change string }
	}
	waitFor(t, "extend-ttl run", 20*time.Second, func() bool {
		_ = json.Unmarshal(p.must("GET", "/api/v1/runs/"+run.ID, nil, 200), &done)
		return done.Status == "SUCCESS" || done.Status == "FAILURE"
	})
	if done.Status != "SUCCESS" || len(done.Affected) != 1 || done.Affected[0].Identifier != "pr-1" {
		t.Fatalf("extend-ttl run: %+v", done)
	}
	var pr1 struct {
		Properties struct{ ExpiresAt string }
		UpdatedBy  string
	}
	_ = json.Unmarshal(p.must("GET", "/api/v1/blueprints/env/entities/pr-1", nil, 200), &pr1)
	if want := due.Add(24 * time.Hour).Format(time.RFC3339); pr1.Properties.ExpiresAt != want {
		t.Fatalf("pr-1 expires at %s, want %s", pr1.Properties.ExpiresAt, want)
	}
	p.must("DELETE", "/api/v1/blueprints/env/entities/pr-2", nil, 200)

	if time.Now().After(due) {
		t.Fatalf("the extension and the deletion ended after the timers were due (%s)", due)
	}
	waitFor(t, "pr-3's expiry action", 60*time.Second, func() bool { return rcv.count(":webhook") > 0 })
	time.Sleep(3 * time.Second) // anything else due would have fired by now
	expired := func(id string) int {
		_, raw := p.call("GET", "/api/v1/blueprints/env/entities/"+id+"/history", nil)
		return strings.Count(string(raw), `"timer.expired"`)
	}
	if n := expired("pr-3"); n != 1 {
		t.Errorf("pr-3: %d timer.expired events, want 1", n)
	}
	if n := expired("pr-1"); n != 0 {
		t.Errorf("pr-1 was extended but expired %d times", n)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.deliveries) != 1 {
		t.Fatalf("expiry deliveries %v, want one (pr-3)", rcv.deliveries)
	}
	for key, body := range rcv.bodies {
		var b struct {
			Run struct{ Entity, Action string }
		}
		_ = json.Unmarshal(body, &b)
		if b.Run.Entity != "pr-3" || b.Run.Action != "destroy" || rcv.deliveries[key] != 1 {
			t.Fatalf("expiry delivery %s: %s (%d times)", key, body, rcv.deliveries[key])
		}
	}
}
