package initiatives

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// scorecard returns scorecard id of blueprint bp as ctx's actor reads it.
func (s *Service) scorecard(ctx context.Context, bp, id string) (*catalog.Scorecard, error) {
	b, err := s.cat.GetBlueprint(ctx, bp)
	if err != nil {
		return nil, err
	}
	sc := b.Scorecards[id]
	if sc == nil {
		return nil, fmt.Errorf("scorecard %s/%s: %w", bp, id, catalog.ErrNotFound)
	}
	return sc, nil
}

// LevelHistory returns ref's levels in scorecard sc over the entity's
// recorded history, oldest first: the level it was created with, then
// every change (the entity must be readable by ctx's actor).
func (s *Service) LevelHistory(ctx context.Context, ref catalog.Ref, sc string) ([]LevelPoint, error) {
	if _, err := s.scorecard(ctx, ref.Blueprint, sc); err != nil {
		return nil, err
	}
	events, err := s.cat.History(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := []LevelPoint{}
	for _, ev := range events {
		switch ev.Type {
		case catalog.EventEntityCreated:
			var e struct {
				Scorecards map[string]struct {
					Level string `json:"level"`
				} `json:"scorecards"`
			}
			if json.Unmarshal(ev.After, &e) == nil && e.Scorecards[sc].Level != "" {
				out = append(out, LevelPoint{At: ev.At, Level: e.Scorecards[sc].Level})
			}
		case catalog.EventScorecardLevelChanged:
			var ch catalog.ScorecardLevelChange
			if json.Unmarshal(ev.Detail, &ch) == nil && ch.Scorecard == sc {
				out = append(out, LevelPoint{At: ev.At, Level: ch.To, From: ch.From, Direction: ch.Direction})
			}
		}
	}
	return out, nil
}

// MaxHistoryDays bounds the days a distribution history covers.
const MaxHistoryDays = 366

// Distributions returns scorecard sc's level distribution on each of the
// last days days (today included) since it was first recorded; a day
// without a snapshot carries the one before it. It counts every entity of
// the blueprint, so ctx's actor must be able to read them all.
func (s *Service) Distributions(ctx context.Context, bp, sc string, days int) ([]Distribution, error) {
	if days < 1 || days > MaxHistoryDays {
		return nil, &catalog.ValidationError{Message: "invalid history", Violations: []catalog.Violation{{Path: "/days", Message: fmt.Sprintf("must be between 1 and %d", MaxHistoryDays)}}}
	}
	if _, err := s.scorecard(ctx, bp, sc); err != nil {
		return nil, err
	}
	all := &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "$blueprint", Operator: "=", Value: bp}}}
	mine, err := s.count(ctx, all)
	if err != nil {
		return nil, err
	}
	total, err := s.count(system(ctx), all)
	if err != nil {
		return nil, err
	}
	if mine != total {
		return nil, fmt.Errorf("%w: missing permission: read every %s entity (the distribution over time counts them all)", catalog.ErrForbidden, bp)
	}
	stored, err := s.store.Distributions(ctx, bp, sc)
	if err != nil {
		return nil, err
	}
	return carryForward(stored, s.now(), days), nil
}

// carryForward lays stored snapshots (oldest first) over the last days
// days up to now, each day showing the latest snapshot on or before it;
// days before the first snapshot are left out.
func carryForward(stored []Distribution, now time.Time, days int) []Distribution {
	out := []Distribution{}
	i := 0
	var last *Distribution
	for d := days - 1; d >= 0; d-- {
		date := day(now.AddDate(0, 0, -d))
		for i < len(stored) && stored[i].Date <= date {
			last = &stored[i]
			i++
		}
		if last == nil {
			continue
		}
		out = append(out, Distribution{Date: date, Levels: last.Levels, Ungraded: last.Ungraded})
	}
	return out
}
