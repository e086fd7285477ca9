package integrations

import (
	"context"
	"errors"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// Run starts scheduled resyncs until ctx ends: every installation with a
// schedule is resynced when its last sync started longer ago than the
// schedule. Replicas sharing a store may all run it; the sync lock lets
// one of them win. (The workflows issue moves this onto Temporal.)
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.ScheduleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.runDue(ctx)
		}
	}
}

// runDue starts the resyncs that are due.
func (m *Manager) runDue(ctx context.Context) {
	all, err := m.store.Installations(ctx)
	if err != nil {
		m.log.Warn("scheduled resyncs: list integrations", "err", err)
		return
	}
	now := time.Now()
	for _, inst := range all {
		every, err := time.ParseDuration(inst.Spec.Schedule)
		if err != nil || every <= 0 {
			continue
		}
		last := inst.UpdatedAt // first run one period after installing
		if sid, err := m.store.LastSync(ctx, inst.ID); err == nil && sid != "" {
			s, err := m.store.Sync(ctx, inst.ID, sid)
			switch {
			case err == nil:
				if s.StartedAt.After(last) {
					last = s.StartedAt
				}
			case !errors.Is(err, catalog.ErrNotFound):
				continue
			}
		}
		if now.Sub(last) < every {
			continue
		}
		if _, err := m.StartResync(ctx, inst.ID, TriggerSchedule); err != nil && !errors.Is(err, ErrSyncRunning) {
			m.log.Warn("scheduled resync", "integration", inst.ID, "err", err)
		}
	}
}
