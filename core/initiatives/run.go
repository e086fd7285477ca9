package initiatives

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// eventBatch is how many change stream events one step reads.
const eventBatch = 500

// idleBlock is how long a step waits for events when nothing is pending
// (a blocked read of an embedded Redis may wake only when it ends).
const idleBlock = time.Second

// Run follows the catalog's change stream, from the position kept in the
// Store, until ctx ends: when entities of a blueprint with scorecards or
// initiatives change, it records today's distribution of each of its
// scorecards and today's progress of each of its initiatives (at most one
// snapshot of each per Options.Throttle), and the regressions of the
// initiatives' entities. At start it snapshots everything once. Several
// processes may run it: snapshots are absolute counts, the last of a day
// wins, and the position only moves forward. The position saved never
// passes an event whose snapshot is still to be taken, so a restart
// misses none.
func (s *Service) Run(ctx context.Context, log *slog.Logger) {
	ctx = system(ctx)
	t := &tracker{s: s, pending: map[subject]string{}, last: map[subject]time.Time{}}
	for ctx.Err() == nil {
		if err := t.step(ctx); err != nil && ctx.Err() == nil {
			log.Error("initiatives: recording figures", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// subject is what a snapshot is taken of: a scorecard of a blueprint, or
// an initiative.
type subject struct {
	initiative string
	bp, sc     string
}

// tracker is Run's state.
type tracker struct {
	s       *Service
	started bool
	pos     string // the last event read
	saved   string // the position last saved
	// pending maps a subject to snapshot to the position before the
	// event that made it pending.
	pending map[subject]string
	last    map[subject]time.Time // when each subject was last snapshot
}

// step reads (waiting for) the next events, handles them, takes the
// snapshots due and saves the position.
func (t *tracker) step(ctx context.Context) error {
	if !t.started {
		if err := t.start(ctx); err != nil {
			return err
		}
	}
	block := idleBlock
	if len(t.pending) > 0 {
		block = t.s.throttle
	}
	evs, err := t.s.cat.Events(ctx, t.pos, eventBatch, block)
	if err != nil {
		return err
	}
	b := &batch{t: t, bps: map[string]*catalog.Blueprint{}}
	for _, ev := range evs {
		if err := b.handle(ctx, ev); err != nil {
			return err
		}
		t.pos = ev.ID
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	return t.savePosition(ctx)
}

// start reads the saved position (the newest event on a first start) and
// makes every scorecard and initiative pending.
func (t *tracker) start(ctx context.Context) error {
	pos, err := t.s.store.Position(ctx)
	if err != nil {
		return err
	}
	if pos == "" {
		if _, pos, err = t.s.cat.EventBounds(ctx); err != nil {
			return err
		}
		if pos == "" {
			pos = "0"
		}
	}
	t.pos, t.saved = pos, pos
	bps, err := t.s.cat.ListBlueprints(ctx)
	if err != nil {
		return err
	}
	for _, bp := range bps {
		for id := range bp.Scorecards {
			t.pend(subject{bp: bp.Identifier, sc: id})
		}
	}
	ins, err := t.s.store.List(ctx)
	if err != nil {
		return err
	}
	for _, in := range ins {
		t.pend(subject{initiative: in.Identifier})
	}
	t.started = true
	return nil
}

// pend makes s pending as of the current position.
func (t *tracker) pend(s subject) {
	if _, ok := t.pending[s]; !ok {
		t.pending[s] = t.pos
	}
}

// flush takes the pending snapshots not taken within the throttle.
func (t *tracker) flush(ctx context.Context) error {
	for sub := range t.pending {
		if time.Since(t.last[sub]) < t.s.throttle {
			continue
		}
		var err error
		if sub.initiative != "" {
			err = t.s.snapshotInitiative(ctx, sub.initiative)
		} else {
			err = t.s.snapshotScorecard(ctx, sub.bp, sub.sc)
		}
		if err != nil {
			return err
		}
		t.last[sub] = time.Now()
		delete(t.pending, sub)
	}
	return nil
}

// savePosition saves the position up to which every snapshot is taken.
func (t *tracker) savePosition(ctx context.Context) error {
	safe := t.pos
	for _, since := range t.pending {
		if catalog.EventIDBefore(since, safe) {
			safe = since
		}
	}
	if safe == t.saved {
		return nil
	}
	if err := t.s.store.SavePosition(ctx, safe); err != nil {
		return err
	}
	t.saved = safe
	return nil
}

// batch is the handling of one step's events, with what they need read
// once.
type batch struct {
	t           *tracker
	bps         map[string]*catalog.Blueprint // nil: gone
	initiatives []*Initiative
	listed      bool
}

func (b *batch) blueprint(ctx context.Context, id string) (*catalog.Blueprint, error) {
	if bp, ok := b.bps[id]; ok {
		return bp, nil
	}
	bp, err := b.t.s.cat.GetBlueprint(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		err = nil
	}
	b.bps[id] = bp
	return bp, err
}

func (b *batch) initiativesOf(ctx context.Context, bp string) ([]*Initiative, error) {
	if !b.listed {
		all, err := b.t.s.store.List(ctx)
		if err != nil {
			return nil, err
		}
		b.initiatives, b.listed = all, true
	}
	var out []*Initiative
	for _, in := range b.initiatives {
		if in.Blueprint == bp {
			out = append(out, in)
		}
	}
	return out, nil
}

// handle makes the scorecards and initiatives an event touches pending
// and records the regressions a level change means.
func (b *batch) handle(ctx context.Context, ev catalog.Event) error {
	switch ev.Type {
	case catalog.EventEntityCreated, catalog.EventEntityUpdated, catalog.EventEntityDeleted,
		catalog.EventScorecardLevelChanged, catalog.EventBlueprintCreated, catalog.EventBlueprintUpdated:
	default:
		return nil
	}
	bp, err := b.blueprint(ctx, ev.Blueprint)
	if err != nil || bp == nil {
		return err
	}
	ins, err := b.initiativesOf(ctx, ev.Blueprint)
	if err != nil {
		return err
	}
	for id := range bp.Scorecards {
		b.t.pend(subject{bp: bp.Identifier, sc: id})
	}
	for _, in := range ins {
		b.t.pend(subject{initiative: in.Identifier})
	}
	if ev.Type != catalog.EventScorecardLevelChanged {
		return nil
	}
	var ch catalog.ScorecardLevelChange
	if err := json.Unmarshal(ev.Detail, &ch); err != nil {
		return nil // not a level change this version knows
	}
	for _, in := range ins {
		if err := b.t.s.regression(ctx, in, bp, ev, ch); err != nil {
			return err
		}
	}
	return nil
}

// regression records ch as a regression of initiative in when the entity
// fell from its target level (or above) to below it and is in scope.
func (s *Service) regression(ctx context.Context, in *Initiative, bp *catalog.Blueprint, ev catalog.Event, ch catalog.ScorecardLevelChange) error {
	if in.Target.Scorecard != ch.Scorecard || bp.Scorecards[ch.Scorecard] == nil {
		return nil
	}
	levels := bp.Scorecards[ch.Scorecard].LevelsOrDefault()
	target := catalog.LevelRank(levels, in.Target.Level)
	if target < 0 || catalog.LevelRank(levels, ch.From) < target || catalog.LevelRank(levels, ch.To) >= target {
		return nil
	}
	if in.Filter != nil {
		q := &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{
			{Property: "$blueprint", Operator: "=", Value: ev.Blueprint},
			{Property: "$identifier", Operator: "=", Value: ev.Identifier}, *in.Filter}}
		n, err := s.count(ctx, q)
		if err != nil || n == 0 {
			return err
		}
	}
	return s.store.AddRegression(ctx, in.Identifier, Regression{
		Blueprint: ev.Blueprint, Identifier: ev.Identifier, From: ch.From, To: ch.To, At: ev.At})
}

// snapshotScorecard records today's level distribution of scorecard sc
// of blueprint bp (nothing when it is gone).
func (s *Service) snapshotScorecard(ctx context.Context, bp, sc string) error {
	def, err := s.scorecard(ctx, bp, sc)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// One count grouped by level, from the level indexes.
	res, err := s.cat.Aggregate(ctx, catalog.AggregateQuery{
		Query: &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "$blueprint", Operator: "=", Value: bp}}},
		Func:  catalog.FuncCount, GroupBy: catalog.ScorecardLevelProperty(sc)})
	if err != nil {
		return err
	}
	d := Distribution{Levels: map[string]int{}}
	for _, l := range def.LevelsOrDefault() {
		d.Levels[l.Title] = 0
	}
	for _, g := range res.Groups {
		n, _ := g.Value.(int)
		if level, ok := g.Key.(string); ok {
			d.Levels[level] += n
		} else {
			d.Ungraded += n
		}
	}
	// The day is the one the counts end in: a snapshot begun before
	// midnight and ended after it never overwrites the day before with
	// the next day's counts.
	d.Date = s.today()
	return s.store.SaveDistribution(ctx, bp, sc, d)
}

// snapshotInitiative records today's progress of an initiative (nothing
// when it is gone).
func (s *Service) snapshotInitiative(ctx context.Context, id string) error {
	in, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.recordShare(ctx, in)
}
