package rediscatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Cursor string `json:"cursor,omitempty"`
	Beat   int64  `json:"beat,omitempty"` // unix ms
}

func (p changeProgress) public() *catalog.ChangeProgress {
	out := &catalog.ChangeProgress{Done: p.Done, Total: p.Total, Cursor: p.Cursor}
	if p.Beat > 0 {
		out.Beat = time.UnixMilli(p.Beat)
	}
	return out
}

// changeRead decodes a change record GET (nil when there is none).
func changeRead(bp string, get *redis.StringCmd) (*catalog.BlueprintChange, error) {
	if errors.Is(get.Err(), redis.Nil) {
		return nil, nil
	}
	if err := get.Err(); err != nil {
		return nil, fmt.Errorf("change of %s: %w", bp, err)
	}
	var c catalog.BlueprintChange
	if err := json.Unmarshal([]byte(get.Val()), &c); err != nil {
		return nil, fmt.Errorf("decode change of %s: %w", bp, err)
	}
	return &c, nil
}

func progressRead(bp string, get *redis.StringCmd) (changeProgress, error) {
	var p changeProgress
	if errors.Is(get.Err(), redis.Nil) {
		return p, nil
	}
	if err := get.Err(); err != nil {
		return p, fmt.Errorf("progress of %s: %w", bp, err)
	}
	if err := json.Unmarshal([]byte(get.Val()), &p); err != nil {
		return p, fmt.Errorf("decode progress of %s: %w", bp, err)
	}
	return p, nil
}

func (t *tx) Change(ctx context.Context, bp string) (*catalog.BlueprintChange, error) {
	if _, ok := t.bps[bp]; !ok {
		if err := t.readBlueprints(ctx, []string{bp}, nil); err != nil {
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
	return c, p.public(), nil
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
	p, err := progressRead(bp, pGet)
	return ch, p, err
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

// scanned is one chunk a scan read.
type scanned struct {
	ents []*catalog.Entity
	err  error
}

// ScanEntities reads a blueprint's entities in identifier order, chunk by
// chunk, reading (and decoding) the next chunk while fn handles the
// current one.
func (s *Store) ScanEntities(ctx context.Context, bp string, chunk int, fn func([]*catalog.Entity) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan scanned, 2)
	go func() {
		defer close(chunks)
		after := ""
		for {
			ents, last, err := s.entitiesAfter(ctx, bp, after, chunk)
			if len(ents) > 0 || err != nil {
				select {
				case chunks <- scanned{ents, err}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil || last == "" {
				return
			}
			after = last
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := fn(c.ents); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// entitiesAfter reads up to limit entities of bp whose identifiers follow
// after, and the last identifier read ("" at the end).
func (s *Store) entitiesAfter(ctx context.Context, bp, after string, limit int) ([]*catalog.Entity, string, error) {
	ids, _, err := s.EntityIDs(ctx, bp, after, limit)
	if err != nil || len(ids) == 0 {
		return nil, "", err
	}
	refs := make([]catalog.Ref, len(ids))
	for i, id := range ids {
		refs[i] = catalog.Ref{Blueprint: bp, Identifier: id}
	}
	ents, err := getEntities(ctx, s.rdb, s.keys, refs)
	if err != nil {
		return nil, "", err
	}
	out := ents[:0]
	for _, e := range ents {
		if e != nil { // deleted since its identifier was read
			out = append(out, e)
		}
	}
	last := ids[len(ids)-1]
	if len(ids) < limit {
		last = ""
	}
	return out, last, nil
}

// Backfill re-indexes the next chunk of a blueprint being backfilled: in
// one transaction watching the change, its progress, the blueprint and
// the chunk's documents, each entity's entries move from the change's From
// layout to the blueprint's, and the progress cursor moves past them.
// Several workers may run it at once: the cursor is watched, so each chunk
// is done once. It returns catalog.ErrNotFound when change id is no longer
// in progress.
func (s *Store) Backfill(ctx context.Context, bp, id string, limit int, finished catalog.Event) (catalog.ChangeProgress, bool, error) {
	k := s.keys
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		var out changeProgress
		var done bool
		err := s.rdb.Watch(ctx, func(rtx *redis.Tx) (err error) {
			t := &tx{s: s, rtx: rtx, w: newWrites()}
			defer func() { t.release(ctx, err) }()
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
			p, err := progressRead(bp, pGet)
			if err != nil {
				return err
			}
			ids, total, err := s.EntityIDs(ctx, bp, p.Cursor, limit)
			if err != nil {
				return err
			}
			refs := make([]catalog.Ref, len(ids))
			for i, id := range ids {
				refs[i] = catalog.Ref{Blueprint: bp, Identifier: id}
			}
			ents, err := t.Entities(ctx, refs)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if e != nil {
					t.moveIndexes(c.From, cur, e)
				}
			}
			p.Done += len(ids)
			p.Total = max(total, p.Done)
			if len(ids) > 0 {
				p.Cursor = ids[len(ids)-1]
			}
			p.Beat = time.Now().UnixMilli()
			if done = len(ids) < limit; done {
				t.DeleteChange(bp)
				t.Emit(finished)
			} else {
				raw, _ := json.Marshal(p)
				t.w.set(k.changeProgress(bp), raw)
			}
			out = p
			_, err = rtx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
				t.w.apply(ctx, pl, s)
				return nil
			})
			return err
		})
		if errors.Is(err, redis.TxFailedErr) {
			if err := backoff(ctx, attempt); err != nil {
				return catalog.ChangeProgress{}, false, err
			}
			continue
		}
		if err != nil {
			return catalog.ChangeProgress{}, false, err
		}
		return *out.public(), done, nil
	}
	return catalog.ChangeProgress{}, false, fmt.Errorf("backfill of %s: %w after %d attempts", bp, catalog.ErrConflict, s.opts.MaxRetries)
}

// moveIndexes queues the moves of e's index entries from layout from to
// layout to (entries both share stay).
func (t *tx) moveIndexes(from, to *catalog.Blueprint, e *catalog.Entity) {
	t.oldIx = indexEntries(t.oldIx[:0], from, e)
	t.curIx = indexEntries(t.curIx[:0], to, e)
	t.queueEntries(to.Identifier, t.oldIx, t.curIx)
}

// unsettled returns, per blueprint being backfilled, the properties whose
// indexes are incomplete.
func (s *Store) unsettled(ctx context.Context) (map[string]map[string]bool, error) {
	bps, err := s.Changes(ctx)
	if err != nil || len(bps) == 0 {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, bp := range bps {
		c, _, err := s.readChange(ctx, s.rdb, bp)
		if err != nil {
			return nil, err
		}
		if c == nil || c.Phase != catalog.PhaseBackfilling {
			continue
		}
		out[bp] = map[string]bool{}
		for _, p := range c.Properties {
			out[bp][p] = true
		}
	}
	return out, nil
}
