package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/internal/redistest"
)

// BenchmarkBulkIngest posts 1,000-entity bulk requests (~1 KB entities, 10
// indexed properties, 2 relations) through the HTTP handler into a real
// redis-server; it reports entities/s. Profile the server side with
// -cpuprofile.
func BenchmarkBulkIngest(b *testing.B) { benchBulkIngest(b, false) }

// BenchmarkBulkIngestAsAdmin is BenchmarkBulkIngest through the access
// layer (authorization, read checks, audit) as the bootstrap admin.
func BenchmarkBulkIngestAsAdmin(b *testing.B) { benchBulkIngest(b, true) }

func benchBulkIngest(b *testing.B, withAccess bool) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(b), PoolSize: 16})
	defer rdb.Close()
	prefix := fmt.Sprintf("bench%d", b.N)
	var catOpts catalog.Options
	if withAccess {
		catOpts.Authorizer = access.Authorizer{}
	}
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{Prefix: prefix}), catOpts)
	cfg := api.Config{Catalog: cat, Auth: api.AdminToken("T")}
	if withAccess {
		acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{Prefix: prefix}), access.Options{AdminToken: "T"})
		if err := acc.Bootstrap(context.Background()); err != nil {
			b.Fatal(err)
		}
		cfg = api.Config{Catalog: cat, Access: acc}
	}
	h := api.New(cfg)
	do := func(method, path string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer T")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	mustJSON := func(v any) []byte { raw, _ := json.Marshal(v); return raw }
	if rec := do("PUT", "/api/v1/blueprints/team", mustJSON(map[string]any{"schema": map[string]any{}})); rec.Code >= 300 {
		b.Fatal(rec.Body.String())
	}
	props := map[string]any{}
	for _, p := range []string{"language", "environment", "repo", "oncall", "lifecycle", "description"} {
		props[p] = map[string]any{"type": "string"}
	}
	for _, p := range []string{"tier", "replicas", "cost"} {
		props[p] = map[string]any{"type": "number"}
	}
	props["public"] = map[string]any{"type": "boolean"}
	props["tags"] = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	if rec := do("PUT", "/api/v1/blueprints/service", mustJSON(map[string]any{"schema": map[string]any{"properties": props},
		"relations": map[string]any{"owner": map[string]any{"target": "team"}, "dependsOn": map[string]any{"target": "service", "many": true}}})); rec.Code >= 300 {
		b.Fatal(rec.Body.String())
	}
	var teams []any
	for i := 0; i < 100; i++ {
		teams = append(teams, map[string]any{"blueprint": "team", "identifier": fmt.Sprintf("team-%d", i)})
	}
	do("POST", "/api/v1/entities/bulk", mustJSON(map[string]any{"entities": teams}))
	const per = 1000
	bodies := make([][]byte, b.N)
	for n := range bodies {
		var items []any
		for k := 0; k < per; k++ {
			i := n*per + k
			rel := map[string]any{"owner": fmt.Sprintf("team-%d", i%100)}
			if k > 0 {
				rel["dependsOn"] = []string{fmt.Sprintf("svc-%d", i-1)}
			}
			items = append(items, map[string]any{"blueprint": "service", "identifier": fmt.Sprintf("svc-%d", i),
				"title": fmt.Sprintf("Service %d", i), "team": []string{fmt.Sprintf("team-%d", i%100)},
				"properties": map[string]any{"language": "go", "environment": "prod", "repo": fmt.Sprintf("https://git/x/%d", i),
					"oncall": "a@b.c", "lifecycle": "production", "description": strings.Repeat("lorem ipsum ", 60),
					"tier": i % 3, "replicas": i % 10, "cost": i % 100, "public": i%2 == 0, "tags": []string{"a", "b"}},
				"relations": rel})
		}
		bodies[n] = mustJSON(map[string]any{"entities": items})
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if rec := do("POST", "/api/v1/entities/bulk", bodies[n]); rec.Code != http.StatusOK {
			b.Fatalf("bulk: %d %.300s", rec.Code, rec.Body.String())
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "entities/s")
}
