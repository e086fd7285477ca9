package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/mapping"
	"github.com/portico-dev/portico/internal/jqeval"
	"github.com/portico-dev/portico/pdk"
)

// Sync engine tuning.
const (
	syncLockTTL      = 2 * time.Minute
	progressInterval = 250 * time.Millisecond
	searchPage       = catalog.MaxSearchLimit
	retryRounds      = 3
)

// Triggers of a sync.
const (
	TriggerAPI      = "api"
	TriggerSchedule = "schedule"
	// TriggerInstall: the first resync of a new installation, started by
	// the install itself so that its catalog fills without another call.
	TriggerInstall = "install"
)

// StartResync starts a full resync of installation id in the background and
// returns its initial state. When one is already running it returns that
// one instead.
func (m *Manager) StartResync(ctx context.Context, id, trigger string) (*Sync, error) {
	if _, err := m.store.Installation(ctx, id); err != nil {
		return nil, err
	}
	owner := newID()
	ok, err := m.store.AcquireLock(ctx, id, owner, syncLockTTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		if sid, err := m.store.LastSync(ctx, id); err == nil && sid != "" {
			if s, err := m.store.Sync(ctx, id, sid); err == nil && s.Status == SyncRunning {
				return s, nil
			}
		}
		return nil, ErrSyncRunning
	}
	// The lock is given back even when the caller gave up meanwhile:
	// otherwise it would block every resync until it expires.
	unlock := func() { _ = m.store.ReleaseLock(context.WithoutCancel(ctx), id, owner) }
	l, release, err := m.acquire(ctx, id)
	if err != nil {
		unlock()
		return nil, err
	}
	s := &Sync{
		ID: newID(), Integration: id, Plugin: l.plugin.Ref(), Trigger: trigger,
		Status: SyncRunning, Errors: []SyncError{}, StartedAt: time.Now().UTC(),
	}
	if err := m.store.PutSync(ctx, s, m.opts.SyncRetention); err == nil {
		err = m.store.SetLastSync(ctx, id, s.ID)
	}
	if err != nil {
		release()
		unlock()
		return nil, fmt.Errorf("record sync: %w", err)
	}
	snapshot := *s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer release()
		m.runSync(l, s, owner)
	}()
	return &snapshot, nil
}

// Sync returns one sync of installation id.
func (m *Manager) Sync(ctx context.Context, id, sid string) (*Sync, error) {
	return m.store.Sync(ctx, id, sid)
}

// Resync runs a full resync of installation id and waits for it.
func (m *Manager) Resync(ctx context.Context, id string) (*Sync, error) {
	s, err := m.StartResync(ctx, id, TriggerAPI)
	if err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if s, err = m.store.Sync(ctx, id, s.ID); err != nil || s.Status != SyncRunning {
			return s, err
		}
	}
}

// syncRun is the state of one running sync.
type syncRun struct {
	m      *Manager
	l      *live
	ctx    context.Context // acts as the integration
	mu     sync.Mutex      // guards s, seen, retry
	s      *Sync
	seen   map[catalog.Ref]struct{}
	ok     map[catalog.Ref]struct{} // written or unchanged: carries our datasource
	retry  []pending
	failed bool
}

// pending is one mapped entity and the raw item it came from; err is why
// its last write failed.
type pending struct {
	kind   string
	item   any
	entity *catalog.Entity
	err    SyncError
}

func (m *Manager) runSync(l *live, s *Sync, owner string) {
	id := l.inst.ID
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	go m.heartbeat(ctx, cancel, id, owner)
	r := &syncRun{
		m: m, l: l, ctx: l.as(ctx), s: s,
		seen: map[catalog.Ref]struct{}{}, ok: map[catalog.Ref]struct{}{},
	}
	start := time.Now()
	saverCtx, stopSaver := context.WithCancel(ctx)
	saverDone := make(chan struct{})
	go func() { defer close(saverDone); r.saveEvery(saverCtx, progressInterval) }()
	r.fetchAndWrite()
	r.retryFailed()
	r.reconcile()
	stopSaver()
	<-saverDone // no progress write may land after the final one
	r.mu.Lock()
	end := time.Now().UTC()
	s.EndedAt = &end
	s.Status = SyncSucceeded
	if r.failed {
		s.Status = SyncFailed
	}
	r.mu.Unlock()
	// Release the lock first: whoever sees this sync ended can start another.
	if err := m.store.ReleaseLock(context.WithoutCancel(ctx), id, owner); err != nil {
		m.log.Warn("release sync lock", "integration", id, "err", err)
	}
	if err := m.store.PutSync(context.WithoutCancel(ctx), s, m.opts.SyncRetention); err != nil {
		m.log.Error("record sync", "integration", id, "sync", s.ID, "err", err)
	}
	m.log.Info("resync done", "integration", id, "sync", s.ID, "status", s.Status, "items", s.Items,
		"upserts", s.Upserts, "unchanged", s.Unchanged, "deletes", s.Deletes, "errors", s.ErrorCount,
		"deletionSkipped", s.DeletionSkipped, "took", time.Since(start).Round(time.Millisecond))
}

