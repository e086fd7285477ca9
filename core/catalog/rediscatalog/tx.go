package rediscatalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
)

// tx is the catalog.Tx inside one WATCH: reads add their keys to the watch
// list (in the same round trip as the read), writes are queued for EXEC.
type tx struct {
	s   *Store
	rtx *redis.Tx
	w   *writes
	// bps are the blueprints Entities read along (and watched), nil for
	// a missing one: Blueprint answers them without another round trip.
	bps map[string]*catalog.Blueprint
	// changes are the changes in progress read along with bps (watched),
	// nil for none.
	changes map[string]*catalog.BlueprintChange
	// indexes maps the index keys written so far to their queued writes:
	// a batch's entities share most of them, so each key string is built
	// once per transaction. oldIx and curIx are reused for every entity.
	indexes      map[indexKeyID]*keyWrites
	oldIx, curIx []indexEntry
	scratch      []byte // PutEntity's event encoding
	// watching says a WATCH went out in a pipeline (which go-redis does
	// not track); execed that EXEC went out, which ends it.
	watching, execed bool
}

// release ends the transaction's WATCH when no EXEC did. go-redis sends
// UNWATCH on its own only for Tx.Watch; a connection returned to the pool
// still watching would fail the next transaction that borrows it as soon
// as any key it once watched changes.
func (t *tx) release(ctx context.Context, err error) {
	if !t.watching || (t.execed && err == nil) {
		return
	}
	_ = t.rtx.Unwatch(context.WithoutCancel(ctx)).Err()
}

// indexKeyID names an index key without building its string.
type indexKeyID struct {
	bp    string
	kind  indexKind
	prop  string
	value string
}

var _ catalog.Tx = (*tx)(nil)

// watchAndRun sends WATCH keys and then the read in one pipeline on the
// transaction's connection, so the read sees exactly what is watched.
func (t *tx) watchAndRun(ctx context.Context, watch []string, read func(p redis.Pipeliner)) error {
	t.watching = true
	_, err := t.rtx.Pipelined(ctx, func(p redis.Pipeliner) error {
		args := make([]any, 0, len(watch)+1)
		args = append(args, "WATCH")
		for _, k := range watch {
			args = append(args, k)
		}
		p.Do(ctx, args...)
		read(p)
		return nil
	})
	if err == redis.Nil {
		return nil
	}
	return err
}

func (t *tx) Blueprint(ctx context.Context, id string) (*catalog.Blueprint, error) {
	if bp, ok := t.bps[id]; ok {
		if bp == nil {
			return nil, fmt.Errorf("blueprint %q: %w", id, catalog.ErrNotFound)
		}
		return bp, nil
	}
	if err := t.readBlueprints(ctx, []string{id}, nil, nil); err != nil {
		return nil, err
	}
	return t.Blueprint(ctx, id)
}

// readBlueprints reads (and watches) blueprints ids and their changes in
// progress into the transaction's cache, in one round trip with the keys
// also watched and whatever queue (if not nil) reads.
func (t *tx) readBlueprints(ctx context.Context, ids, also []string, queue func(p redis.Pipeliner)) error {
	watch := make([]string, 0, len(also)+2*len(ids))
	watch = append(watch, also...)
	for _, id := range ids {
		watch = append(watch, t.s.keys.blueprint(id), t.s.keys.change(id))
	}
	if len(watch) == 0 {
		return nil
	}
	bpGets := make([]*redis.StringCmd, len(ids))
	chGets := make([]*redis.StringCmd, len(ids))
	if err := t.watchAndRun(ctx, watch, func(p redis.Pipeliner) {
		for i, id := range ids {
			bpGets[i] = p.Get(ctx, t.s.keys.blueprint(id))
			chGets[i] = p.Get(ctx, t.s.keys.change(id))
		}
		if queue != nil {
			queue(p)
		}
	}); err != nil {
		return fmt.Errorf("get blueprints: %w", err)
	}
	if t.bps == nil {
		t.bps = map[string]*catalog.Blueprint{}
		t.changes = map[string]*catalog.BlueprintChange{}
	}
	for i, id := range ids {
		bp, err := blueprintRead(id, bpGets[i])
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		c, err := changeRead(id, chGets[i])
		if err != nil {
			return err
		}
		t.bps[id], t.changes[id] = bp, c
	}
	return nil
}

