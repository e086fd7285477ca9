package integrationtests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRuns measures action runs against `portico dev` with its
// embedded Temporal server, for a 1-step webhook action:
//
//   - paced: runs triggered at a steady 50/s (open loop, as users and
//     automations do), reporting the latency of POST /actions/{id}/runs
//     (→ 202) and the completion rate from the first trigger until every
//     run is SUCCESS: runs/s ≥ 50 means the portal keeps up;
//   - saturated: 8 clients triggering back to back, the most the machine
//     sustains.
//
// Run it with
//
//	go test ./integration-tests -run '^$' -bench BenchmarkRuns -benchtime 1500x
func BenchmarkRuns(b *testing.B) {
	var delivered atomic.Int64
	hooks := httptest.NewServer(countHandler(&delivered))
	defer hooks.Close()
	addr := freeAddr(b)
	p := start(b, addr, "dev", "--data-dir", b.TempDir(), "--rate-limit", "0")
	p.must("PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{}}, 201)
	p.must("PUT", "/api/v1/blueprints/service/entities/checkout", map[string]any{}, 201)
	p.must("PUT", "/api/v1/actions/ping", map[string]any{"blueprint": "service", "operation": "DAY-2",
		"invocation": map[string]any{"type": "webhook", "url": hooks.URL}}, 201)
	trigger := func() time.Duration {
		t0 := time.Now()
		code, raw := p.call("POST", "/api/v1/actions/ping/runs", map[string]any{"entity": "checkout"})
		if code != 202 {
			b.Errorf("trigger: %d %s", code, raw)
		}
		return time.Since(t0)
	}

	b.Run("paced-50/s", func(b *testing.B) {
		const rate = 50
		lat := make([]time.Duration, b.N)
		before := delivered.Load()
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			<-tick.C
			wg.Add(1)
			go func() { defer wg.Done(); lat[i] = trigger() }()
		}
		wg.Wait()
		finish(b, lat, time.Since(start), waitRuns(b, p, &delivered, before+int64(b.N), start))
	})

	b.Run("saturated-8", func(b *testing.B) {
		const clients = 8
		lat := make([]time.Duration, b.N)
		before := delivered.Load()
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for w := 0; w < clients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
					lat[i] = trigger()
				}
			}()
		}
		wg.Wait()
		finish(b, lat, time.Since(start), waitRuns(b, p, &delivered, before+int64(b.N), start))
	})
}

// waitRuns waits until want webhooks were delivered and as many runs are
// listed SUCCESS, and returns the time since start.
func waitRuns(b *testing.B, p *proc, delivered *atomic.Int64, want int64, start time.Time) time.Duration {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for delivered.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d webhooks delivered after 5 minutes", delivered.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The final record is written right after the delivery; the list is
	// costly, so it is polled only now.
	for countSuccess(p) < int(want) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d runs SUCCESS after 5 minutes", countSuccess(p), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// finish reports trigger latencies, the trigger rate and the completion
// rate of b.N runs triggered in triggered and finished in total.
func finish(b *testing.B, lat []time.Duration, triggered, total time.Duration) {
	b.StopTimer()
	reportLatency(b, lat)
	b.ReportMetric(float64(b.N)/triggered.Seconds(), "triggers/s")
	b.ReportMetric(float64(b.N)/total.Seconds(), "runs/s")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func countHandler(n *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{}`))
	}
}

// countSuccess counts successful runs, following the list's cursor.
func countSuccess(p *proc) int {
	n, cursor := 0, ""
	for {
		var page struct {
			Runs []json.RawMessage
			Next *string
		}
		_ = json.Unmarshal(p.must("GET", "/api/v1/runs?status=SUCCESS&limit=500&cursor="+cursor, nil, 200), &page)
		n += len(page.Runs)
		if page.Next == nil || *page.Next == "" {
			return n
		}
		cursor = *page.Next
	}
}
