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

// BenchmarkRuns measures, against `portico dev` with its embedded
// Temporal server, the latency of POST /actions/{id}/runs (→ 202) and the
// sustained throughput of a 1-step webhook action, from the first trigger
// until every run is SUCCESS. Run it with
//
//	go test ./integration-tests -run '^$' -bench BenchmarkRuns -benchtime 500x
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

	const workers = 8
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				code, raw := p.call("POST", "/api/v1/actions/ping/runs", map[string]any{"entity": "checkout"})
				lat[i] = time.Since(t0)
				if code != 202 {
					b.Errorf("trigger: %d %s", code, raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	triggered := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if delivered.Load() >= int64(b.N) && countSuccess(p) >= b.N {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/triggered.Seconds(), "triggers/s")
	b.ReportMetric(float64(b.N)/total.Seconds(), "runs/s")
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
		if page.Next == nil {
			return n
		}
		cursor = *page.Next
	}
}