// blueprintRead decodes a blueprint GET.
func blueprintRead(id string, get *redis.StringCmd) (*catalog.Blueprint, error) {
	var bp catalog.Blueprint
	found, err := readJSON(get, &bp)
	if err != nil {
		return nil, fmt.Errorf("blueprint %s: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("blueprint %q: %w", id, catalog.ErrNotFound)
	}
	return &bp, nil
}

// readJSON decodes the JSON value a GET read into v; found is false when
// the key does not exist.
func readJSON(get *redis.StringCmd, v any) (found bool, err error) {
	if errors.Is(get.Err(), redis.Nil) {
		return false, nil
	}
	if err := get.Err(); err != nil {
		return false, err
	}
	if err := json.Unmarshal([]byte(get.Val()), v); err != nil {
		return false, fmt.Errorf("decode: %w", err)
	}
	return true, nil
}

func (t *tx) Entities(ctx context.Context, refs []catalog.Ref) ([]*catalog.Entity, error) {
	ents, _, err := t.Read(ctx, refs, nil)
	return ents, err
}

// Read reads refs' entities, whether others exist and the blueprints of
// both (unless already read: whoever writes entities needs theirs, and a
// check of whether the actor may see a relation target needs the
// target's), all watched, in one round trip.
func (t *tx) Read(ctx context.Context, refs, others []catalog.Ref) ([]*catalog.Entity, []bool, error) {
	if len(refs)+len(others) > mgetChunk {
		ents, err := t.manyEntities(ctx, refs)
		if err != nil {
			return nil, nil, err
		}
		found, err := t.exist(ctx, others)
		return ents, found, err
	}
	entKeys, otherKeys := entityKeys(t.s.keys, refs), entityKeys(t.s.keys, others)
	var bpIDs []string
	for _, list := range [2][]catalog.Ref{refs, others} {
		for _, r := range list {
			if _, ok := t.bps[r.Blueprint]; !ok && !slices.Contains(bpIDs, r.Blueprint) {
				bpIDs = append(bpIDs, r.Blueprint)
			}
		}
	}
	var cmds, otherCmds []*redis.SliceCmd
	if err := t.readBlueprints(ctx, bpIDs, slices.Concat(entKeys, otherKeys), func(p redis.Pipeliner) {
		cmds = queueEntityReads(ctx, p, entKeys)
		otherCmds = queueEntityReads(ctx, p, otherKeys)
	}); err != nil {
		return nil, nil, fmt.Errorf("get entities: %w", err)
	}
	ents, err := entitiesRead(refs, cmds)
	return ents, existRead(otherCmds), err
}

// manyEntities reads more entities than one round trip should carry (a
// blueprint change reads all of its entities).
func (t *tx) manyEntities(ctx context.Context, refs []catalog.Ref) ([]*catalog.Entity, error) {
	cmds, err := t.watchedReads(ctx, refs)
	if err != nil {
		return nil, err
	}
	return entitiesRead(refs, cmds)
}

// exist reads (and watches) refs without decoding them: relation targets
// only need to be there.
func (t *tx) exist(ctx context.Context, refs []catalog.Ref) ([]bool, error) {
	cmds, err := t.watchedReads(ctx, refs)
	if err != nil {
		return nil, err
	}
	return existRead(cmds), nil
}

// existRead tells which documents queueEntityReads found.
func existRead(cmds []*redis.SliceCmd) []bool {
	var out []bool
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			_, found := v.(string)
			out = append(out, found)
		}
	}
	return out
}

