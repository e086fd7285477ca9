// Package redisinitiatives implements initiatives.Store on Redis with
// go-redis v9. It keeps devredis's rules for stores (see package
// devredis): no Lua scripts or blocking commands, MULTI/EXEC only as
// TxPipelined; its tests enforce them with devredistest.Check.
package redisinitiatives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/initiatives"
)

// Store is an initiatives.Store on Redis.
//
// Key layout (<p> = "portico|initiatives|"):
//
//	<p>def|<id>           string: an initiative's definition JSON
//	<p>ids                set of initiative ids
//	<p>share|<id>         hash: date → an initiative's SharePoint JSON
//	<p>regressed|<id>     list: Regression JSON, newest first, bounded
//	<p>dist|<bp>|<sc>     hash: date → a scorecard's Distribution JSON
//	<p>position           string: the change stream id Run handled up to
type Store struct {
	rdb redis.UniversalClient
	p   string
}

var _ initiatives.Store = (*Store)(nil)

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
	return &Store{rdb: rdb, p: opts.Prefix + "|initiatives|"}
}

// Put implements initiatives.Store.
func (s *Store) Put(ctx context.Context, in *initiatives.Initiative) (bool, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return false, err
	}
	var added *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.p+"def|"+in.Identifier, raw, 0)
		added = p.SAdd(ctx, s.p+"ids", in.Identifier)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put initiative %s: %w", in.Identifier, err)
	}
	return added.Val() == 1, nil
}

// Get implements initiatives.Store.
func (s *Store) Get(ctx context.Context, id string) (*initiatives.Initiative, error) {
	raw, err := s.rdb.Get(ctx, s.p+"def|"+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("initiative %s: %w", id, initiatives.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get initiative %s: %w", id, err)
	}
	var in initiatives.Initiative
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("initiative %s: %w", id, err)
	}
	return &in, nil
}

// List implements initiatives.Store.
func (s *Store) List(ctx context.Context) ([]*initiatives.Initiative, error) {
	ids, err := s.rdb.SMembers(ctx, s.p+"ids").Result()
	if err != nil {
		return nil, fmt.Errorf("list initiatives: %w", err)
	}
	sort.Strings(ids)
	out := make([]*initiatives.Initiative, 0, len(ids))
	for _, id := range ids {
		in, err := s.Get(ctx, id)
		if errors.Is(err, initiatives.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Delete implements initiatives.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	var removed *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		removed = p.SRem(ctx, s.p+"ids", id)
		p.Del(ctx, s.p+"def|"+id, s.p+"share|"+id, s.p+"regressed|"+id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete initiative %s: %w", id, err)
	}
	if removed.Val() == 0 {
		return fmt.Errorf("initiative %s: %w", id, initiatives.ErrNotFound)
	}
	return nil
}

// SaveDistribution implements initiatives.Store.
func (s *Store) SaveDistribution(ctx context.Context, bp, sc string, d initiatives.Distribution) error {
	return s.saveDay(ctx, s.p+"dist|"+bp+"|"+sc, d.Date, d)
}

// Distributions implements initiatives.Store.
func (s *Store) Distributions(ctx context.Context, bp, sc string) ([]initiatives.Distribution, error) {
	return days[initiatives.Distribution](ctx, s.rdb, s.p+"dist|"+bp+"|"+sc)
}

// SaveShare implements initiatives.Store.
func (s *Store) SaveShare(ctx context.Context, id string, p initiatives.SharePoint) error {
	return s.saveDay(ctx, s.p+"share|"+id, p.Date, p)
}

// Shares implements initiatives.Store.
func (s *Store) Shares(ctx context.Context, id string) ([]initiatives.SharePoint, error) {
	return days[initiatives.SharePoint](ctx, s.rdb, s.p+"share|"+id)
}

func (s *Store) saveDay(ctx context.Context, key, date string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, key, date, raw).Err(); err != nil {
		return fmt.Errorf("save %s of %s: %w", key, date, err)
	}
	return nil
}

// days reads a hash of date → JSON, oldest date first.
func days[T any](ctx context.Context, rdb redis.UniversalClient, key string) ([]T, error) {
	all, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	dates := make([]string, 0, len(all))
	for d := range all {
		dates = append(dates, d)
	}
	sort.Strings(dates) // YYYY-MM-DD sorts by date
	out := make([]T, 0, len(dates))
	for _, d := range dates {
		var v T
		if err := json.Unmarshal([]byte(all[d]), &v); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", key, d, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// AddRegression implements initiatives.Store.
func (s *Store) AddRegression(ctx context.Context, id string, r initiatives.Regression) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := s.p + "regressed|" + id
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, raw)
		p.LTrim(ctx, key, 0, initiatives.MaxRegressions-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("add regression of %s: %w", id, err)
	}
	return nil
}

// Regressions implements initiatives.Store.
func (s *Store) Regressions(ctx context.Context, id string) ([]initiatives.Regression, error) {
	list, err := s.rdb.LRange(ctx, s.p+"regressed|"+id, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("regressions of %s: %w", id, err)
	}
	out := make([]initiatives.Regression, 0, len(list))
	for _, raw := range list {
		var r initiatives.Regression
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("regression of %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Position implements initiatives.Store.
func (s *Store) Position(ctx context.Context) (string, error) {
	pos, err := s.rdb.Get(ctx, s.p+"position").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read position: %w", err)
	}
	return pos, nil
}

// SavePosition implements initiatives.Store: the position moves only
// forward, whichever process saves it.
func (s *Store) SavePosition(ctx context.Context, id string) error {
	key := s.p + "position"
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			cur, err := tx.Get(ctx, key).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if cur != "" && !catalog.EventIDBefore(cur, id) {
				return nil // another process went as far or further
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, id, 0)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil {
				return fmt.Errorf("save position: %w", err)
			}
			return nil
		}
	}
	return nil // others keep moving it: their position is as good
}