// heartbeat keeps the sync lock while the sync runs; losing it cancels
// the sync.
func (m *Manager) heartbeat(ctx context.Context, cancel context.CancelFunc, id, owner string) {
	t := time.NewTicker(syncLockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.store.RefreshLock(ctx, id, owner, syncLockTTL); err != nil {
				m.log.Error("lost sync lock", "integration", id, "err", err)
				cancel()
				return
			}
		}
	}
}

// page is one page of raw items of a kind, decoded by the writer that
// maps it: the fetch loop, which bounds a resync, only calls the plugin.
type page struct {
	kind  string
	items []json.RawMessage
}

// fetchAndWrite pages through every mapped kind (one plugin call at a
// time) while writers map and write the pages already fetched.
func (r *syncRun) fetchAndWrite() {
	pages := make(chan page, r.m.opts.Writers)
	var wg sync.WaitGroup
	for range r.m.opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pages {
				r.writePage(p)
			}
		}()
	}
	r.fetch(pages)
	close(pages)
	wg.Wait()
}

func (r *syncRun) fetch(pages chan<- page) {
	l := r.l
	for _, k := range l.plugin.Info.Kinds {
		if !l.mapper.HasKind(k.Kind) {
			continue
		}
		cursor := ""
		for !r.hasFailed() {
			res, err := l.integration.Resync(r.ctx, pdk.ResyncRequest{Kind: k.Kind, Cursor: cursor, Config: l.inst.Spec.Config})
			if err == nil && r.ctx.Err() != nil {
				err = r.ctx.Err()
			}
			if err != nil {
				r.fail(SyncError{Kind: k.Kind, Message: fmt.Sprintf("resync page %d: %v", r.pagesDone()+1, err)})
				return
			}
			r.mu.Lock()
			r.s.Pages++
			r.s.Items += len(res.Items)
			r.mu.Unlock()
			pages <- page{kind: k.Kind, items: res.Items}
			if res.Cursor == "" {
				break
			}
			if res.Cursor == cursor {
				r.fail(SyncError{Kind: k.Kind, Message: "plugin returned the same cursor twice"})
				return
			}
			cursor = res.Cursor
		}
	}
}

func (r *syncRun) pagesDone() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.Pages
}

// writePage maps a page and writes its entities.
func (r *syncRun) writePage(p page) {
	batch := make([]pending, 0, len(p.items))
	for _, raw := range p.items {
		item, err := mapping.Decode(raw)
		if err != nil {
			r.addError(SyncError{Kind: p.kind, Message: err.Error()})
			continue
		}
		ents, err := r.l.mapper.Map(p.kind, item)
		if errors.Is(err, jqeval.ErrLimit) {
			// Every further item would spend the same bound: fail the resync.
			r.fail(SyncError{Kind: p.kind, Message: err.Error()})
			return
		}
		if err != nil {
			r.addError(SyncError{Kind: p.kind, Message: err.Error()})
			continue
		}
		for _, e := range ents {
			batch = append(batch, pending{kind: p.kind, item: item, entity: e})
		}
	}
	for len(batch) > 0 {
		n := min(len(batch), catalog.MaxBatch)
		r.write(batch[:n])
		batch = batch[n:]
	}
}

