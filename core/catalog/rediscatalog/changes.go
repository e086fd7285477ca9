package rediscatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// A blueprint change in progress is its record (keys.change, watched by
// every write of the blueprint's entities, so a change starting or ending
// retries them), its progress (keys.changeProgress, which writes do not
// watch: reporting progress does not disturb them), and during a
// validation the set of entities written since it began that the proposed
// definition refuses (keys.offenders).

// changeProgress is the stored form of catalog.ChangeProgress.
type changeProgress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
	// Prop is the index in the change's Properties of the one being
	// backfilled; Cursor the last of its values whose set was moved.
	Prop   int    `json:"prop,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Beat   int64  `json:"beat,omitempty"` // unix ms
}

func (p changeProgress) public() catalog.ChangeProgress {
	out := catalog.ChangeProgress{Done: p.Done, Total: p.Total}
	if p.Beat > 0 {
		out.Beat = time.UnixMilli(p.Beat)
	}
	return out
}

// changeRead decodes a change record GET (nil when there is none).
func changeRead(bp string, get *redis.StringCmd) (*catalog.BlueprintChange, error) {
	var c catalog.BlueprintChange
	if found, err := readJSON(get, &c); err != nil || !found {
		if err != nil {
			err = fmt.Errorf("change of %s: %w", bp, err)
		}
		return nil, err
	}
	return &c, nil
}

func (t *tx) Change(ctx context.Context, bp string) (*catalog.BlueprintChange, error) {
	if _, ok := t.bps[bp]; !ok {
		if err := t.readBlueprints(ctx, []string{bp}, nil, nil); err != nil {
			return nil, err
		}
	}
	return t.changes[bp], nil
}

func (t *tx) PutChange(c *catalog.BlueprintChange) {
	k := t.s.keys
	raw, _ := json.Marshal(c)
	t.w.del(k.changeProgress(c.Blueprint))
	t.w.del(k.offenders(c.Blueprint))
	t.w.set(k.change(c.Blueprint), raw)
	t.w.sadd(k.changes(), c.Blueprint)
	if t.changes != nil {
		t.changes[c.Blueprint] = c
	}
}

func (t *tx) DeleteChange(bp string) {
	k := t.s.keys
	t.w.del(k.change(bp))
	t.w.del(k.changeProgress(bp))
	t.w.del(k.offenders(bp))
	t.w.srem(k.changes(), bp)
	if t.changes != nil {
		t.changes[bp] = nil
	}
}

func (t *tx) Offenders(ctx context.Context, bp string) ([]string, error) {
	key := t.s.keys.offenders(bp)
	var ids *redis.StringSliceCmd
	if err := t.watchAndRun(ctx, []string{key}, func(p redis.Pipeliner) { ids = p.SMembers(ctx, key) }); err != nil {
		return nil, fmt.Errorf("offenders of %s: %w", bp, err)
	}
	return ids.Val(), nil
}

func (t *tx) AddOffender(bp, id string) { t.w.sadd(t.s.keys.offenders(bp), id) }

func (t *tx) Emit(ev catalog.Event) { t.w.event(encodeEvent(ev), "", nil) }

// Changes lists the blueprints with a change in progress, sorted.
func (s *Store) Changes(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.keys.changes()).Result()
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// Change returns a blueprint's change in progress and its progress.
func (s *Store) Change(ctx context.Context, bp string) (*catalog.BlueprintChange, *catalog.ChangeProgress, error) {
	c, p, err := s.readChange(ctx, s.rdb, bp)
	if err != nil || c == nil {
		return nil, nil, err
	}
	pub := p.public()
	return c, &pub, nil
}

func (s *Store) readChange(ctx context.Context, c redis.Cmdable, bp string) (*catalog.BlueprintChange, changeProgress, error) {
	pipe := c.Pipeline()
	chGet := pipe.Get(ctx, s.keys.change(bp))
	pGet := pipe.Get(ctx, s.keys.changeProgress(bp))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, changeProgress{}, fmt.Errorf("change of %s: %w", bp, err)
	}
	ch, err := changeRead(bp, chGet)
	if err != nil || ch == nil {
		return nil, changeProgress{}, err
	}
	var p changeProgress
	if _, err := readJSON(pGet, &p); err != nil {
		return nil, p, fmt.Errorf("progress of %s: %w", bp, err)
	}
	return ch, p, nil
}

// ChangeProgressed records a validation's progress and heartbeat.
func (s *Store) ChangeProgressed(ctx context.Context, bp, id string, p catalog.ChangeProgress) error {
	raw, _ := json.Marshal(changeProgress{Done: p.Done, Total: p.Total, Beat: time.Now().UnixMilli()})
	err := s.rdb.Watch(ctx, func(rtx *redis.Tx) error {
		c, err := changeRead(bp, rtx.Get(ctx, s.keys.change(bp)))
		if err != nil {
			return err
		}
		if c == nil || c.ID != id {
			return fmt.Errorf("%w: the change of blueprint %s is no longer in progress", catalog.ErrConflict, bp)
		}
		_, err = rtx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.keys.changeProgress(bp), raw, 0)
			return nil
		})
		return err
	}, s.keys.change(bp))
	if errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("%w: the change of blueprint %s was replaced", catalog.ErrConflict, bp)
	}
	return err
}

// ScanEntities reads a blueprint's entities in identifier order, chunk by
// chunk, calling fn with each before it reads the next (fn paces the
// scan).
func (s *Store) ScanEntities(ctx context.Context, bp string, only *catalog.Projection, chunk int, fn func([]*catalog.Entity) error) error {
	after := ""
	for {
		ids, _, err := s.EntityIDs(ctx, bp, after, chunk)
		if err != nil || len(ids) == 0 {
			return err
		}
		ents, err := s.scanChunk(ctx, bp, ids, only)
		if err != nil {
			return err
		}
		if err := fn(ents); err != nil {
			return err
		}
		if len(ids) < chunk {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// scanChunk reads the entities ids of bp, whole or projected, leaving out
// those deleted since their identifiers were read.
func (s *Store) scanChunk(ctx context.Context, bp string, ids []string, only *catalog.Projection) ([]*catalog.Entity, error) {
	refs := make([]catalog.Ref, len(ids))
	for i, id := range ids {
		refs[i] = catalog.Ref{Blueprint: bp, Identifier: id}
	}
	if only == nil {
		ents, err := getEntities(ctx, s.rdb, s.keys, refs)
		return slices.DeleteFunc(ents, func(e *catalog.Entity) bool { return e == nil }), err
	}
	vals, err := s.rdb.MGet(ctx, entityKeys(s.keys, refs)...).Result()
	if err != nil {
		return nil, fmt.Errorf("get entities: %w", err)
	}
	out := make([]*catalog.Entity, 0, len(vals))
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		e, err := decodeProjected(raw, only)
		if err != nil {
			return nil, fmt.Errorf("decode entity %s/%s: %w", bp, ids[i], err)
		}
		e.Blueprint = bp
		out = append(out, e)
	}
	return out, nil
}

// Backfill moves the next chunk of up to limit index entries of a
// blueprint whose layout changed, straight from index to index (the
// documents are not read): the members of a property's per-value sets go
// to its pair index (low → high cardinality), or the other way round. Each
// chunk watches the keys it empties, so a write racing it retries it, and
// commits with the progress; writes meanwhile remove an entity's entries in
// both layouts and add them in the new one (see tx.queueIndexDiff), so the
// source keys only shrink and a restarted backfill just carries on.
// Several workers may run it at once. It returns catalog.ErrNotFound when
// change id is no longer in progress.
func (s *Store) Backfill(ctx context.Context, bp, id string, limit int, finished catalog.Event) (catalog.ChangeProgress, bool, error) {
	k := s.keys
	var out changeProgress
	var done bool
	err := s.transact(ctx, func(t *tx) error {
		var pGet *redis.StringCmd
		if err := t.readBlueprints(ctx, []string{bp}, []string{k.changeProgress(bp)}, func(p redis.Pipeliner) {
			pGet = p.Get(ctx, k.changeProgress(bp))
		}); err != nil {
			return err
		}
		c, cur := t.changes[bp], t.bps[bp]
		if c == nil || c.ID != id || c.Phase != catalog.PhaseBackfilling || cur == nil {
			return fmt.Errorf("backfill of %s: %w", bp, catalog.ErrNotFound)
		}
		var p changeProgress
		if _, err := readJSON(pGet, &p); err != nil {
			return fmt.Errorf("progress of %s: %w", bp, err)
		}
		if p.Prop < len(c.Properties) {
			prop := c.Properties[p.Prop]
			var moved int
			var propDone bool
			var err error
			if highCardinality(cur, prop) {
				moved, propDone, err = t.toPairs(ctx, bp, prop, &p, limit)
			} else {
				moved, propDone, err = t.toSets(ctx, c.From, cur, prop, min(limit, maxWatchedDocs))
			}
			if err != nil {
				return fmt.Errorf("backfill %s.%s: %w", bp, prop, err)
			}
			p.Done += moved
			if propDone {
				p.Prop, p.Cursor = p.Prop+1, ""
			}
		}
		// Total estimates one entry per entity and property (an array
		// has one per distinct element).
		p.Total = max(c.Entities*len(c.Properties), 1)
		p.Beat = time.Now().UnixMilli()
		if done = p.Prop >= len(c.Properties); done {
			p.Done = max(p.Done, p.Total)
			t.DeleteChange(bp)
			t.Emit(finished)
		} else {
			p.Done = min(p.Done, p.Total-1)
			raw, _ := json.Marshal(p)
			t.w.set(k.changeProgress(bp), raw)
		}
		out = p
		return nil
	})
	if errors.Is(err, errRetriesExhausted) {
		err = fmt.Errorf("backfill of %s: %w after %d attempts", bp, catalog.ErrConflict, s.opts.MaxRetries)
	}
	if err != nil {
		return catalog.ChangeProgress{}, false, err
	}
	return out.public(), done, nil
}

// valuesPerChunk bounds how many of a property's values one backfill
// chunk looks at.
const valuesPerChunk = 100

// maxWatchedDocs bounds how many documents a backfill chunk watches:
// Redis 7.0 checks each key a WATCH adds against every key the client
// already watches, which blocks the server for the square of them.
const maxWatchedDocs = 100

// toPairs queues the move of up to limit members of prop's per-value sets
// into its pair index, taking the values in order after p.Cursor (the
// values index lists them): whole sets while they fit, else part of the
// first. propDone reports that no set is left.
func (t *tx) toPairs(ctx context.Context, bp, prop string, p *changeProgress, limit int) (moved int, propDone bool, err error) {
	k := t.s.keys
	lo := "-"
	if p.Cursor != "" {
		lo = "(" + p.Cursor
	}
	vals, err := t.rtx.ZRangeByLex(ctx, k.valuesIndex(bp, prop), &redis.ZRangeBy{Min: lo, Max: "+", Count: valuesPerChunk}).Result()
	if err != nil {
		return 0, false, err
	}
	if len(vals) == 0 {
		t.w.del(k.valuesIndex(bp, prop)) // the pair layout has none
		return 0, true, nil
	}
	sets := make([]string, len(vals))
	for i, v := range vals {
		sets[i] = k.eqIndex(bp, prop, v)
	}
	cards := make([]*redis.IntCmd, len(sets))
	if err := t.watchAndRun(ctx, sets, func(pl redis.Pipeliner) {
		for i, key := range sets {
			cards[i] = pl.SCard(ctx, key)
		}
	}); err != nil {
		return 0, false, err
	}
	type take struct {
		value string
		all   bool
		cmd   *redis.StringSliceCmd
	}
	var takes []take
	budget := limit
	pl := t.rtx.Pipeline()
	for i, v := range vals {
		n := int(cards[i].Val())
		if n <= budget {
			takes = append(takes, take{value: v, all: true, cmd: pl.SMembers(ctx, sets[i])})
			budget -= n
			continue
		}
		if len(takes) == 0 { // one set larger than a chunk: part of it
			takes = append(takes, take{value: v, cmd: pl.SRandMemberN(ctx, sets[i], int64(budget))})
		}
		break
	}
	if _, err := pl.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, err
	}
	pairs, long := t.w.key(k.pairIndex(bp, prop)), t.w.key(k.longIndex(bp, prop))
	for _, tk := range takes {
		value := tk.value[1:] // untagged
		ids := tk.cmd.Val()
		for _, id := range ids {
			if strings.IndexByte(value, 0) >= 0 { // pair members cannot hold a NUL
				long.sadds = append(long.sadds, id)
			} else {
				pairs.zadds = append(pairs.zadds, redis.Z{Member: pairMember(value, id)})
			}
		}
		moved += len(ids)
		key := k.eqIndex(bp, prop, tk.value)
		if tk.all {
			t.w.del(key)
			p.Cursor = tk.value
			continue
		}
		for _, id := range ids {
			t.w.srem(key, id)
		}
	}
	return moved, false, nil
}

// toSets queues the move of up to limit members of prop's pair index into
// per-value sets (and their values into the values index). When the pair
// index is empty, the entities in the property's long set are re-indexed
// from their documents: a short value holding a NUL is "long" only in the
// pair layout.
func (t *tx) toSets(ctx context.Context, from, cur *catalog.Blueprint, prop string, limit int) (moved int, propDone bool, err error) {
	k := t.s.keys
	bp := cur.Identifier
	var members *redis.StringSliceCmd
	if err := t.watchAndRun(ctx, []string{k.pairIndex(bp, prop)}, func(pl redis.Pipeliner) {
		members = pl.ZRangeByLex(ctx, k.pairIndex(bp, prop), &redis.ZRangeBy{Min: "-", Max: "+", Count: int64(limit)})
	}); err != nil {
		return 0, false, err
	}
	if len(members.Val()) == 0 {
		return 0, true, t.reindexLong(ctx, from, cur, prop)
	}
	// A write removing a member does ZREM, which miniredis (portico dev)
	// does not count as a change of a watched key: watch the members'
	// documents too (every write sets or deletes its document), then keep
	// the members still there.
	refs := make([]catalog.Ref, len(members.Val()))
	for i, m := range members.Val() {
		refs[i] = catalog.Ref{Blueprint: bp, Identifier: idFromPairMember(m)}
	}
	args := []any{"ZMSCORE", k.pairIndex(bp, prop)}
	for _, m := range members.Val() {
		args = append(args, m)
	}
	var scores *redis.Cmd
	if err := t.watchAndRun(ctx, entityKeys(k, refs), func(pl redis.Pipeliner) { scores = pl.Do(ctx, args...) }); err != nil {
		return 0, false, err
	}
	there, err := scores.Slice()
	if err != nil {
		return 0, false, err
	}
	values, pairs := t.w.key(k.valuesIndex(bp, prop)), t.w.key(k.pairIndex(bp, prop))
	for i, m := range members.Val() {
		if i >= len(there) || there[i] == nil {
			continue // removed since it was read
		}
		tagged := m[:strings.IndexByte(m, 0)]
		t.w.sadd(k.eqIndex(bp, prop, tagged), idFromPairMember(m))
		values.zaddOnce(tagged)
		pairs.zrems = append(pairs.zrems, m)
	}
	return len(members.Val()), false, nil
}

// reindexLong moves the entities in prop's long set from layout from to
// cur, reading their documents (watched).
func (t *tx) reindexLong(ctx context.Context, from, cur *catalog.Blueprint, prop string) error {
	key := t.s.keys.longIndex(cur.Identifier, prop)
	var ids *redis.StringSliceCmd
	if err := t.watchAndRun(ctx, []string{key}, func(pl redis.Pipeliner) { ids = pl.SMembers(ctx, key) }); err != nil {
		return err
	}
	refs := make([]catalog.Ref, len(ids.Val()))
	for i, id := range ids.Val() {
		refs[i] = catalog.Ref{Blueprint: cur.Identifier, Identifier: id}
	}
	ents, err := t.Entities(ctx, refs)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e != nil {
			t.oldIx = indexEntries(t.oldIx[:0], from, e)
			t.curIx = indexEntries(t.curIx[:0], cur, e)
			t.queueEntries(cur.Identifier, t.oldIx, t.curIx)
		}
	}
	return nil
}

// unsettled returns the properties whose indexes a change in progress is
// moving (nil when there is none).
func unsettled(c *catalog.BlueprintChange) map[string]bool {
	if c == nil || c.Phase != catalog.PhaseBackfilling {
		return nil
	}
	out := make(map[string]bool, len(c.Properties))
	for _, p := range c.Properties {
		out[p] = true
	}
	return out
}
