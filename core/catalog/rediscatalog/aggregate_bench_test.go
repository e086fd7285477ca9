package rediscatalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/internal/redistest"
)

// BenchmarkAggregate measures aggregates over 100,000 services on a real
// redis-server (`make bench-aggregate`): each sub-benchmark reports the
// p50 and p99 latency of its b.N runs (the target: grouped by $team
// ≤ 100 ms).
func BenchmarkAggregate(b *testing.B) {
	const n = 100_000
	ctx := catalog.WithActor(context.Background(), catalog.SystemActor("bench"))
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(b)})
	b.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	svc := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{Prefix: "bench"}), catalog.Options{})
	var bp catalog.Blueprint
	if err := json.Unmarshal([]byte(`{"identifier": "service", "schema": {"properties": {
	  "language": {"type": "string"}, "tier": {"type": "integer"}, "cost": {"type": "number"},
	  "deployedAt": {"type": "string", "format": "date-time"}}}}`), &bp); err != nil {
		b.Fatal(err)
	}
	if _, _, err := svc.PutBlueprint(ctx, &bp, false); err != nil {
		b.Fatal(err)
	}
	langs := []string{"go", "python", "java", "rust", "typescript"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for from := 0; from < n; from += 5000 {
		var items []catalog.WriteItem
		for i := from; i < from+5000; i++ {
			teams := []string{fmt.Sprintf("team-%02d", i%100)}
			if i%3 == 0 {
				teams = append(teams, fmt.Sprintf("team-%02d", (i/3)%100))
			}
			items = append(items, catalog.WriteItem{Entity: &catalog.Entity{
				Blueprint: "service", Identifier: fmt.Sprintf("svc-%06d", i), Team: teams,
				Properties: map[string]any{"language": langs[i%5], "tier": float64(i%4 + 1), "cost": float64(i % 997),
					"deployedAt": start.Add(time.Duration(i*631) * time.Second).Format(time.RFC3339)},
				Relations: map[string]any{},
			}})
		}
		res, err := svc.Write(ctx, items)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatalf("write %d: %v", r.Index, r.Err)
			}
		}
	}
	for _, sc := range []struct {
		name string
		q    catalog.AggregateQuery
	}{
		{"count-by-team", catalog.AggregateQuery{Func: "count", GroupBy: "$team"}},
		{"count-by-language", catalog.AggregateQuery{Func: "count", GroupBy: "language"}},
		{"avg-cost-by-team", catalog.AggregateQuery{Func: "avg", Property: "cost", GroupBy: "$team"}},
		{"weekly-count", catalog.AggregateQuery{Func: "count", Bucket: &catalog.AggregateBucket{Property: "deployedAt", Interval: "week"}}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t := time.Now()
				res, err := svc.Aggregate(ctx, sc.q)
				took = append(took, time.Since(t))
				if err != nil || len(res.Groups) == 0 {
					b.Fatalf("aggregate: %v, %d groups", err, len(res.Groups))
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}