// write upserts a batch (duplicates: the last one wins) and records the
// outcome; failures are kept for a retry round, except refusals (outside
// the lane, another installation's entity), which no retry changes. It
// returns how many entities were written or found unchanged.
func (r *syncRun) write(batch []pending) int {
	batch = r.inLane(dedupe(batch))
	if len(batch) == 0 {
		return 0
	}
	items := make([]catalog.WriteItem, len(batch))
	r.mu.Lock()
	for i, p := range batch {
		// A webhook, the watch or an action may have written a newer state
		// since this resync began listing: keep it.
		items[i] = catalog.WriteItem{Mode: catalog.Upsert, Entity: p.entity, UnlessChangedSince: r.s.StartedAt}
		r.seen[p.entity.Ref()] = struct{}{}
	}
	r.mu.Unlock()
	if r.ctx.Err() != nil {
		r.fail(SyncError{Message: r.ctx.Err().Error()})
		return 0
	}
	results, err := r.m.cat.Write(r.ctx, items)
	if err != nil {
		r.fail(SyncError{Message: "write entities: " + err.Error()})
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	succeeded := 0
	for i, res := range results {
		ref := catalog.Ref{Blueprint: res.Blueprint, Identifier: res.Identifier}
		switch res.Status {
		case catalog.StatusCreated, catalog.StatusUpdated:
			r.s.Upserts++
		case catalog.StatusUnchanged:
			r.s.Unchanged++
		case catalog.StatusNewer:
			r.s.Kept++
		default:
			if errors.Is(res.Err, catalog.ErrForbidden) {
				r.s.addError(SyncError{Kind: batch[i].kind, Blueprint: ref.Blueprint, Identifier: ref.Identifier, Message: res.Err.Error()})
				continue
			}
			r.retry = append(r.retry, pending{kind: batch[i].kind, item: batch[i].item, err: SyncError{
				Kind: batch[i].kind, Blueprint: ref.Blueprint, Identifier: ref.Identifier, Message: errorMessage(res.Err)}})
			continue
		}
		succeeded++
		r.ok[ref] = struct{}{}
	}
	return succeeded
}

// inLane drops (as errors) the entities outside the installation's lane.
func (r *syncRun) inLane(batch []pending) []pending {
	return slices.DeleteFunc(batch, func(p pending) bool {
		err := checkLane(r.l.actor, p.entity.Blueprint)
		if err != nil {
			r.addError(SyncError{Kind: p.kind, Blueprint: p.entity.Blueprint, Identifier: p.entity.Identifier, Message: err.Error()})
		}
		return err != nil
	})
}

func errorMessage(err error) string {
	if err == nil {
		return "write failed"
	}
	return err.Error()
}

func dedupe(batch []pending) []pending {
	last := make(map[catalog.Ref]int, len(batch))
	for i, p := range batch {
		last[p.entity.Ref()] = i
	}
	if len(last) == len(batch) {
		return batch
	}
	out := batch[:0:0]
	for i, p := range batch {
		if last[p.entity.Ref()] == i {
			out = append(out, p)
		}
	}
	return out
}

// retryFailed writes the failed items again (re-mapped: a write consumes
// its entity) while that makes progress: a relation may point at an entity
// written by a later page or by a concurrent writer. What still fails is
// recorded as errors.
func (r *syncRun) retryFailed() {
	for range retryRounds {
		r.mu.Lock()
		retry := r.retry
		r.retry = nil
		r.mu.Unlock()
		if len(retry) == 0 {
			return
		}
		var batch []pending
		for _, p := range retry {
			ents, err := r.l.mapper.Map(p.kind, p.item)
			if err != nil {
				continue // it mapped the first time; mapping is deterministic
			}
			for _, e := range ents {
				batch = append(batch, pending{kind: p.kind, item: p.item, entity: e})
			}
		}
		succeeded := 0
		for len(batch) > 0 {
			n := min(len(batch), catalog.MaxBatch)
			succeeded += r.write(batch[:n])
			batch = batch[n:]
		}
		if succeeded == 0 {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.retry {
		r.s.addError(p.err)
	}
	r.retry = nil
}

// reconcile deletes the datasource's entities the resync did not see,
// unless the resync failed or the deletions would exceed the threshold.
func (r *syncRun) reconcile() {
	m, id := r.m, r.l.inst.ID
	r.mu.Lock()
	failed := r.failed
	r.mu.Unlock()
	if failed {
		r.skipDeletion("the resync failed")
		return
	}
	total, err := m.countEntities(r.ctx, id)
	if err != nil {
		r.fail(SyncError{Message: "reconcile: " + err.Error()})
		r.skipDeletion("could not list the integration's entities")
		return
	}
	r.mu.Lock()
	written := len(r.ok)
	retried := r.s.ErrorCount
	r.mu.Unlock()
	if total == written && retried == 0 {
		return // every entity of ours was just written: nothing is stale
	}
	// Entities changed since the sync started (webhooks) are not stale.
	refs, err := m.entityRefs(r.ctx, id, r.s.StartedAt)
	if err != nil {
		r.fail(SyncError{Message: "reconcile: " + err.Error()})
		r.skipDeletion("could not list the integration's entities")
		return
	}
	var stale []catalog.Ref
	for _, ref := range refs {
		if _, ok := r.seen[ref]; ok {
			continue
		}
		if err := checkLane(r.l.actor, ref.Blueprint); err != nil {
			// Written before its lane shrank: kept, and said so.
			r.addError(SyncError{Blueprint: ref.Blueprint, Identifier: ref.Identifier, Message: "delete: " + err.Error()})
			continue
		}
		stale = append(stale, ref)
	}
	if len(stale) == 0 {
		return
	}
	threshold := DefaultDeletionThreshold
	if t := r.l.inst.Spec.DeletionThreshold; t != nil {
		threshold = *t
	}
	if ratio := float64(len(stale)) / float64(total); ratio > threshold {
		r.skipDeletion(fmt.Sprintf("would delete %d of %d entities (%.0f%%), above the deletion threshold of %.0f%%",
			len(stale), total, ratio*100, threshold*100))
		return
	}
	deleted, errs := m.deleteEntities(r.ctx, stale)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Deletes += deleted
	for _, err := range errs {
		r.s.addError(SyncError{Message: "delete: " + err.Error()})
	}
}

func (r *syncRun) skipDeletion(reason string) {
	r.mu.Lock()
	r.s.DeletionSkipped = reason
	r.mu.Unlock()
}

func (r *syncRun) addError(e SyncError) {
	r.mu.Lock()
	r.s.addError(e)
	r.mu.Unlock()
}

func (r *syncRun) hasFailed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// fail records an error that makes the sync fail (nothing gets deleted).
func (r *syncRun) fail(e SyncError) {
	r.mu.Lock()
	r.failed = true
	r.s.addError(e)
	r.mu.Unlock()
}

// saveEvery stores the sync's progress every interval until ctx ends, so
// that any replica can show it while it runs.
func (r *syncRun) saveEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		snapshot := *r.s
		snapshot.Errors = append([]SyncError(nil), r.s.Errors...)
		r.mu.Unlock()
		if err := r.m.store.PutSync(ctx, &snapshot, r.m.opts.SyncRetention); err != nil && ctx.Err() == nil {
			r.m.log.Warn("record sync progress", "integration", r.l.inst.ID, "err", err)
		}
	}
}

// datasourceQuery matches the entities of installation id.
func datasourceQuery(id string) *catalog.Rule {
	return &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{
		{Property: "$datasource", Operator: "=", Value: Datasource(id)},
	}}
}

