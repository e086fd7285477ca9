// Package redisautomations implements automations.Store on Redis.
//
// Key layout (<p> = "portico|automations|"; per-automation keys share the
// hash tag {<id>}, so a Redis Cluster keeps them in one slot):
//
//	<p>ids                       set of automation ids
//	<p>gen                       counter bumped by every put and delete
//	<p>cursor                    the dispatcher's position in the change stream
//	<p>{<id>}|def                the definition (JSON; header values sealed)
//	<p>{<id>}|secret             the webhook signing secret (sealed)
//	<p>{<id>}|deliveries         zset of delivery ids by first-record time (ms)
//	<p>{<id>}|delivery|<event>   a delivery record (JSON, expires after DeliveryTTL)
package redisautomations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/internal/secretbox"
)

// Store is the Redis automations store.
type Store struct {
	rdb  redis.UniversalClient
	p    string
	keys *secretbox.Keyring
	now  func() time.Time
	max  int
}

var _ automations.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// Prefix namespaces every key (default "portico").
	Prefix string
	// Keyring seals secrets and header values (nil: plain text).
	Keyring *secretbox.Keyring
	// MaxDeliveries bounds the records kept per automation (default
	// DefaultMaxDeliveries).
	MaxDeliveries int
}

// Retention of delivery records.
const (
	DefaultMaxDeliveries = 1000
	DeliveryTTL          = 30 * 24 * time.Hour
)

// New returns a store over rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "portico"
	}
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = DefaultMaxDeliveries
	}
	return &Store{rdb: rdb, p: opts.Prefix + "|automations|", keys: opts.Keyring, now: time.Now, max: opts.MaxDeliveries}
}

func (s *Store) key(id, what string) string { return s.p + "{" + id + "}|" + what }

func headerPlace(id, name string) string { return "automation/" + id + "/header/" + name }

// Put stores a new version of a unless it is unchanged.
func (s *Store) Put(ctx context.Context, a *automations.Automation) (*automations.Automation, bool, error) {
	key := s.key(a.Identifier, "def")
	var out *automations.Automation
	var created bool
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		prev, err := s.get(ctx, tx, a.Identifier)
		if err != nil && !errors.Is(err, automations.ErrNotFound) {
			return err
		}
		next := *a
		now := s.now().UTC()
		created = prev == nil
		if prev != nil {
			cmp := next
			cmp.Version, cmp.CreatedAt, cmp.UpdatedAt = prev.Version, prev.CreatedAt, prev.UpdatedAt
			if reflect.DeepEqual(&cmp, prev) {
				out = prev
				return nil
			}
			next.Version, next.CreatedAt, next.UpdatedAt = prev.Version+1, prev.CreatedAt, now
		} else {
			next.Version, next.CreatedAt, next.UpdatedAt = 1, now, now
		}
		raw, err := s.encode(&next)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, raw, 0)
			p.SAdd(ctx, s.p+"ids", a.Identifier)
			p.Incr(ctx, s.p+"gen")
			return nil
		})
		out = &next
		return err
	}, key)
	if err != nil {
		return nil, false, fmt.Errorf("put automation %s: %w", a.Identifier, err)
	}
	return out, created, nil
}

func (s *Store) encode(a *automations.Automation) ([]byte, error) {
	c := *a
	if len(a.Invoke.Headers) > 0 {
		c.Invoke.Headers = make(map[string]string, len(a.Invoke.Headers))
		for k, v := range a.Invoke.Headers {
			sealed, err := s.keys.Seal(v, headerPlace(a.Identifier, k))
			if err != nil {
				return nil, err
			}
			c.Invoke.Headers[k] = sealed
		}
	}
	return json.Marshal(&c)
}

func (s *Store) decode(raw []byte) (*automations.Automation, error) {
	var a automations.Automation
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode automation: %w", err)
	}
	if len(a.Invoke.Headers) > 0 {
		h := maps.Clone(a.Invoke.Headers)
		for k, v := range h {
			plain, err := s.keys.Open(v, headerPlace(a.Identifier, k))
			if err != nil {
				return nil, fmt.Errorf("header %s of automation %s: %w", k, a.Identifier, err)
			}
			h[k] = plain
		}
		a.Invoke.Headers = h
	}
	return &a, nil
}

