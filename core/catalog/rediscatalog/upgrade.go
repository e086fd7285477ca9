package rediscatalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// indexLayout versions how secondary indexes are laid out in Redis.
// Layout 2: high-cardinality strings in pair indexes, numbers without
// equality sets. Layout 3: entities without a team in their own set
// (noneIndex).
const indexLayout = "3"

// upgradeBatch is how many entities one re-indexing transaction covers.
const upgradeBatch = 500

// UpgradeIndexes rebuilds the secondary indexes of a catalog written under
// an older index layout: every blueprint's index keys are dropped and
// re-created from its entities. It returns how many entities it
// re-indexed (0 when the layout is current). Run it at start-up, before
// serving: writes racing the rebuild are safe (they write the same
// entries), a search during it may miss entities.
func (s *Store) UpgradeIndexes(ctx context.Context) (int, error) {
	layoutKey := s.keys.indexLayout()
	current, err := s.rdb.Get(ctx, layoutKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("index layout: %w", err)
	}
	if current == indexLayout {
		return 0, nil
	}
	bps, err := s.Blueprints(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, bp := range bps {
		n, err := s.rebuildIndexes(ctx, bp)
		if err != nil {
			return total, fmt.Errorf("re-index %s: %w", bp.Identifier, err)
		}
		total += n
	}
	if err := s.rdb.Set(ctx, layoutKey, indexLayout, 0).Err(); err != nil {
		return total, fmt.Errorf("index layout: %w", err)
	}
	return total, nil
}

// rebuildIndexes drops a blueprint's index keys and re-adds every entity's
// entries.
func (s *Store) rebuildIndexes(ctx context.Context, bp *catalog.Blueprint) (int, error) {
	// Blueprint identifiers hold no glob characters.
	iter := s.rdb.Scan(ctx, 0, s.keys.prefix+"|ix|"+bp.Identifier+"|*", 1000).Iterator()
	var stale []string
	for iter.Next(ctx) {
		stale = append(stale, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return 0, err
	}
	for start := 0; start < len(stale); start += upgradeBatch {
		if err := s.rdb.Del(ctx, stale[start:min(start+upgradeBatch, len(stale))]...).Err(); err != nil {
			return 0, err
		}
	}
	n, after := 0, ""
	for {
		ids, _, err := s.EntityIDs(ctx, bp.Identifier, after, upgradeBatch)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		refs := make([]catalog.Ref, len(ids))
		for i, id := range ids {
			refs[i] = catalog.Ref{Blueprint: bp.Identifier, Identifier: id}
		}
		ents, err := getEntities(ctx, s.rdb, s.keys, refs)
		if err != nil {
			return n, err
		}
		t := &tx{s: s, w: newWrites()}
		for _, e := range ents {
			if e != nil {
				t.queueIndexDiff(bp, nil, bp, e)
				n++
			}
		}
		if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			t.w.apply(ctx, p, s)
			return nil
		}); err != nil {
			return n, err
		}
		after = ids[len(ids)-1]
	}
}
