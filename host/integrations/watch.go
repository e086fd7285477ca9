package integrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// Watch tuning. One process watches an installation at a time: it holds
// the installation's watch lease (Options.WatchLease), which it refreshes
// between calls and which expires when the process dies, so another
// replica takes over.
const (
	watchMaxWait    = 20 * time.Second // a watch call's longest WaitMs
	watchBackoffMin = time.Second
	watchBackoffMax = 15 * time.Second
	// watchStatusEvery bounds how often a busy watch records its status.
	watchStatusEvery = time.Second
)

// TriggerWatch marks a resync a plugin asked for from its watch (it knows
// it missed changes).
const TriggerWatch = "watch"

// Watch states.
const (
	WatchWatching = "watching"
	WatchRetrying = "retrying"
)

// WatchStatus is the live watch of an installation whose plugin pushes
// changes (pdk.Info.Watch), as recorded by the process running it.
type WatchStatus struct {
	State       string     `json:"state"`
	Since       time.Time  `json:"since"`
	LastEventAt *time.Time `json:"lastEventAt,omitempty"`
	// Events counts the upserts and deletes applied since Since.
	Events int64 `json:"events"`
	// Errors counts the items the catalog refused or did not map.
	Errors int64  `json:"errors"`
	Error  string `json:"error,omitempty"`
	// Cursor is the plugin's position at Revision of the installation:
	// a process taking the watch over continues from it.
	Cursor   string `json:"cursor,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// watchLock names the watch lease of installation id (ids have no ':').
func watchLock(id string) string { return "watch:" + id }

// superviseWatches keeps one watcher per installation whose plugin
// watches, until ctx ends: it looks at the installations every
// ScheduleTick, and at once after an install (wakeWatches).
func (m *Manager) superviseWatches(ctx context.Context) {
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
	}()
	t := time.NewTicker(m.opts.ScheduleTick)
	defer t.Stop()
	for {
		m.reconcileWatches(ctx, running)
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case <-m.watchWake:
		case <-t.C:
		}
	}
}

// wakeWatches makes the supervisor look at the installations now.
func (m *Manager) wakeWatches() {
	select {
	case m.watchWake <- struct{}{}:
	default:
	}
}

// reconcileWatches starts the missing watchers and stops those whose
// installation is gone or no longer watches.
func (m *Manager) reconcileWatches(ctx context.Context, running map[string]context.CancelFunc) {
	all, err := m.store.Installations(ctx)
	if err != nil {
		m.log.Warn("watches: list integrations", "err", err)
		return
	}
	want := map[string]bool{}
	for _, inst := range all {
		p, err := m.reg.Resolve(ctx, inst.Plugin)
		if err != nil || !p.Info.Watch {
			continue
		}
		want[inst.ID] = true
		if running[inst.ID] == nil {
			wctx, stop := context.WithCancel(ctx)
			running[inst.ID] = stop
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.watch(wctx, inst.ID)
			}()
		}
	}
	for id, stop := range running {
		if !want[id] {
			stop()
			delete(running, id)
		}
	}
}

// watch runs installation id's watch whenever this process holds its
// lease, until ctx ends.
func (m *Manager) watch(ctx context.Context, id string) {
	owner := newID()
	for {
		ok, err := m.store.AcquireLock(ctx, watchLock(id), owner, m.opts.WatchLease)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("watch lease", "integration", id, "err", err)
		}
		if ok {
			m.watchHolding(ctx, id, owner)
			_ = m.store.ReleaseLock(context.WithoutCancel(ctx), watchLock(id), owner)
		}
		if !sleep(ctx, m.ctx, m.opts.WatchLease/3) {
			return
		}
	}
}

// watchHolding calls the plugin's watch in a loop and applies what it
// reports, while this process holds the lease (owner). It returns when
// ctx ends, the lease is lost or the installation is gone.
func (m *Manager) watchHolding(ctx context.Context, id, owner string) {
	w := &watchRun{m: m, id: id, st: WatchStatus{State: WatchWatching, Since: time.Now().UTC()}}
	var (
		cursor, revision string
		backoff          time.Duration
		refreshed        = time.Now()
	)
	// Continue where the previous watcher (this process before a restart,
	// or another replica) left off; its last position was recorded at most
	// watchStatusEvery ago, so little is applied twice (upserts of unchanged
	// entities write nothing).
	if prev, err := m.store.WatchStatus(ctx, id); err == nil && prev != nil {
		cursor, revision = prev.Cursor, prev.Revision
	}
	m.log.Info("watch started", "integration", id)
	defer func() {
		w.record(context.WithoutCancel(ctx), true) // the last position, for the next watcher
		m.log.Info("watch ended", "integration", id)
	}()
	for ctx.Err() == nil && m.ctx.Err() == nil {
		if time.Since(refreshed) > m.opts.WatchLease/3 {
			if err := m.store.RefreshLock(ctx, watchLock(id), owner, m.opts.WatchLease); err != nil {
				m.log.Warn("watch lease lost", "integration", id, "err", err)
				return
			}
			refreshed = time.Now()
		}
		res, rev, err := m.watchOnce(ctx, id, cursor, revision)
		switch {
		case errors.Is(err, ErrNotFound):
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, watchBackoffMin), watchBackoffMax)
			w.failed(ctx, err, backoff)
			if !sleep(ctx, m.ctx, backoff) {
				return
			}
			continue
		}
		backoff, revision, cursor = 0, rev, res.cursor
		w.st.Cursor, w.st.Revision = cursor, revision
		w.applied(ctx, res)
		if res.resync {
			if _, err := m.StartResync(ctx, id, TriggerWatch); err != nil && !errors.Is(err, ErrSyncRunning) {
				m.log.Warn("resync asked by watch", "integration", id, "err", err)
			}
		}
	}
}

// watchBatch is what one watch call applied.
type watchBatch struct {
	changes int
	errors  []SyncError
	cursor  string
	resync  bool
}

// watchOnce makes one watch call on the live integration of id and applies
// its changes. A new revision of the installation (another config, a new
// plugin version) starts its watch afresh, with an empty cursor.
func (m *Manager) watchOnce(ctx context.Context, id, cursor, revision string) (*watchBatch, string, error) {
	l, release, err := m.acquire(ctx, id)
	if err != nil {
		return nil, "", err
	}
	defer release()
	if l.inst.Revision != revision {
		cursor = ""
	}
	// The call ends well within its timeout, and before the lease (last
	// refreshed just before it) could expire.
	wait := min(watchMaxWait, sandbox(l.inst, l.plugin).Timeout/2, m.opts.WatchLease/3)
	res, err := l.integration.Watch(ctx, pdk.WatchRequest{Config: l.inst.Spec.Config, Cursor: cursor, WaitMs: int(wait.Milliseconds())})
	if err != nil {
		return nil, l.inst.Revision, fmt.Errorf("watch %s: %w", id, err)
	}
	ch := m.apply(l.as(ctx), l, res.Upserts, res.Deletes)
	return &watchBatch{
		changes: len(ch.Upserts) + len(ch.Deleted), errors: ch.Errors, cursor: res.Cursor, resync: res.Resync,
	}, l.inst.Revision, nil
}

// watchRun records the status of one held watch.
type watchRun struct {
	m       *Manager
	id      string
	st      WatchStatus
	written time.Time
}

func (w *watchRun) applied(ctx context.Context, b *watchBatch) {
	changed := w.st.State != WatchWatching
	w.st.State, w.st.Error = WatchWatching, ""
	if b.changes > 0 || len(b.errors) > 0 {
		now := time.Now().UTC()
		w.st.LastEventAt = &now
		w.st.Events += int64(b.changes)
		w.st.Errors += int64(len(b.errors))
	}
	if len(b.errors) > 0 {
		w.m.log.Warn("watch changes not applied", "integration", w.id, "errors", len(b.errors), "first", b.errors[0].Message)
		w.st.Error = b.errors[0].Message
	}
	w.record(ctx, changed)
}

func (w *watchRun) failed(ctx context.Context, err error, retryIn time.Duration) {
	w.m.log.Warn("watch failed", "integration", w.id, "err", err, "retryIn", retryIn)
	w.st.State, w.st.Error = WatchRetrying, err.Error()
	w.record(ctx, true)
}

// record stores the status when it changed state, or at most every
// watchStatusEvery, and at least once per lease period (it expires).
func (w *watchRun) record(ctx context.Context, now bool) {
	if !now && time.Since(w.written) < watchStatusEvery {
		return
	}
	st := w.st
	// The status outlives a lease and the longest watch call between two
	// records; then it expires with the watch that stopped writing it.
	ttl := 2*w.m.opts.WatchLease + watchMaxWait
	if err := w.m.store.PutWatchStatus(ctx, w.id, &st, ttl); err != nil && ctx.Err() == nil {
		w.m.log.Warn("record watch status", "integration", w.id, "err", err)
		return
	}
	w.written = time.Now()
}

// sleep waits d unless a or b ends first; it reports whether it waited.
func sleep(a, b context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.Done():
		return false
	case <-b.Done():
		return false
	case <-t.C:
		return true
	}
}