func (s *Store) get(ctx context.Context, c redis.Cmdable, id string) (*automations.Automation, error) {
	raw, err := c.Get(ctx, s.key(id, "def")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("automation %s: %w", id, automations.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("automation %s: %w", id, err)
	}
	return s.decode(raw)
}

// Get returns an automation.
func (s *Store) Get(ctx context.Context, id string) (*automations.Automation, error) {
	return s.get(ctx, s.rdb, id)
}

// List returns every automation, ordered by identifier.
func (s *Store) List(ctx context.Context) ([]*automations.Automation, error) {
	ids, err := s.rdb.SMembers(ctx, s.p+"ids").Result() // SORT: not in the embedded Redis
	if err != nil {
		return nil, fmt.Errorf("list automations: %w", err)
	}
	slices.Sort(ids)
	out := []*automations.Automation{}
	for _, id := range ids {
		a, err := s.Get(ctx, id)
		if errors.Is(err, automations.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Delete removes an automation and its secret.
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key(id, "def"), s.key(id, "secret"))
		p.SRem(ctx, s.p+"ids", id)
		p.Incr(ctx, s.p+"gen")
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete automation %s: %w", id, err)
	}
	return nil
}

// Generation returns the definitions' change counter.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.p+"gen").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

func signingPlace(id string) string { return "automation/" + id + "/signing-secret" }

// InitSecret stores an automation's signing secret unless it has one.
func (s *Store) InitSecret(ctx context.Context, id, secret string) (bool, error) {
	sealed, err := s.keys.Seal(secret, signingPlace(id))
	if err != nil {
		return false, fmt.Errorf("init secret of %s: %w", id, err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key(id, "secret"), sealed, 0).Result()
	if err != nil {
		return false, fmt.Errorf("init secret of %s: %w", id, err)
	}
	return ok, nil
}

// Secret returns an automation's signing secret.
func (s *Store) Secret(ctx context.Context, id string) (string, error) {
	v, err := s.rdb.Get(ctx, s.key(id, "secret")).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("secret of %s: %w", id, automations.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("secret of %s: %w", id, err)
	}
	return s.keys.Open(v, signingPlace(id))
}

// Cursor returns the dispatcher's position ("" when none).
func (s *Store) Cursor(ctx context.Context) (string, error) {
	v, err := s.rdb.Get(ctx, s.p+"cursor").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// SetCursor stores the dispatcher's position.
func (s *Store) SetCursor(ctx context.Context, id string) error {
	return s.rdb.Set(ctx, s.p+"cursor", id, 0).Err()
}

// SaveDelivery writes a delivery record, keeping its first StartedAt; a
// started record never replaces a finished one.
func (s *Store) SaveDelivery(ctx context.Context, d *automations.Delivery) error {
	key := s.key(d.Automation, "delivery|"+d.ID)
	index := s.key(d.Automation, "deliveries")
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		rec := *d
		raw, err := tx.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			var cur automations.Delivery
			if json.Unmarshal(raw, &cur) == nil {
				if cur.Status != automations.StatusStarted && rec.Status == automations.StatusStarted {
					return nil
				}
				rec.StartedAt = cur.StartedAt
				if rec.Attempts == 0 {
					rec.Attempts = cur.Attempts
				}
				if rec.Run == "" {
					rec.Run = cur.Run
				}
			}
		}
		enc, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, enc, DeliveryTTL)
			p.ZAddNX(ctx, index, redis.Z{Score: float64(rec.StartedAt.UnixMilli()), Member: d.ID})
			p.ZRemRangeByRank(ctx, index, 0, int64(-s.max-1))
			p.Expire(ctx, index, DeliveryTTL)
			return nil
		})
		return err
	}, key)
	if err != nil {
		return fmt.Errorf("save delivery %s of %s: %w", d.ID, d.Automation, err)
	}
	return nil
}

// Deliveries returns an automation's most recent deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, id string, limit int) ([]*automations.Delivery, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.key(id, "deliveries"), 0, int64(limit-1)).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, ev := range ids {
		keys[i] = s.key(id, "delivery|"+ev)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("deliveries of %s: %w", id, err)
	}
	out := make([]*automations.Delivery, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired
		}
		var d automations.Delivery
		if err := json.Unmarshal([]byte(str), &d); err != nil {
			return nil, fmt.Errorf("decode delivery of %s: %w", id, err)
		}
		out = append(out, &d)
	}
	return out, nil
}
