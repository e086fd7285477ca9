package rediscatalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

func (t *tx) Blueprints(ctx context.Context) ([]*catalog.Blueprint, error) { return t.blueprints(ctx) }

func (t *tx) Record(ev catalog.Event) {
	t.w.event(encodeEvent(ev), t.s.keys.history(ev.Blueprint, ev.Identifier), nil)
}

func (t *tx) MarkDirty(ref catalog.Ref, depth int) { t.mark(catalog.MarkEntity, ref, depth) }

func (t *tx) MarkReferrers(ref catalog.Ref, changed []string, depth int) {
	t.mark(catalog.MarkReferrers, ref, depth)
	for _, p := range changed {
		t.w.sadd(t.s.keys.changedProps(ref.Blueprint, ref.Identifier), p)
	}
}

// Changed returns the properties noted as changed for ref's readers.
func (s *Store) Changed(ctx context.Context, ref catalog.Ref) ([]string, error) {
	out, err := s.rdb.SMembers(ctx, s.keys.changedProps(ref.Blueprint, ref.Identifier)).Result()
	return out, wrapErr("read changed properties", err)
}

// Told forgets properties Changed returned, once the readers were told.
func (s *Store) Told(ctx context.Context, ref catalog.Ref, props []string) error {
	if len(props) == 0 {
		return nil
	}
	return wrapErr("forget changed properties", s.rdb.SRem(ctx, s.keys.changedProps(ref.Blueprint, ref.Identifier), toAny(props)...).Err())
}

// MarkAll marks blueprint bp and starts its progress over under a new
// run: a run under way fails its next SaveDeriveProgress and stops.
func (t *tx) MarkAll(bp string) {
	t.mark(catalog.MarkBlueprint, catalog.Ref{Blueprint: bp}, 0)
	var b [8]byte
	_, _ = rand.Read(b[:])
	raw, _ := json.Marshal(catalog.DeriveProgress{Run: hex.EncodeToString(b[:])})
	t.w.set(t.s.keys.deriveProgress(bp), raw)
}

func (t *tx) mark(kind byte, ref catalog.Ref, depth int) {
	m := dirtyMember(kind, ref)
	kw := t.w.key(t.s.keys.dirty())
	kw.zincrs = append(kw.zincrs, m)
	if t.w.depths == nil {
		t.w.depths = map[string]int{}
	}
	t.w.depths[t.s.keys.markDepth(m)] = depth // the latest mark's wins
}

// markDepthTTL bounds how long a mark's automation depth is remembered:
// a mark handled long after is no part of a chain any more.
const markDepthTTL = 10 * time.Minute

// dirtyMember encodes a mark: its kind, the blueprint, "|", the identifier.
func dirtyMember(kind byte, ref catalog.Ref) string {
	return string(kind) + ref.Blueprint + "|" + ref.Identifier
}

func parseDirtyMember(m string) (catalog.DirtyMark, bool) {
	if len(m) < 2 {
		return catalog.DirtyMark{}, false
	}
	bp, id, ok := strings.Cut(m[1:], "|")
	return catalog.DirtyMark{Kind: m[0], Ref: catalog.Ref{Blueprint: bp, Identifier: id}}, ok
}

// Claim moves up to n marks from the dirty set to the claimed one (scored
// by the claim's time), after handing back the claims older than stale.
// A mark whose thing is claimed already waits: one worker at a time
// recomputes an entity, so a recomputation from older inputs never lands
// after one from newer inputs. The claimed set is watched, so two
// workers never claim one thing.
func (s *Store) Claim(ctx context.Context, n int, stale time.Duration) ([]catalog.DirtyMark, error) {
	k := s.keys
	now := time.Now()
	old, err := s.rdb.ZRangeByScore(ctx, k.claimed(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.Add(-stale).UnixMilli(), 10), Count: int64(n)}).Result()
	if err != nil {
		return nil, fmt.Errorf("read stale claims: %w", err)
	}
	if len(old) > 0 {
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range old {
				p.ZRem(ctx, k.claimed(), m)
				p.ZIncrBy(ctx, k.dirty(), 1, m)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hand back stale claims: %w", err)
		}
	}
	var out []catalog.DirtyMark
	for attempt := 0; attempt < 10; attempt++ {
		out = out[:0]
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			members, err := tx.ZRange(ctx, k.dirty(), 0, int64(n)-1).Result()
			if err != nil || len(members) == 0 {
				return err
			}
			busy, err := tx.ZMScore(ctx, k.claimed(), members...).Result()
			if err != nil {
				return err
			}
			var free []string
			for i, m := range members {
				if busy[i] != 0 {
					continue // being recomputed: after that
				}
				if d, ok := parseDirtyMember(m); ok {
					free = append(free, m)
					out = append(out, d)
				}
			}
			if len(free) == 0 {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZRem(ctx, k.dirty(), toAny(free)...)
				for _, m := range free {
					p.ZAdd(ctx, k.claimed(), redis.Z{Score: float64(now.UnixMilli()), Member: m})
				}
				return nil
			})
			return err
		}, k.claimed())
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if errors.Is(err, redis.TxFailedErr) {
		return nil, nil // busy: next time
	}
	if err != nil {
		return nil, fmt.Errorf("claim dirty marks: %w", err)
	}
	return out, s.readDepths(ctx, out)
}

