package integrations_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/internal/redistest"
)

// BenchmarkResync50k runs a full resync of 50,000 items through the example
// Wasm plugin, the mapping and reconciliation into a real redis-server,
// then a second resync with nothing changed. Run with -benchtime=1x.
//
// Reported: items/s of the first resync, items/s of the unchanged one, and
// unchanged/first, the ratio of their durations (target < 0.5).
func BenchmarkResync50k(b *testing.B) {
	for _, mode := range []struct {
		name            string
		uninterruptible bool
	}{{"checked", false}, {"uninterruptible", true}} {
		b.Run(mode.name, func(b *testing.B) { benchmarkResync(b, mode.uninterruptible) })
	}
}

func benchmarkResync(b *testing.B, uninterruptible bool) {
	const n = 50_000
	addr := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	b.Cleanup(func() { rdb.Close() })
	api := newStandIn(b, n)
	ctx := context.Background()
	var first, second time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		p := newPortal(b, rdb, integrations.Options{})
		if r := p.publish(examplePkg); r.status != 201 {
			b.Fatalf("publish: %d %s", r.status, r.body)
		}
		id := fmt.Sprintf("bench%d", i)
		p.install(id, "example", api, map[string]any{
			"config": map[string]any{"baseUrl": api.URL, "pageSize": 1000},
			"limits": map[string]any{"memoryMiB": 256, "timeoutMs": 60000, "uninterruptible": uninterruptible},
		})
		b.StartTimer()

		start := time.Now()
		s, err := p.mgr.Resync(ctx, id)
		first += time.Since(start)
		if err != nil || s.Status != integrations.SyncSucceeded || s.Upserts != n {
			b.Fatalf("first resync: %v %+v", err, s)
		}

		start = time.Now()
		s, err = p.mgr.Resync(ctx, id)
		second += time.Since(start)
		if err != nil || s.Status != integrations.SyncSucceeded || s.Upserts != 0 || s.Unchanged != n || s.Deletes != 0 {
			b.Fatalf("unchanged resync: %v %+v", err, s)
		}
	}
	b.ReportMetric(float64(n*b.N)/first.Seconds(), "items/s")
	b.ReportMetric(float64(n*b.N)/second.Seconds(), "unchanged-items/s")
	b.ReportMetric(second.Seconds()/first.Seconds(), "unchanged/first")
}
