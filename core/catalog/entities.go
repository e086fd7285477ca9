package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxBatch is the most entities one Write call takes.
const MaxBatch = 10_000

// WriteMode says how a WriteItem treats an existing entity.
type WriteMode int

// Write modes.
const (
	// Upsert creates or replaces.
	Upsert WriteMode = iota
	// Create fails with ErrAlreadyExists when the entity exists.
	Create
	// Patch merges Patch (RFC 7396) into the existing entity.
	Patch
)

// Write outcomes.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusUnchanged = "unchanged"
	// StatusNewer: the stored entity changed after the item's
	// UnlessChangedSince and was kept.
	StatusNewer = "newer"
	StatusError = "error"
)

// WriteItem is one entity write. Entity.Blueprint names the blueprint; for
// Patch, Entity carries only Blueprint and Identifier and Patch the merge
// document.
type WriteItem struct {
	Mode   WriteMode
	Entity *Entity
	Patch  map[string]any
	// Raw, when set, is the entity's document as SplitBulk returned it,
	// decoded only when its chunk is written; Entity then holds what
	// chunking needs (PeekBulkItem) and the result carries no Entity. A
	// 10,000-entity request thus keeps one chunk of decoded entities
	// alive, not all of them: the garbage collector's work follows.
	Raw []byte
	// UnlessChangedSince, when set, keeps a stored entity that changed
	// after it (StatusNewer): a writer whose data was read at that time
	// (a resync) does not overwrite a newer change (a webhook's, a
	// watch's) with older state.
	UnlessChangedSince time.Time
}

// WriteResult is the outcome of one WriteItem.
type WriteResult struct {
	Index      int
	Blueprint  string
	Identifier string
	Status     string
	Err        error
	Entity     *Entity
}

// PutEntity upserts (or, with create, creates) one entity.
func (s *Service) PutEntity(ctx context.Context, e *Entity, create bool) (*Entity, bool, error) {
	mode := Upsert
	if create {
		mode = Create
	}
	res, err := s.Write(ctx, []WriteItem{{Mode: mode, Entity: e}})
	if err != nil {
		return nil, false, err
	}
	if res[0].Err != nil {
		return nil, false, res[0].Err
	}
	out, err := s.decorateOne(ctx, res[0].Entity)
	return out, res[0].Status == StatusCreated, err
}

// PatchEntity merges patch into an existing entity.
func (s *Service) PatchEntity(ctx context.Context, ref Ref, patch map[string]any) (*Entity, error) {
	res, err := s.Write(ctx, []WriteItem{{Mode: Patch, Entity: &Entity{Blueprint: ref.Blueprint, Identifier: ref.Identifier}, Patch: patch}})
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	return s.decorateOne(ctx, res[0].Entity)
}

