// Package redisdefinitions implements definitions.Store on Redis with
// go-redis v9: the whole ledger is one hash (kind|id → record JSON), read
// and written without scripts or blocking commands (devredis's rules).
package redisdefinitions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/definitions"
)

// Store is a definitions.Store on Redis.
//
// Key layout: <prefix>|definitions|ledger, a hash of "<kind>|<id>" → a
// definitions.Record's JSON.
type Store struct {
	rdb redis.UniversalClient
	key string
}

var _ definitions.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// Prefix namespaces every key (default "portico").
	Prefix string
}

// New returns a Store over an open client.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "portico"
	}
	return &Store{rdb: rdb, key: opts.Prefix + "|definitions|ledger"}
}

// Put implements definitions.Store.
func (s *Store) Put(ctx context.Context, recs []definitions.Record) error {
	if len(recs) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(recs))
	for i := range recs {
		raw, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("ledger record %s: %w", recs[i].Key(), err)
		}
		fields = append(fields, recs[i].Key(), raw)
	}
	if err := s.rdb.HSet(ctx, s.key, fields...).Err(); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// Delete implements definitions.Store.
func (s *Store) Delete(ctx context.Context, refs []definitions.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = (&definitions.Record{Kind: r.Kind, ID: r.ID}).Key()
	}
	if err := s.rdb.HDel(ctx, s.key, keys...).Err(); err != nil {
		return fmt.Errorf("forget ledger records: %w", err)
	}
	return nil
}

// List implements definitions.Store.
func (s *Store) List(ctx context.Context) ([]definitions.Record, error) {
	all, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	out := make([]definitions.Record, 0, len(all))
	for key, raw := range all {
		var r definitions.Record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("ledger record %s: %w", key, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := definitions.Rank(out[i].Kind), definitions.Rank(out[j].Kind); ri != rj {
			return ri < rj
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