// countEntities counts the entities of installation id (a system read: the
// query names the installation's datasource).
func (m *Manager) countEntities(ctx context.Context, id string) (int, error) {
	page, err := m.cat.Search(systemCtx(ctx, id), catalog.SearchQuery{Query: datasourceQuery(id), Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("count entities of %s: %w", id, err)
	}
	return page.Total, nil
}

// entityRefs lists the entities of installation id last updated before
// `before` (zero: all), as countEntities reads them.
func (m *Manager) entityRefs(ctx context.Context, id string, before time.Time) ([]catalog.Ref, error) {
	ctx = systemCtx(ctx, id)
	var out []catalog.Ref
	cursor := ""
	for {
		q := catalog.SearchQuery{Query: datasourceQuery(id), Limit: searchPage,
			Sort: []catalog.SortField{{Property: "$identifier"}}}
		if cursor != "" {
			q.Cursor = &cursor
		}
		page, err := m.cat.Search(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list entities of %s: %w", id, err)
		}
		for _, e := range page.Entities {
			if before.IsZero() || e.UpdatedAt.Before(before) {
				out = append(out, e.Ref())
			}
		}
		if page.Next == "" {
			return out, nil
		}
		cursor = page.Next
	}
}

// deleteEntities deletes refs without cascading; an entity something
// required still points at is retried after the others (its referrer may
// be among them).
func (m *Manager) deleteEntities(ctx context.Context, refs []catalog.Ref) (int, []error) {
	deleted := 0
	for round := 0; len(refs) > 0; round++ {
		var inUse []catalog.Ref
		var errs []error
		for _, ref := range refs {
			_, err := m.cat.DeleteEntity(ctx, ref, false)
			switch {
			case err == nil:
				deleted++
			case errors.Is(err, catalog.ErrNotFound):
			case errors.Is(err, catalog.ErrInUse):
				inUse = append(inUse, ref)
				errs = append(errs, fmt.Errorf("%s/%s: %w", ref.Blueprint, ref.Identifier, err))
			default:
				errs = append(errs, fmt.Errorf("%s/%s: %w", ref.Blueprint, ref.Identifier, err))
			}
		}
		if len(inUse) == 0 || len(inUse) == len(refs) || round == retryRounds {
			return deleted, errs
		}
		refs = inUse
	}
	return deleted, nil
}