// watchedReads watches refs' documents and reads them (MGET). Beyond one
// MGET's worth, the WATCH goes in chunks, each its own command: Redis 7.0
// checks each watched key against every key the client already watches,
// so one WATCH of 100,000 keys would block the server for seconds.
func (t *tx) watchedReads(ctx context.Context, refs []catalog.Ref) ([]*redis.SliceCmd, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	ks := entityKeys(t.s.keys, refs)
	var cmds []*redis.SliceCmd
	read := func(p redis.Pipeliner) { cmds = queueEntityReads(ctx, p, ks) }
	if len(refs) <= mgetChunk {
		if err := t.watchAndRun(ctx, ks, read); err != nil {
			return nil, fmt.Errorf("get entities: %w", err)
		}
		return cmds, nil
	}
	for start := 0; start < len(ks); start += mgetChunk {
		if err := t.rtx.Watch(ctx, ks[start:min(start+mgetChunk, len(ks))]...).Err(); err != nil {
			return nil, fmt.Errorf("watch entities: %w", err)
		}
	}
	if _, err := t.rtx.Pipelined(ctx, func(p redis.Pipeliner) error { read(p); return nil }); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("get entities: %w", err)
	}
	return cmds, nil
}

func (t *tx) Referrers(ctx context.Context, ref catalog.Ref) ([]catalog.Reference, error) {
	bps, err := t.blueprints(ctx)
	if err != nil {
		return nil, err
	}
	kinds := incoming(bps, ref.Blueprint)
	keys := make([]string, len(kinds))
	for i, kind := range kinds {
		keys[i] = t.s.keys.referrers(ref.Blueprint, ref.Identifier, kind.From, kind.Name)
	}
	cmds := make([]*redis.StringSliceCmd, len(keys))
	if len(keys) > 0 {
		if err := t.watchAndRun(ctx, keys, func(p redis.Pipeliner) {
			for i, k := range keys {
				cmds[i] = p.SMembers(ctx, k)
			}
		}); err != nil {
			return nil, fmt.Errorf("referrers of %s/%s: %w", ref.Blueprint, ref.Identifier, err)
		}
	}
	members := make([][]string, len(cmds))
	for i, c := range cmds {
		members[i] = c.Val()
	}
	return referrersFrom(kinds, members), nil
}

// blueprints reads every blueprint, watching the set of them and each
// definition: a relation added meanwhile retries the transaction.
func (t *tx) blueprints(ctx context.Context) ([]*catalog.Blueprint, error) {
	var ids *redis.StringSliceCmd
	if err := t.watchAndRun(ctx, []string{t.s.keys.blueprints()}, func(p redis.Pipeliner) { ids = p.SMembers(ctx, t.s.keys.blueprints()) }); err != nil {
		return nil, fmt.Errorf("list blueprints: %w", err)
	}
	out := make([]*catalog.Blueprint, 0, len(ids.Val()))
	for _, id := range ids.Val() {
		bp, err := t.Blueprint(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, bp)
	}
	return out, nil
}

func (t *tx) EntityCount(ctx context.Context, bp string) (int, error) {
	key := t.s.keys.ids(bp)
	var n *redis.IntCmd
	if err := t.watchAndRun(ctx, []string{key}, func(p redis.Pipeliner) { n = p.ZCard(ctx, key) }); err != nil {
		return 0, fmt.Errorf("count %s entities: %w", bp, err)
	}
	return int(n.Val()), nil
}

func (t *tx) PutBlueprint(bp *catalog.Blueprint, ev catalog.Event) {
	stored := *bp
	stored.Change = nil
	raw, _ := json.Marshal(&stored)
	t.w.set(t.s.keys.blueprint(bp.Identifier), raw)
	t.w.sadd(t.s.keys.blueprints(), bp.Identifier)
	t.w.event(encodeEvent(ev), "", nil)
}

func (t *tx) DeleteBlueprint(id string, ev catalog.Event) {
	t.w.del(t.s.keys.blueprint(id))
	t.w.srem(t.s.keys.blueprints(), id)
	t.w.event(encodeEvent(ev), "", nil)
}

