package integrationtests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// BenchmarkPending loads `portico dev` with 10,000 runs waiting for an
// approval and 10,000 armed TTL timers, and measures GET /runs/{id}
// while they are being created and once they all wait. It counts the
// running workflows of each type in the embedded Temporal server, so
// "armed" means a timer workflow exists, not just an accepted request.
// Run it with
//
//	go test ./integration-tests -run '^$' -bench BenchmarkPending -benchtime 1x -timeout 30m
func BenchmarkPending(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("PORTICO_BENCH_PENDING")); err == nil && v > 0 {
		n = v
	}
	taddr := freeAddr(b)
	_, tport, _ := net.SplitHostPort(taddr)
	p := start(b, freeAddr(b), "dev", "--data-dir", b.TempDir(), "--rate-limit", "0", "--temporal-port", tport, "--pprof-addr", os.Getenv("PORTICO_BENCH_PPROF"))
	tc, err := client.Dial(client.Options{HostPort: taddr, Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		b.Fatalf("dial embedded temporal: %v", err)
	}
	defer tc.Close()
	running := func(workflowType string) int64 {
		res, err := tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflowType)})
		if err != nil {
			b.Fatalf("count %s workflows: %v", workflowType, err)
		}
		return res.GetCount()
	}

	p.must("PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{}}, 201)
	p.must("PUT", "/api/v1/blueprints/service/entities/checkout", map[string]any{}, 201)
	p.must("PUT", "/api/v1/blueprints/env", map[string]any{"schema": map[string]any{"properties": map[string]any{
		"expiresAt": map[string]any{"type": "string", "format": "timer"}}}}, 201)
	p.must("PUT", "/api/v1/actions/deploy", map[string]any{"blueprint": "service", "operation": "DAY-2",
		"invocation": map[string]any{"type": "webhook", "url": "http://127.0.0.1:9/never"},
		"approval":   map[string]any{"count": 1, "approvers": map[string]any{"roles": []string{"member"}}, "timeout": "720h"}}, 201)

	b.ResetTimer()
	t0 := time.Now()
	// Timers: n environments expiring in 30 days, in bulks of 2,000.
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for i := 0; i < n; i += 2000 {
		var items []string
		for j := i; j < min(i+2000, n); j++ {
			items = append(items, fmt.Sprintf(`{"blueprint":"env","identifier":"pr-%d","properties":{"expiresAt":%q}}`, j, expires))
		}
		p.must("POST", "/api/v1/entities/bulk", json.RawMessage(`{"entities":[`+strings.Join(items, ",")+`]}`), 200)
	}

	// Runs: n triggers from 8 clients, while a reader samples GET
	// /runs/{id} of runs already triggered.
	ids := make([]string, n)
	var triggered atomic.Int64
	var loaded []time.Duration
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if k := triggered.Load(); k > 0 {
				loaded = append(loaded, getRun(b, p, ids[rand.IntN(int(k))]))
			}
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				var r struct{ ID string }
				code, raw := p.call("POST", "/api/v1/actions/deploy/runs", map[string]any{"entity": "checkout"})
				if code != 202 || json.Unmarshal(raw, &r) != nil {
					b.Errorf("trigger: %d %s", code, raw)
					return
				}
				mu.Lock()
				ids[i] = r.ID
				mu.Unlock()
				triggered.Add(1)
			}
		}()
	}
	wg.Wait()
	triggerTime := time.Since(t0)
	deadline := time.Now().Add(20 * time.Minute)
	for running("ActionRun") < int64(n) || running("Timer") < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("after 20 minutes: %d runs, %d timers running", running("ActionRun"), running("Timer"))
		}
		time.Sleep(time.Second)
	}
	close(stop)
	readers.Wait()
	allWaiting := time.Since(t0)

	// Steady state: 4 readers, 5,000 reads of random runs.
	steady := make([]time.Duration, 5000)
	next.Store(0)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(steady)); i = next.Add(1) - 1 {
				steady[i] = getRun(b, p, ids[rand.IntN(n)])
			}
		}()
	}
	wg.Wait()
	b.StopTimer()

	var waiting struct{ Runs []any }
	_ = json.Unmarshal(p.must("GET", "/api/v1/runs?status=WAITING_FOR_APPROVAL&limit=1", nil, 200), &waiting)
	if len(waiting.Runs) != 1 {
		b.Fatalf("no run listed as WAITING_FOR_APPROVAL")
	}
	b.ReportMetric(float64(running("ActionRun")), "pending-runs")
	b.ReportMetric(float64(running("Timer")), "armed-timers")
	b.ReportMetric(triggerTime.Seconds(), "trigger-s")
	b.ReportMetric(allWaiting.Seconds(), "all-armed-s")
	reportQuantiles(b, "loading", loaded)
	reportQuantiles(b, "steady", steady)
	b.ReportMetric(float64(rssKiB(p.cmd.Process.Pid))/1024, "rss-MiB")
}

func getRun(b *testing.B, p *proc, id string) time.Duration {
	t0 := time.Now()
	code, raw := p.call("GET", "/api/v1/runs/"+id, nil)
	d := time.Since(t0)
	if code != 200 {
		b.Errorf("GET run %s: %d %s", id, code, raw)
	}
	return d
}

func reportQuantiles(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(s[len(s)*99/100].Microseconds())/1000, name+"-p99-ms")
}

// rssKiB is a process's resident set size (VmRSS).
func rssKiB(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}
