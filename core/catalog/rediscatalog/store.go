// Package rediscatalog implements catalog.Store on Redis with go-redis v9. It
// works against a real Redis 7 and against miniredis. Every write is one
// WATCH/MULTI/EXEC transaction: the entity, its secondary indexes, its
// relation edges and its change event land together or not at all.
//
// Under `portico dev` it runs on devredis, so it keeps devredis's rules for
// stores (the list and the reasons are in package devredis): it sends only
// commands devredis can persist (no Lua scripts, blocking pops or stream
// consumer groups; MULTI/EXEC only as TxPipelined), and the client it is
// given must carry devredis's Server.Hook. Its tests enforce the command
// rules with devredistest.Check.
package rediscatalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// Options tune a Store.
type Options struct {
	// Prefix namespaces every key (default "portico").
	Prefix string
	// EventRetention caps the change stream (approximately; default 500,000).
	EventRetention int64
	// HistoryLength caps each entity's history (default 100).
	HistoryLength int64
	// MaxRetries bounds optimistic-transaction retries (default 50).
	MaxRetries int
	// PollEvents, when set, makes blocking reads of the change stream
	// poll at this interval instead of using XREAD BLOCK. For miniredis
	// (portico dev): it re-runs a blocked XREAD, a scan of the whole
	// stream, after every command any client sends, which made each write
	// cost O(stream length).
	PollEvents time.Duration
}

// Store is a catalog.Store on Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys keys
	opts Options
}

var _ catalog.Store = (*Store)(nil)

// New returns a Store over an open client.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "portico"
	}
	if opts.EventRetention <= 0 {
		opts.EventRetention = 500_000
	}
	if opts.HistoryLength <= 0 {
		opts.HistoryLength = 100
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 50
	}
	return &Store{rdb: rdb, keys: keys{prefix: opts.Prefix}, opts: opts}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}

// Update runs fn in a WATCH/MULTI/EXEC transaction, retrying when a watched
// key changed underneath it.
func (s *Store) Update(ctx context.Context, fn func(catalog.Tx) error) error {
	err := s.transact(ctx, func(t *tx) error { return fn(t) })
	if errors.Is(err, errRetriesExhausted) {
		return fmt.Errorf("update: %w after %d attempts", catalog.ErrConflict, s.opts.MaxRetries)
	}
	return err
}

var errRetriesExhausted = errors.New("retries exhausted")

// transact runs fn on a fresh tx and applies its writes in one EXEC,
// again (after a backoff) whenever a watched key changed, up to
// MaxRetries times (then errRetriesExhausted).
func (s *Store) transact(ctx context.Context, fn func(*tx) error) error {
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		err := s.rdb.Watch(ctx, func(rtx *redis.Tx) (err error) {
			t := &tx{s: s, rtx: rtx, w: newWrites()}
			defer func() { t.release(ctx, err) }()
			if err := fn(t); err != nil {
				return err
			}
			if t.w.empty() {
				return nil
			}
			t.execed = true
			_, err = rtx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				t.w.apply(ctx, p, s)
				return nil
			})
			return err
		})
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return errRetriesExhausted
}

func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt+1) * time.Millisecond
	if d > 20*time.Millisecond {
		d = 20 * time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Blueprint returns one blueprint.
func (s *Store) Blueprint(ctx context.Context, id string) (*catalog.Blueprint, error) {
	return getBlueprint(ctx, s.rdb, s.keys, id)
}

// Blueprints returns every blueprint ordered by identifier.
func (s *Store) Blueprints(ctx context.Context) ([]*catalog.Blueprint, error) {
	bps, _, err := s.blueprints(ctx, false)
	return bps, err
}

// blueprints reads every blueprint, ordered by identifier, and with
// withChanges their changes in progress, in two round trips.
func (s *Store) blueprints(ctx context.Context, withChanges bool) ([]*catalog.Blueprint, map[string]*catalog.BlueprintChange, error) {
	pipe := s.rdb.Pipeline()
	idsCmd := pipe.SMembers(ctx, s.keys.blueprints())
	var changingCmd *redis.StringSliceCmd
	if withChanges {
		changingCmd = pipe.SMembers(ctx, s.keys.changes())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("list blueprints: %w", err)
	}
	ids := idsCmd.Val()
	sort.Strings(ids)
	var changing []string
	if changingCmd != nil {
		changing = changingCmd.Val()
	}
	if len(ids)+len(changing) == 0 {
		return nil, nil, nil
	}
	pipe = s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, s.keys.blueprint(id))
	}
	chGets := make([]*redis.StringCmd, len(changing))
	for i, id := range changing {
		chGets[i] = pipe.Get(ctx, s.keys.change(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("list blueprints: %w", err)
	}
	out := make([]*catalog.Blueprint, 0, len(ids))
	for i, id := range ids {
		bp, err := blueprintRead(id, gets[i])
		if errors.Is(err, catalog.ErrNotFound) {
			continue // deleted since the list was read
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, bp)
	}
	changes := make(map[string]*catalog.BlueprintChange, len(changing))
	for i, id := range changing {
		c, err := changeRead(id, chGets[i])
		if err != nil {
			return nil, nil, err
		}
		if c != nil {
			changes[id] = c
		}
	}
	return out, changes, nil
}

// Entities returns the named entities, nil where missing.
func (s *Store) Entities(ctx context.Context, refs []catalog.Ref) ([]*catalog.Entity, error) {
	return getEntities(ctx, s.rdb, s.keys, refs)
}

// ReadProjected reads refs' entities holding only their identifier and
// the parts only names (nil where one is missing), in one round trip.
func (s *Store) ReadProjected(ctx context.Context, refs []catalog.Ref, only *catalog.Projection) ([]*catalog.Entity, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := queueEntityReads(ctx, pipe, entityKeys(s.keys, refs))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("get entities: %w", err)
	}
	out := make([]*catalog.Entity, len(refs))
	i := 0
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			if str, ok := v.(string); ok {
				e, err := decodeProjected(str, only)
				if err != nil {
					return nil, fmt.Errorf("decode entity %s/%s: %w", refs[i].Blueprint, refs[i].Identifier, err)
				}
				e.Blueprint = refs[i].Blueprint
				out[i] = e
			}
			i++
		}
	}
	return out, nil
}

