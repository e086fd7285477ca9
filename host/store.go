package host

import (
	"context"
	"encoding/json"
	"sync"
)

// KVStore keeps small per-installation state (cursors, ETags) for plugins.
type KVStore interface {
	// Get returns the value of key in namespace and whether it exists.
	Get(ctx context.Context, namespace, key string) (string, bool, error)
	// Set stores value under key in namespace; an empty value deletes the key.
	Set(ctx context.Context, namespace, key, value string) error
}

// CatalogReader gives plugins read-only access to the catalog.
type CatalogReader interface {
	// GetEntity returns the entity's JSON, or nil and no error when it does
	// not exist.
	GetEntity(ctx context.Context, blueprint, identifier string) (json.RawMessage, error)
}

// MemoryKV is an in-memory KVStore.
type MemoryKV struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

var _ KVStore = (*MemoryKV)(nil)

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{m: map[string]map[string]string{}} }

// Get implements KVStore.
func (s *MemoryKV) Get(_ context.Context, namespace, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[namespace][key]
	return v, ok, nil
}

// Set implements KVStore.
func (s *MemoryKV) Set(_ context.Context, namespace, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		delete(s.m[namespace], key)
		return nil
	}
	if s.m[namespace] == nil {
		s.m[namespace] = map[string]string{}
	}
	s.m[namespace][key] = value
	return nil
}