func (t *tx) PutEntity(bp *catalog.Blueprint, before, after *catalog.Entity, ev catalog.Event) {
	t.putEntity(bp, before, after, ev, false)
}

// PutDerived is PutEntity for a version that differs from before only in
// derived values (and UpdatedAt): only their index entries are compared.
func (t *tx) PutDerived(bp *catalog.Blueprint, before, after *catalog.Entity, ev catalog.Event) {
	t.putEntity(bp, before, after, ev, true)
}

func (t *tx) putEntity(bp *catalog.Blueprint, before, after *catalog.Entity, ev catalog.Event, derivedOnly bool) {
	k := t.s.keys
	id := after.Identifier
	// The document is encoded once, inside its event; the SET stores that
	// part of the event's buffer.
	ev.Before = marshalOrNull(before)
	var start, end int
	t.scratch, start, end = appendEvent(t.scratch[:0], ev, after)
	event := bytes.Clone(t.scratch)
	t.w.set(k.entity(bp.Identifier, id), event[start:end:end])
	if before == nil {
		t.w.zaddLex(k.ids(bp.Identifier), id)
	}
	if derivedOnly && before != nil && t.changes[bp.Identifier] == nil {
		t.oldIx = derivedIndexEntries(t.oldIx[:0], before)
		t.curIx = derivedIndexEntries(t.curIx[:0], after)
		t.queueEntries(bp.Identifier, t.oldIx, t.curIx)
	} else {
		t.queueIndexDiff(bp, before, bp, after)
		t.queueEdgeDiff(bp, before, after)
	}
	if ev.Type == "" {
		return // a silent write (derived values): no event, no history
	}
	if before == nil {
		// A creation goes to the stream only; the history gets it with the
		// first change (historyPrelude), so bulk-loaded entities that never
		// change cost no history key.
		t.w.event(event, "", nil)
		return
	}
	t.w.event(event, k.history(bp.Identifier, id), historyPrelude(before))
}

func (t *tx) DeleteEntity(bp *catalog.Blueprint, before *catalog.Entity, ev catalog.Event) {
	k := t.s.keys
	id := before.Identifier
	t.w.del(k.entity(bp.Identifier, id))
	t.w.zrem(k.ids(bp.Identifier), id)
	ev.Before, ev.After = marshalOrNull(before), json.RawMessage("null")
	t.queueIndexDiff(bp, before, bp, nil)
	t.queueEdgeDiff(bp, before, nil)
	t.w.event(encodeEvent(ev), k.history(bp.Identifier, id), historyPrelude(before))
}

// queueIndexDiff queues the index changes from before (indexed under
// oldBP) to after (under newBP). While the blueprint's indexes are being
// backfilled, before may still be indexed under the earlier layout:
// those entries go too.
func (t *tx) queueIndexDiff(oldBP *catalog.Blueprint, before *catalog.Entity, newBP *catalog.Blueprint, after *catalog.Entity) {
	t.oldIx = indexEntries(t.oldIx[:0], oldBP, before)
	t.curIx = indexEntries(t.curIx[:0], newBP, after)
	if c := t.changes[oldBP.Identifier]; c != nil && c.Phase == catalog.PhaseBackfilling && before != nil {
		// Not knowing whether before's entries were moved yet, remove
		// them in both layouts and add all of after's.
		t.oldIx = indexEntries(t.oldIx, c.From, before)
		remove, _ := indexDiff(t.oldIx, t.curIx)
		t.queueMoves(newBP.Identifier, remove, t.curIx)
		return
	}
	t.queueEntries(newBP.Identifier, t.oldIx, t.curIx)
}

// queueEntries queues the index changes from entries old to cur of one
// entity of blueprint bp.
func (t *tx) queueEntries(bp string, old, cur []indexEntry) {
	remove, add := indexDiff(old, cur)
	t.queueMoves(bp, remove, add)
}

