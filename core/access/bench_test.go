package access_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
)

// BenchmarkAuthorizeWrite measures what access adds to a write request:
// authenticate a token (cached after the first request) and authorize an
// update of an entity on a blueprint with owning-team and per-property
// permissions. It reports the p50 and p99 latency per check.
func BenchmarkAuthorizeWrite(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{}), access.Options{AdminToken: "T"})
	ctx := context.Background()
	if err := acc.Bootstrap(ctx); err != nil {
		b.Fatal(err)
	}
	sys := catalog.WithActor(ctx, catalog.SystemActor("system"))
	if _, _, err := cat.PutEntity(sys, &catalog.Entity{Identifier: "payments", Blueprint: access.TeamBlueprint}, false); err != nil {
		b.Fatal(err)
	}
	if _, _, err := cat.PutEntity(sys, &catalog.Entity{Identifier: "m@example.com", Blueprint: access.UserBlueprint,
		Properties: map[string]any{"role": "member"}, Relations: map[string]any{"teams": []string{"payments"}}}, false); err != nil {
		b.Fatal(err)
	}
	admin, err := acc.Authenticate(ctx, "T")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := acc.CreateToken(catalog.WithActor(ctx, admin), access.TokenRequest{Name: "bench", User: "m@example.com", Scopes: []string{"read", "write"}})
	if err != nil {
		b.Fatal(err)
	}
	bp := &catalog.Blueprint{Identifier: "service", Permissions: &catalog.Permissions{
		Update:     &catalog.Permission{Roles: []string{}, Teams: []string{"platform"}, OwningTeam: true},
		Properties: map[string]catalog.PropertyPermission{"tier": {Update: &catalog.Permission{OwningTeam: true}}},
	}}
	before := &catalog.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}, Properties: map[string]any{"tier": 1.0, "language": "go"}}
	after := &catalog.Entity{Identifier: "checkout", Blueprint: "service", Team: []string{"payments"}, Properties: map[string]any{"tier": 2.0, "language": "go"}}

	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		a, err := acc.Authenticate(ctx, tok.Secret)
		if err != nil {
			b.Fatal(err)
		}
		err = access.Authorizer{}.CanWrite(catalog.WithActor(ctx, a), catalog.WriteCheck{Op: catalog.OpUpdate, Blueprint: bp, Before: before, After: after, Owners: before.Team})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
