package main

import (
	"context"
	"sync"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// ServiceBlueprint is the catalog blueprint a workload's app label
// relates to.
const ServiceBlueprint = "service"

// serviceTTL is how long a service lookup is reused.
const serviceTTL = 30 * time.Second

// serviceCache remembers which service entities exist, looked up through
// portico_catalog_get: a workload gets its service relation only when the
// entity exists (a relation to a missing one would make the catalog
// refuse the workload). The host answers null for a blueprint outside the
// installation's lane, so without "blueprints": ["service"] on the
// installation no relation is set.
type serviceCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]serviceEntry
}

type serviceEntry struct {
	exists bool
	at     time.Time
}

func newServiceCache(ttl time.Duration) *serviceCache {
	return &serviceCache{ttl: ttl, m: map[string]serviceEntry{}}
}

// resolve sets Service on the workload items whose app names an existing
// service entity.
func (s *serviceCache) resolve(ctx context.Context, items []any) {
	for _, it := range items {
		w, ok := it.(*workloadItem)
		if !ok || w.App == "" {
			continue
		}
		if s.exists(ctx, w.App) {
			w.Service = w.App
		}
	}
}

func (s *serviceCache) exists(ctx context.Context, name string) bool {
	now := time.Now()
	s.mu.Lock()
	e, ok := s.m[name]
	s.mu.Unlock()
	if ok && now.Sub(e.at) < s.ttl {
		return e.exists
	}
	raw, err := pdk.HostFrom(ctx).CatalogGet(ctx, pdk.CatalogGetRequest{Blueprint: ServiceBlueprint, Identifier: name})
	if err != nil {
		return false // not cached: asked again next time
	}
	exists := len(raw) > 0 && string(raw) != "null"
	s.mu.Lock()
	if len(s.m) > 100_000 {
		s.m = map[string]serviceEntry{}
	}
	s.m[name] = serviceEntry{exists: exists, at: now}
	s.mu.Unlock()
	return exists
}