// EntityIDs pages through a blueprint's identifiers in lexical order.
func (s *Store) EntityIDs(ctx context.Context, bp, after string, limit int) ([]string, int, error) {
	min := "-"
	if after != "" {
		min = "(" + after
	}
	pipe := s.rdb.Pipeline()
	rng := pipe.ZRangeByLex(ctx, s.keys.ids(bp), &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit)})
	card := pipe.ZCard(ctx, s.keys.ids(bp))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("list %s identifiers: %w", bp, err)
	}
	return rng.Val(), int(card.Val()), nil
}

// referrersFrom turns the members of each edge kind's set into references,
// sorted by blueprint, identifier, relation.
func referrersFrom(kinds []edgeKind, members [][]string) []catalog.Reference {
	var out []catalog.Reference
	for i, kind := range kinds {
		for _, id := range members[i] {
			out = append(out, catalog.Reference{From: catalog.Ref{Blueprint: kind.From, Identifier: id}, Relation: kind.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.From.Blueprint != b.From.Blueprint {
			return a.From.Blueprint < b.From.Blueprint
		}
		if a.From.Identifier != b.From.Identifier {
			return a.From.Identifier < b.From.Identifier
		}
		return a.Relation < b.Relation
	})
	return out
}

func getBlueprint(ctx context.Context, c redis.Cmdable, k keys, id string) (*catalog.Blueprint, error) {
	return blueprintRead(id, c.Get(ctx, k.blueprint(id)))
}

// mgetChunk bounds one MGET so a 10,000-entity batch does not become a
// single huge reply.
const mgetChunk = 1000

func getEntities(ctx context.Context, c redis.Cmdable, k keys, refs []catalog.Ref) ([]*catalog.Entity, error) {
	if len(refs) == 0 {
		return make([]*catalog.Entity, 0), nil
	}
	pipe := c.Pipeline()
	cmds := queueEntityReads(ctx, pipe, entityKeys(k, refs))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("get entities: %w", err)
	}
	return entitiesRead(refs, cmds)
}

// entityKeys returns refs' document keys.
func entityKeys(k keys, refs []catalog.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = k.entity(r.Blueprint, r.Identifier)
	}
	return out
}

// queueEntityReads queues the MGETs reading the documents at keys.
func queueEntityReads(ctx context.Context, p redis.Pipeliner, keys []string) []*redis.SliceCmd {
	cmds := make([]*redis.SliceCmd, 0, len(keys)/mgetChunk+1)
	for start := 0; start < len(keys); start += mgetChunk {
		cmds = append(cmds, p.MGet(ctx, keys[start:min(start+mgetChunk, len(keys))]...))
	}
	return cmds
}

// entitiesRead decodes what queueEntityReads read: nil for a missing one.
func entitiesRead(refs []catalog.Ref, cmds []*redis.SliceCmd) ([]*catalog.Entity, error) {
	out := make([]*catalog.Entity, len(refs))
	i := 0
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			if str, ok := v.(string); ok {
				e, err := decodeEntity(str)
				if err != nil {
					return nil, fmt.Errorf("decode entity %s/%s: %w", refs[i].Blueprint, refs[i].Identifier, err)
				}
				out[i] = e
			}
			i++
		}
	}
	return out, nil
}

// decodeEntity reads a stored entity. Documents are written by this
// package, so the faster goccy decoder is safe here; it yields the same
// values as encoding/json.
func decodeEntity(raw string) (*catalog.Entity, error) {
	var e catalog.Entity
	if err := gojson.Unmarshal([]byte(raw), &e); err != nil {
		return nil, err
	}
	normaliseRelations(&e)
	return &e, nil
}

// normaliseRelations turns decoded []any relation values back into []string.
func normaliseRelations(e *catalog.Entity) {
	for name, v := range e.Relations {
		if list, ok := v.([]any); ok {
			ids := make([]string, 0, len(list))
			for _, x := range list {
				if s, ok := x.(string); ok {
					ids = append(ids, s)
				}
			}
			e.Relations[name] = ids
		}
	}
}