// Write applies a batch of entity writes. It takes ownership of the items'
// entities (they are normalised in place). Items fail individually (bad
// input, dangling relation, missing blueprint) while the rest are written;
// relations between items of one batch resolve whatever their order.
// Unchanged entities are neither rewritten nor announced.
//
// A large batch is cut into chunks of about ChunkSize entities, each one
// atomic transaction; items that reference each other (or share an
// identifier) always share a chunk. Small transactions keep Redis
// responsive: one EXEC blocks it, and WATCH costs grow with the square of
// the watched keys.
func (s *Service) Write(ctx context.Context, items []WriteItem) ([]WriteResult, error) {
	if len(items) > MaxBatch {
		return nil, &ValidationError{Message: fmt.Sprintf("a batch holds at most %d entities, got %d", MaxBatch, len(items))}
	}
	results := make([]WriteResult, len(items))
	chunks := chunkItems(items, ChunkSize)
	// The next chunk is decoded while this one is written: decoding is
	// CPU, writing mostly waits on Redis.
	next := make(chan chunkItemsDecoded, 1)
	decode := func(chunk []int) { next <- decodeChunk(items, chunk, results) }
	go decode(chunks[0])
	for k := range chunks {
		c := <-next
		if k+1 < len(chunks) {
			go decode(chunks[k+1])
		}
		var res []WriteResult
		err := s.store.Update(ctx, func(tx Tx) error {
			w := &batch{s: s, tx: tx, items: c.items}
			var err error
			res, err = w.run(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			idx := c.index[i]
			r.Index = idx
			if items[idx].Raw != nil {
				r.Entity = nil
			}
			results[idx] = r
		}
	}
	return results, nil
}

// chunkItemsDecoded are the items of one chunk ready to write, and their
// indexes in the batch.
type chunkItemsDecoded struct {
	items []WriteItem
	index []int
}

// decodeChunk decodes the chunk's Raw items; one that does not decode gets
// its error result (results[i] for its own i only) and is left out.
func decodeChunk(items []WriteItem, chunk []int, results []WriteResult) chunkItemsDecoded {
	out := chunkItemsDecoded{items: make([]WriteItem, 0, len(chunk)), index: make([]int, 0, len(chunk))}
	for _, idx := range chunk {
		it := items[idx]
		if it.Raw != nil {
			e, err := DecodeBulkItem(it.Raw)
			if err != nil {
				results[idx] = WriteResult{Index: idx, Blueprint: it.Entity.Blueprint, Identifier: it.Entity.Identifier, Status: StatusError, Err: err}
				continue
			}
			it.Entity = e
		}
		out.items = append(out.items, it)
		out.index = append(out.index, idx)
	}
	return out
}

// ChunkSize is the target number of entities per write transaction.
const ChunkSize = 250

// chunkItems cuts a batch into chunks of about size item indexes, in
// dependency order: an item whose relation names another item of the batch
// comes in the same chunk or a later one, so by the time it is written its
// target exists. Items in a reference cycle, or sharing an identifier,
// always share a chunk. References are matched by identifier alone:
// over-grouping is harmless.
func chunkItems(items []WriteItem, size int) [][]int {
	if len(items) <= size {
		all := make([]int, len(items))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	byID := make(map[string][]int, len(items))
	for i, it := range items {
		byID[it.Entity.Identifier] = append(byID[it.Entity.Identifier], i)
	}
	edges := make([][]int, len(items))
	link := func(i int, v any) {
		for _, id := range RelationIDs(v) {
			edges[i] = append(edges[i], byID[id]...)
		}
	}
	for i, it := range items {
		// Same identifier: mutual edges put duplicates in one component.
		edges[i] = append(edges[i], byID[it.Entity.Identifier]...)
		for _, v := range it.Entity.Relations {
			link(i, v)
		}
		if rel, ok := it.Patch["relations"].(map[string]any); ok {
			for _, v := range rel {
				link(i, v)
			}
		}
	}
	var chunks [][]int
	var cur []int
	for _, comp := range DependencyOrder(edges) {
		if len(cur) > 0 && len(cur)+len(comp) > size {
			chunks = append(chunks, cur)
			cur = nil
		}
		cur = append(cur, comp...)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// DependencyOrder returns the strongly connected components of the graph
// edges (edges[v]: the vertices v has an edge to; Tarjan), each after
// every component it has an edge to: the order to write entities whose
// relations point at each other (the bulk API, the CLI's imports).
func DependencyOrder(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range edges[v] {
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			out = append(out, comp)
		}
	}
	for v := 0; v < n; v++ {
		if index[v] < 0 {
			visit(v)
		}
	}
	return out
}

// batch is one attempt at a Write inside a transaction.
type batch struct {
	s       *Service
	tx      Tx
	items   []WriteItem
	results []WriteResult
	bps     map[string]*CompiledBlueprint
	afters  []*Entity // candidate new state, nil for failed items
	befores []*Entity
	exists  map[Ref]bool // entities outside the batch known to exist or not
	hidden  map[Ref]bool // existing relation targets the actor may not read
	reads   *readChecks
}

func (w *batch) fail(i int, err error) {
	w.results[i].Status = StatusError
	w.results[i].Err = err
	w.afters[i] = nil
}

func (w *batch) run(ctx context.Context) ([]WriteResult, error) {
	n := len(w.items)
	w.results = make([]WriteResult, n)
	w.afters = make([]*Entity, n)
	refs := make([]Ref, n)
	for i, it := range w.items {
		refs[i] = Ref{Blueprint: it.Entity.Blueprint, Identifier: it.Entity.Identifier}
		w.results[i] = WriteResult{Index: i, Blueprint: refs[i].Blueprint, Identifier: refs[i].Identifier}
	}
	// Entities first: a store may read their blueprints along, and with
	// them whether the relation targets that the last known blueprints
	// predict exist (checkRelations reads any it missed).
	likely := w.likelyTargets(refs)
	befores, found, err := w.tx.Read(ctx, refs, likely)
	if err != nil {
		return nil, err
	}
	w.exists = make(map[Ref]bool, len(likely))
	for i, r := range likely {
		w.exists[r] = found[i]
	}
	if err := w.loadBlueprints(ctx); err != nil {
		return nil, err
	}
	w.befores = befores
	w.reads = w.s.newReadChecks(w.blueprint)
	seen := make(map[Ref]int, n)
	for i, it := range w.items {
		if first, dup := seen[refs[i]]; dup {
			w.fail(i, &ValidationError{Message: fmt.Sprintf("duplicate of item %d in this batch", first), Violations: []Violation{{Path: "/identifier", Message: "appears twice in the batch"}}})
			continue
		}
		seen[refs[i]] = i
		// Whatever the mode, an entity the actor may not read is answered
		// as a read would be: not found.
		hidden, err := w.reads.hidden(ctx, befores[i])
		if err != nil {
			return nil, err
		}
		if hidden {
			w.fail(i, fmt.Errorf("entity %s/%s: %w", refs[i].Blueprint, refs[i].Identifier, ErrNotFound))
			continue
		}
		if err := w.prepare(ctx, i, it); err != nil {
			return nil, err
		}
	}
	if err := w.authorize(ctx); err != nil {
		return nil, err
	}
	if err := w.checkRelations(ctx); err != nil {
		return nil, err
	}
	if err := w.derive(ctx); err != nil {
		return nil, err
	}
	w.stage(ctx)
	return w.results, nil
}

// blueprint returns a blueprint definition: the batch's own as loaded,
// others read through the transaction.
func (w *batch) blueprint(ctx context.Context, id string) (*Blueprint, error) {
	if c, ok := w.bps[id]; ok {
		if c == nil {
			return nil, fmt.Errorf("blueprint %q: %w", id, ErrNotFound)
		}
		return c.Blueprint, nil
	}
	return w.tx.Blueprint(ctx, id)
}

func (w *batch) loadBlueprints(ctx context.Context) error {
	w.bps = map[string]*CompiledBlueprint{}
	for _, it := range w.items {
		id := it.Entity.Blueprint
		if _, done := w.bps[id]; done {
			continue
		}
		bp, err := w.tx.Blueprint(ctx, id)
		if errors.Is(err, ErrNotFound) {
			w.bps[id] = nil
			continue
		}
		if err != nil {
			return err
		}
		c, err := w.s.compile(bp)
		if err != nil {
			return err
		}
		w.bps[id] = c
	}
	return nil
}

// prepare computes and validates the candidate new state of item i (an
// invalid item fails; the error is the transaction's).
func (w *batch) prepare(ctx context.Context, i int, it WriteItem) error {
	c := w.bps[it.Entity.Blueprint]
	if c == nil {
		w.fail(i, fmt.Errorf("blueprint %q: %w", it.Entity.Blueprint, ErrNotFound))
		return nil
	}
	before := w.befores[i]
	var after *Entity
	switch it.Mode {
	case Create:
		if before != nil {
			w.fail(i, fmt.Errorf("entity %s/%s: %w", it.Entity.Blueprint, it.Entity.Identifier, ErrAlreadyExists))
			return nil
		}
		after = it.Entity
	case Patch:
		if before == nil {
			w.fail(i, fmt.Errorf("entity %s/%s: %w", it.Entity.Blueprint, it.Entity.Identifier, ErrNotFound))
			return nil
		}
		var err error
		if after, err = mergePatch(before, it.Patch); err != nil {
			w.fail(i, err)
			return nil
		}
	default:
		after = it.Entity
	}
	after.Blueprint = it.Entity.Blueprint
	if err := c.ValidateEntity(after); err != nil {
		w.fail(i, err)
		return nil
	}
	w.afters[i] = after
	return w.s.checkPending(ctx, w.tx, c.Blueprint, after)
}

// checkRelations fails every item whose relation points at an entity that
// neither exists nor is written successfully by this batch; failing one
// item can strand others, so it repeats until nothing changes. A stored
// target the actor may not read counts as missing, with the same message,
// unless the entity already pointed at it.
func (w *batch) checkRelations(ctx context.Context) error {
	inBatch := map[Ref]int{}
	targets := make([][]relationTarget, len(w.afters))
	for i, a := range w.afters {
		if a != nil {
			inBatch[a.Ref()] = i
			targets[i] = w.targets(a)
		}
	}
	var unknown []Ref
	for _, ts := range targets {
		for _, t := range ts {
			if _, ok := inBatch[t.ref]; ok {
				continue
			}
			if _, known := w.exists[t.ref]; !known {
				w.exists[t.ref] = false // until read below; listed once
				unknown = append(unknown, t.ref)
			}
		}
	}
	if len(unknown) > 0 {
		_, found, err := w.tx.Read(ctx, nil, unknown)
		if err != nil {
			return err
		}
		for i, ok := range found {
			w.exists[unknown[i]] = ok
		}
	}
	if err := w.hideTargets(ctx, targets); err != nil {
		return err
	}
	for changed := true; changed; {
		changed = false
		for i, a := range w.afters {
			if a == nil {
				continue
			}
			var vs violations
			for _, t := range targets[i] {
				// A target written by this batch resolves while its item
				// succeeds; if that item failed, the stored version (if
				// any) is still there.
				if j, ok := inBatch[t.ref]; ok && (w.afters[j] != nil || w.befores[j] != nil) {
					continue
				}
				if w.exists[t.ref] && (!w.hidden[t.ref] || w.keeps(i, t.ref)) {
					continue
				}
				vs.add(t.path(), "%s %q does not exist", t.ref.Blueprint, t.ref.Identifier)
			}
			if err := vs.err("dangling relation"); err != nil {
				w.fail(i, err)
				changed = true
			}
		}
	}
	return nil
}

// hideTargets finds the stored relation targets the actor may not read:
// they are read only when their blueprint's reads are filtered for the
// actor.
func (w *batch) hideTargets(ctx context.Context, targets [][]relationTarget) error {
	if w.s.authz == nil {
		return nil
	}
	var refs []Ref
	seen := map[Ref]bool{}
	for _, ts := range targets {
		for _, t := range ts {
			if !w.exists[t.ref] {
				continue
			}
			bp, err := w.reads.filteredBlueprint(ctx, t.ref.Blueprint)
			if err != nil {
				return err
			}
			if bp != nil && !seen[t.ref] {
				seen[t.ref] = true
				refs = append(refs, t.ref)
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	ents, err := w.tx.Entities(ctx, refs)
	if err != nil {
		return err
	}
	w.hidden = map[Ref]bool{}
	for i, e := range ents {
		hidden, err := w.reads.hidden(ctx, e)
		if err != nil {
			return err
		}
		if e == nil {
			w.exists[refs[i]] = false
		}
		w.hidden[refs[i]] = hidden
	}
	return nil
}

// keeps reports whether item i's stored entity already points at ref:
// keeping a relation reveals nothing about its target.
func (w *batch) keeps(i int, ref Ref) bool {
	before := w.befores[i]
	if before == nil {
		return false
	}
	for _, t := range w.targets(before) {
		if t.ref == ref {
			return true
		}
	}
	return false
}

// relationTarget is one entity a relation points at.
type relationTarget struct {
	ref      Ref
	relation string
	index    int // in a many relation's list, -1 for a single relation
}

// path is the JSON pointer to the target in the entity document.
func (t relationTarget) path() string {
	if t.index < 0 {
		return pointer("relations", t.relation)
	}
	return pointer("relations", t.relation, strconv.Itoa(t.index))
}

func (w *batch) targets(e *Entity) []relationTarget {
	return relationTargets(w.bps[e.Blueprint].Blueprint, e)
}

// likelyTargets lists the relation targets outside the batch that the
// items' blueprints, as last compiled, name: the transaction's first read
// can then check them too. Patches and unknown blueprints are left to
// checkRelations.
func (w *batch) likelyTargets(refs []Ref) []Ref {
	inBatch := make(map[Ref]bool, len(refs))
	for _, r := range refs {
		inBatch[r] = true
	}
	var out []Ref
	seen := map[Ref]bool{}
	for _, it := range w.items {
		if it.Mode == Patch || len(it.Entity.Relations) == 0 {
			continue
		}
		bp := w.s.lastCompiled(it.Entity.Blueprint)
		if bp == nil {
			continue
		}
		for _, t := range relationTargets(bp, it.Entity) {
			if !inBatch[t.ref] && !seen[t.ref] {
				seen[t.ref] = true
				out = append(out, t.ref)
			}
		}
	}
	return out
}

// relationTargets lists the entities e's relations point at under bp
// (relations bp does not define are skipped: validation reports them).
func relationTargets(bp *Blueprint, e *Entity) []relationTarget {
	var out []relationTarget
	for _, name := range e.RelationNames() {
		rel, ok := bp.Relations[name]
		if !ok {
			continue
		}
		ids := e.RelationTargets(name)
		_, many := e.Relations[name].([]string)
		for k, id := range ids {
			index := -1
			if many {
				index = k
			}
			out = append(out, relationTarget{ref: Ref{Blueprint: rel.Target, Identifier: id}, relation: name, index: index})
		}
	}
	return out
}

// changedAt is the UpdatedAt of a change to before made at now: strictly
// later than before.UpdatedAt even when clocks stall or lag, so that
// UpdatedAt == CreatedAt means "never changed" (the store relies on it).
func changedAt(before *Entity, now time.Time) time.Time {
	if now.After(before.UpdatedAt) {
		return now
	}
	return before.UpdatedAt.Add(time.Microsecond)
}

// stage queues the successful writes, skipping unchanged entities.
func (w *batch) stage(ctx context.Context) {
	actor := ActorFrom(ctx)
	now := w.s.timestamp()
	for i, a := range w.afters {
		if a == nil {
			continue
		}
		before := w.befores[i]
		a.Datasource = actor.datasource()
		a.UpdatedAt, a.UpdatedBy = now, actor.ID
		a.CreatedAt, a.CreatedBy = now, actor.ID
		if before != nil {
			if since := w.items[i].UnlessChangedSince; !since.IsZero() && before.UpdatedAt.After(since) {
				w.results[i].Status = StatusNewer
				w.results[i].Entity = before
				continue
			}
			a.CreatedAt, a.CreatedBy = before.CreatedAt, before.CreatedBy
			a.UpdatedAt = changedAt(before, now)
			if sameContent(before, a) {
				w.results[i].Status = StatusUnchanged
				w.results[i].Entity = before
				continue
			}
		}
		typ, status := EventEntityCreated, StatusCreated
		if before != nil {
			typ, status = EventEntityUpdated, StatusUpdated
		}
		c := w.bps[a.Blueprint]
		ev := w.s.entityEvent(ctx, typ, a.Ref())
		w.tx.PutEntity(c.Blueprint, before, a, ev)
		w.s.derivedEffects(w.tx, c, before, a, ev)
		w.results[i].Status = status
		w.results[i].Entity = a
	}
}

// copy returns a deep copy (through JSON: entities are JSON values).
func (e *Entity) copy() *Entity {
	raw, _ := json.Marshal(e)
	var out Entity
	_ = json.Unmarshal(raw, &out)
	for name, v := range out.Relations {
		if list, ok := v.([]any); ok {
			out.Relations[name] = RelationIDs(list)
		}
	}
	return &out
}

// mergePatch applies an RFC 7396 merge patch to an entity's document.
func mergePatch(before *Entity, patch map[string]any) (*Entity, error) {
	var vs violations
	for _, k := range sortedKeys(patch) {
		if i, ok := fieldPositions[k]; !ok || !entityFields[i].fromClient {
			vs.add(pointer(k), "cannot be patched")
		}
	}
	if id, ok := patch["identifier"]; ok && id != before.Identifier {
		vs.add("/identifier", "cannot change the identifier")
	}
	if bp, ok := patch["blueprint"]; ok && bp != before.Blueprint {
		vs.add("/blueprint", "cannot change the blueprint")
	}
	if err := vs.err("invalid patch"); err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(before)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	for i := range entityFields {
		if entityFields[i].computed {
			delete(doc, entityFields[i].key)
		}
	}
	merged := applyMergePatch(doc, patch)
	raw, _ = json.Marshal(merged)
	out, err := DecodeEntity(raw)
	if err != nil {
		return nil, &ValidationError{Message: "invalid patch: " + err.Error()}
	}
	out.CreatedAt, out.CreatedBy = before.CreatedAt, before.CreatedBy
	return out, nil
}

func applyMergePatch(target any, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = applyMergePatch(t[k], v)
	}
	return t
}
