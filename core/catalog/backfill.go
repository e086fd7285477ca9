package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// RunChanges carries blueprint changes in progress until ctx ends: it
// backfills the indexes of every blueprint whose layout changed, chunk by
// chunk (each chunk and its progress commit together, so a backfill
// resumes where it stopped after a crash or restart, in this process or
// another), and abandons validations whose process died. Every process
// that serves the catalog runs it; several may work on one backfill at
// once without harm. It checks for work every poll and whenever this
// process starts a backfill.
func (s *Service) RunChanges(ctx context.Context, poll time.Duration, log *slog.Logger) {
	ctx = WithActor(ctx, SystemActor("system:changes"))
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := s.RunChangesOnce(ctx); err != nil && ctx.Err() == nil {
			log.Error("blueprint changes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Service) wakeRunner() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunChangesOnce carries every change in progress as far as it can now:
// backfills to their end, dead validations abandoned.
func (s *Service) RunChangesOnce(ctx context.Context) error {
	bps, err := s.store.Changes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, bp := range bps {
		c, _, err := s.store.Change(ctx, bp)
		switch {
		case err != nil:
			errs = append(errs, err)
		case c == nil:
		case c.Phase == PhaseBackfilling:
			errs = append(errs, s.backfill(ctx, c))
		default:
			errs = append(errs, s.abandonStale(ctx, bp))
		}
	}
	return errors.Join(errs...)
}

// backfill re-indexes c's blueprint to the end, reporting progress as
// events every tenth of the way, in the background (Options.Background:
// low priority, so that requests go first).
func (s *Service) backfill(ctx context.Context, c *BlueprintChange) (err error) {
	s.background(func() { err = s.backfillChunks(ctx, c) })
	return err
}

func (s *Service) backfillChunks(ctx context.Context, c *BlueprintChange) error {
	finished := s.event(ctx, EventBackfillFinished, c.Blueprint, "", nil, c.status(ChangeProgress{}))
	reported, moved := -1, 0 // the tenth last reported, entries moved so far
	pace := newPacer(backfillRate)
	for {
		p, done, err := s.store.Backfill(ctx, c.Blueprint, c.ID, backfillChunk, finished)
		if errors.Is(err, ErrNotFound) {
			return nil // finished elsewhere, or replaced
		}
		if err != nil {
			return fmt.Errorf("backfill %s: %w", c.Blueprint, err)
		}
		if done {
			return nil
		}
		if err := pace.rest(ctx, p.Done-moved); err != nil {
			return err
		}
		moved = p.Done
		if tenth := 10 * p.Done / max(p.Total, 1); tenth > reported {
			reported = tenth
			ev := s.event(ctx, EventBackfillProgress, c.Blueprint, "", nil, c.status(p))
			if err := s.store.Update(ctx, func(tx Tx) error { tx.Emit(ev); return nil }); err != nil {
				return fmt.Errorf("backfill %s: %w", c.Blueprint, err)
			}
		}
	}
}

// How much of the machine a blueprint change's scan or backfill takes:
// it works at most changeShare of the time, and no faster than its rate
// (entities checked, index entries moved), comfortably above what a
// platform team waits for yet leaving the CPU, the garbage collector and
// Redis to the requests beside it.
const (
	changeShare  = 0.5
	scanRate     = 60_000
	backfillRate = 40_000
)

// pacer spaces the chunks of a change.
type pacer struct {
	perSecond float64
	since     time.Time
}

func newPacer(perSecond float64) *pacer { return &pacer{perSecond: perSecond, since: time.Now()} }

// rest waits after n items were handled since the last rest: as long as
// that took (times (1-changeShare)/changeShare), and at least until the
// rate allows n.
func (p *pacer) rest(ctx context.Context, n int) error {
	busy := time.Since(p.since)
	wait := time.Duration(float64(busy) * (1 - changeShare) / changeShare)
	if due := time.Duration(float64(n)/p.perSecond*float64(time.Second)) - busy; due > wait {
		wait = due
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	p.since = time.Now()
	return nil
}