// readDepths fills in the marks' automation depths.
func (s *Store) readDepths(ctx context.Context, marks []catalog.DirtyMark) error {
	if len(marks) == 0 {
		return nil
	}
	keys := make([]string, len(marks))
	for i, m := range marks {
		keys[i] = s.keys.markDepth(dirtyMember(m.Kind, m.Ref))
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("read mark depths: %w", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			marks[i].Depth, _ = strconv.Atoi(str)
		}
	}
	return nil
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Heartbeat renews a claim.
func (s *Store) Heartbeat(ctx context.Context, m catalog.DirtyMark) error {
	err := s.rdb.ZAddXX(ctx, s.keys.claimed(), redis.Z{Score: float64(time.Now().UnixMilli()), Member: dirtyMember(m.Kind, m.Ref)}).Err()
	return wrapErr("renew claim", err)
}

// Done ends a claim.
func (s *Store) Done(ctx context.Context, m catalog.DirtyMark) error {
	return wrapErr("end claim", s.rdb.ZRem(ctx, s.keys.claimed(), dirtyMember(m.Kind, m.Ref)).Err())
}

// Marked reports whether a mark is pending or claimed.
func (s *Store) Marked(ctx context.Context, kind byte, ref catalog.Ref) (bool, error) {
	m := dirtyMember(kind, ref)
	var a, b *redis.FloatCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		a = p.ZScore(ctx, s.keys.dirty(), m)
		b = p.ZScore(ctx, s.keys.claimed(), m)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("read dirty mark: %w", err)
	}
	return a.Err() == nil || b.Err() == nil, nil
}

// DeriveProgress returns a blueprint's recomputation progress.
func (s *Store) DeriveProgress(ctx context.Context, bp string) (*catalog.DeriveProgress, error) {
	return readProgress(ctx, s.rdb, s.keys.deriveProgress(bp))
}

func readProgress(ctx context.Context, c redis.Cmdable, key string) (*catalog.DeriveProgress, error) {
	raw, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read recomputation progress: %w", err)
	}
	var p catalog.DeriveProgress
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode recomputation progress: %w", err)
	}
	return &p, nil
}

// SaveDeriveProgress records p while the stored progress is still prev
// (watched: MarkAll deleting it meanwhile fails the save).
func (s *Store) SaveDeriveProgress(ctx context.Context, bp string, prev, p *catalog.DeriveProgress) (bool, error) {
	key := s.keys.deriveProgress(bp)
	raw, _ := json.Marshal(p)
	ok := false
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := readProgress(ctx, tx, key)
		if err != nil {
			return err
		}
		if (cur == nil) != (prev == nil) || (cur != nil && *cur != *prev) {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
			pp.Set(ctx, key, raw, 0)
			return nil
		})
		ok = err == nil
		if errors.Is(err, redis.TxFailedErr) {
			return nil
		}
		return err
	}, key)
	if err != nil {
		return false, fmt.Errorf("save %s recomputation progress: %w", bp, err)
	}
	return ok, nil
}

// ClaimEntities claims the recomputation of entities outside any mark
// (for a whole blueprint, or the readers of a changed entity): those
// another worker has claimed are left out of claimed, and marked for
// later. Release ends the claims.
func (s *Store) ClaimEntities(ctx context.Context, refs []catalog.Ref) ([]catalog.Ref, error) {
	k := s.keys
	members := make([]string, len(refs))
	for i, r := range refs {
		members[i] = dirtyMember(catalog.MarkEntity, r)
	}
	var out []catalog.Ref
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		out = out[:0]
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			busy, err := tx.ZMScore(ctx, k.claimed(), members...).Result()
			if err != nil {
				return err
			}
			now := float64(time.Now().UnixMilli())
			var zs []redis.Z
			var later []string
			for i, m := range members {
				if busy[i] == 0 {
					zs = append(zs, redis.Z{Score: now, Member: m})
					out = append(out, refs[i])
				} else {
					later = append(later, m)
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if len(zs) > 0 {
					p.ZAdd(ctx, k.claimed(), zs...)
				}
				// Its claimer may have read before what asks for this
				// recomputation: marked, it is recomputed once released.
				for _, m := range later {
					p.ZIncrBy(ctx, k.dirty(), 1, m)
				}
				return nil
			})
			return err
		}, k.claimed())
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim entities: %w", err)
	}
	return out, nil
}

// Release ends the claims of ClaimEntities.
func (s *Store) Release(ctx context.Context, refs []catalog.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	members := make([]any, len(refs))
	for i, r := range refs {
		members[i] = dirtyMember(catalog.MarkEntity, r)
	}
	return wrapErr("release claims", s.rdb.ZRem(ctx, s.keys.claimed(), members...).Err())
}

// ReadDerived reads refs' entities (watched) leaving their scorecard
// results undecoded: the raw JSON of each is returned instead (nil when
// none). Recomputing mostly finds results unchanged, and comparing bytes
// is cheaper than decoding them.
func (t *tx) ReadDerived(ctx context.Context, refs []catalog.Ref) ([]*catalog.Entity, []json.RawMessage, error) {
	cmds, err := t.watchedReads(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	ents := make([]*catalog.Entity, len(refs))
	raws := make([]json.RawMessage, len(refs))
	i := 0
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			if str, ok := v.(string); ok {
				var d struct {
					catalog.Entity
					Scorecards gojson.RawMessage `json:"scorecards"`
				}
				if err := gojson.Unmarshal([]byte(str), &d); err != nil {
					return nil, nil, fmt.Errorf("decode entity %s/%s: %w", refs[i].Blueprint, refs[i].Identifier, err)
				}
				normaliseRelations(&d.Entity)
				ents[i], raws[i] = &d.Entity, json.RawMessage(d.Scorecards)
			}
			i++
		}
	}
	return ents, raws, nil
}