// queueMoves queues the removal of entries remove and the addition of
// entries add.
func (t *tx) queueMoves(bp string, remove, add []indexEntry) {
	for _, e := range remove {
		kw := t.indexWrites(bp, e)
		switch e.kind {
		case numIndex, pairIndex:
			kw.zrems = append(kw.zrems, e.member)
		default:
			kw.srems = append(kw.srems, e.member)
		}
	}
	for _, e := range add {
		kw := t.indexWrites(bp, e)
		switch e.kind {
		case numIndex:
			kw.zadds = append(kw.zadds, redis.Z{Score: e.score, Member: e.member})
		case valuesIndex:
			kw.zaddOnce(e.member)
		case pairIndex:
			kw.zadds = append(kw.zadds, redis.Z{Member: e.member})
		default:
			kw.sadds = append(kw.sadds, e.member)
		}
	}
}

// indexWrites returns the queued writes of the index key holding e.
func (t *tx) indexWrites(bp string, e indexEntry) *keyWrites {
	id := indexKeyID{bp: bp, kind: e.kind, prop: e.prop, value: e.value}
	if kw, ok := t.indexes[id]; ok {
		return kw
	}
	if t.indexes == nil {
		t.indexes = map[indexKeyID]*keyWrites{}
	}
	kw := t.w.key(t.s.keys.indexKey(bp, e))
	t.indexes[id] = kw
	return kw
}

// edges lists an entity's outgoing relation edges as (referrers key, member).
func (t *tx) edges(bp *catalog.Blueprint, e *catalog.Entity) map[[2]string]struct{} {
	out := map[[2]string]struct{}{}
	t.forEdges(bp, e, func(key, member string) { out[[2]string{key, member}] = struct{}{} })
	return out
}

// forEdges calls fn with each outgoing relation edge of e (none for nil).
func (t *tx) forEdges(bp *catalog.Blueprint, e *catalog.Entity, fn func(key, member string)) {
	if e == nil {
		return
	}
	for name, v := range e.Relations {
		rel, ok := bp.Relations[name]
		if !ok {
			continue
		}
		for _, to := range catalog.RelationIDs(v) {
			fn(t.s.keys.referrers(rel.Target, to, e.Blueprint, name), e.Identifier)
		}
	}
}

// queueEdgeDiff keeps the reverse relation index in step with the
// entity's relations. Relation targets come from the blueprint: the service
// refuses to retarget a relation while entities use it.
func (t *tx) queueEdgeDiff(bp *catalog.Blueprint, before, after *catalog.Entity) {
	if before == nil { // a creation: every edge is new
		t.forEdges(bp, after, func(key, member string) { t.w.sadd(key, member) })
		return
	}
	old := t.edges(bp, before)
	cur := t.edges(bp, after)
	for e := range old {
		if _, ok := cur[e]; !ok {
			t.w.srem(e[0], e[1])
		}
	}
	for e := range cur {
		if _, ok := old[e]; !ok {
			t.w.sadd(e[0], e[1])
		}
	}
}

func marshalOrNull(e *catalog.Entity) json.RawMessage {
	if e == nil {
		return json.RawMessage("null")
	}
	return catalog.MarshalEntity(e)
}

// historyPrelude returns the creation event of an entity that was never
// changed since it was created (CreatedAt == UpdatedAt): its history list
// does not hold that event yet. The entity as stored is exactly what was
// created.
func historyPrelude(e *catalog.Entity) []byte {
	if !e.CreatedAt.Equal(e.UpdatedAt) {
		return nil
	}
	return encodeEvent(createdEvent(e))
}

// createdEvent reconstructs the creation event of a never-changed entity.
func createdEvent(e *catalog.Entity) catalog.Event {
	return catalog.Event{
		Type: catalog.EventEntityCreated, Blueprint: e.Blueprint, Identifier: e.Identifier,
		Before: json.RawMessage("null"), After: marshalOrNull(e), Actor: e.CreatedBy, At: e.CreatedAt,
	}
}
