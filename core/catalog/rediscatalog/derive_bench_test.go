package rediscatalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/internal/redistest"
)

// BenchmarkAggregationPropertyFanIn: one service with 100,000 incidents
// pointing at it; each op changes one incident and recomputes until the
// service's openIncidents is right. It reports the time from the
// incident's write to the recomputed value (the worker's polling left out).
func BenchmarkAggregationPropertyFanIn(b *testing.B) {
	const n = 100_000
	ctx := catalog.WithActor(context.Background(), catalog.SystemActor("bench"))
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(b)})
	b.Cleanup(func() { _ = rdb.Close() })
	svc := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{Prefix: fmt.Sprintf("fanin%d", time.Now().UnixNano())}), catalog.Options{})
	for _, js := range []string{
		`{"identifier": "service"}`,
		`{"identifier": "incident", "schema": {"properties": {"status": {"type": "string"}, "minutes": {"type": "number"}}}, "relations": {"service": {"target": "service"}}}`,
		`{"identifier": "service", "aggregationProperties": {"openIncidents": {"target": "incident", "relation": "service", "func": "count",
		  "query": {"combinator": "and", "rules": [{"property": "status", "operator": "=", "value": "open"}]}}}}`,
	} {
		var bp catalog.Blueprint
		if err := json.Unmarshal([]byte(js), &bp); err != nil {
			b.Fatal(err)
		}
		if _, _, err := svc.PutBlueprint(ctx, &bp, false); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, err := svc.PutEntity(ctx, &catalog.Entity{Blueprint: "service", Identifier: "checkout", Properties: map[string]any{}, Relations: map[string]any{}}, true); err != nil {
		b.Fatal(err)
	}
	for from := 0; from < n; from += 5000 {
		var items []catalog.WriteItem
		for i := from; i < from+5000; i++ {
			items = append(items, catalog.WriteItem{Entity: &catalog.Entity{Blueprint: "incident", Identifier: fmt.Sprintf("inc-%06d", i),
				Properties: map[string]any{"status": "resolved", "minutes": float64(i % 90)}, Relations: map[string]any{"service": "checkout"}}})
		}
		if _, err := svc.Write(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	settle := func() {
		for {
			n, err := svc.RunDeriveOnce(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	settle()
	var lat []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		status := []string{"open", "resolved"}[i%2]
		start := time.Now()
		if _, _, err := svc.PutEntity(ctx, &catalog.Entity{Blueprint: "incident", Identifier: "inc-000007",
			Properties: map[string]any{"status": status, "minutes": 7.0}, Relations: map[string]any{"service": "checkout"}}, false); err != nil {
			b.Fatal(err)
		}
		settle()
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		e, err := svc.GetEntity(ctx, catalog.Ref{Blueprint: "service", Identifier: "checkout"})
		if err != nil {
			b.Fatal(err)
		}
		if want := float64(1 - i%2); e.Properties["openIncidents"] != want {
			b.Fatalf("openIncidents %v, want %v", e.Properties["openIncidents"], want)
		}
	}
	b.StopTimer()
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
}
