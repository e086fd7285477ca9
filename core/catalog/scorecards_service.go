package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// ScorecardView is a scorecard as the API shows it: its definition, where
// the (re)grading of the blueprint's entities stands, and how many
// entities stand at each level.
type ScorecardView struct {
	*Scorecard
	Blueprint  string          `json:"blueprint"`
	Evaluation *EvaluationView `json:"evaluation,omitempty"`
}

// EvaluationView is the progress of grading a blueprint's entities.
type EvaluationView struct {
	State string `json:"state"` // running or done
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// PutScorecard creates or replaces a scorecard of blueprint bp and starts
// grading every entity of it again, in the background.
func (s *Service) PutScorecard(ctx context.Context, bp string, sc *Scorecard) (*ScorecardView, bool, error) {
	if sc == nil {
		return nil, false, &ValidationError{Message: "invalid scorecard", Violations: []Violation{{Path: "", Message: "required"}}}
	}
	created := false
	var out *Scorecard
	err := s.changeScorecards(ctx, bp, func(next *Blueprint, existing *Scorecard) error {
		v := *sc
		now := s.timestamp()
		v.CreatedAt, v.UpdatedAt = now, now
		if existing != nil {
			v.CreatedAt = existing.CreatedAt
			v.UpdatedAt = changedBlueprintAt(existing.UpdatedAt, now)
		}
		created = existing == nil
		next.Scorecards[v.Identifier] = &v
		out = &v
		return nil
	}, sc.Identifier)
	if err != nil {
		return nil, false, err
	}
	return &ScorecardView{Scorecard: out, Blueprint: bp, Evaluation: &EvaluationView{State: "running"}}, created, nil
}

// DeleteScorecard removes a scorecard; the entities' results of it go as
// they are regraded.
func (s *Service) DeleteScorecard(ctx context.Context, bp, id string) error {
	return s.changeScorecards(ctx, bp, func(next *Blueprint, existing *Scorecard) error {
		if existing == nil {
			return fmt.Errorf("scorecard %s/%s: %w", bp, id, ErrNotFound)
		}
		delete(next.Scorecards, id)
		return nil
	}, id)
}

// changeScorecards applies change to a copy of blueprint bp's scorecards
// (existing is scorecard id as stored, or nil), checks the result and
// stores it with the blueprint, marking every entity for grading.
func (s *Service) changeScorecards(ctx context.Context, bp string, change func(next *Blueprint, existing *Scorecard) error, id string) error {
	if err := s.authorizeBlueprint(ctx, OpPut, &Blueprint{Identifier: bp}); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx Tx) error {
		stored, err := tx.Blueprint(ctx, bp)
		if err != nil {
			return err
		}
		next := *stored
		next.Scorecards = maps.Clone(stored.Scorecards)
		if next.Scorecards == nil {
			next.Scorecards = map[string]*Scorecard{}
		}
		if err := change(&next, stored.Scorecards[id]); err != nil {
			return err
		}
		if len(next.Scorecards) == 0 {
			next.Scorecards = nil
		}
		if _, err := CompileBlueprint(&next); err != nil {
			return scorecardError(err, id)
		}
		next.UpdatedAt = changedBlueprintAt(stored.UpdatedAt, s.timestamp())
		if err := s.syncDependents(ctx, tx, &next, ""); err != nil {
			return err
		}
		tx.PutBlueprint(&next, s.event(ctx, EventBlueprintUpdated, bp, "", stored, &next))
		tx.MarkAll(bp)
		return nil
	})
}

// GetScorecard returns one scorecard of blueprint bp with its grading
// progress.
func (s *Service) GetScorecard(ctx context.Context, bp, id string) (*ScorecardView, error) {
	b, err := s.store.Blueprint(ctx, bp)
	if err != nil {
		return nil, err
	}
	sc := b.Scorecards[id]
	if sc == nil {
		return nil, fmt.Errorf("scorecard %s/%s: %w", bp, id, ErrNotFound)
	}
	ev, err := s.evaluation(ctx, bp)
	if err != nil {
		return nil, err
	}
	return &ScorecardView{Scorecard: sc, Blueprint: bp, Evaluation: ev}, nil
}

// ListScorecards returns blueprint bp's scorecards by identifier.
func (s *Service) ListScorecards(ctx context.Context, bp string) ([]*ScorecardView, error) {
	b, err := s.store.Blueprint(ctx, bp)
	if err != nil {
		return nil, err
	}
	ev, err := s.evaluation(ctx, bp)
	if err != nil {
		return nil, err
	}
	out := []*ScorecardView{}
	for _, id := range sortedKeys(b.Scorecards) {
		out = append(out, &ScorecardView{Scorecard: b.Scorecards[id], Blueprint: bp, Evaluation: ev})
	}
	return out, nil
}

// evaluation tells whether bp's entities are being graded (a whole-
// blueprint mark pending) and how far it came.
func (s *Service) evaluation(ctx context.Context, bp string) (*EvaluationView, error) {
	p, err := s.store.DeriveProgress(ctx, bp)
	if err != nil {
		return nil, err
	}
	pending, err := s.store.Marked(ctx, MarkBlueprint, Ref{Blueprint: bp})
	if err != nil {
		return nil, err
	}
	v := &EvaluationView{State: "done"}
	if pending {
		v.State = "running"
	}
	if p != nil {
		v.Done, v.Total = p.Done, p.Total

	}
	return v, nil
}

// EntityScorecard is one entity's standing in one scorecard, for a CI
// gate: its level, every rule with its verdict, and the scorecard's levels.
type EntityScorecard struct {
	Blueprint  string             `json:"blueprint"`
	Identifier string             `json:"identifier"`
	Scorecard  string             `json:"scorecard"`
	Title      string             `json:"title,omitempty"`
	Level      string             `json:"level"`
	Levels     []ScorecardLevel   `json:"levels"`
	Rules      []EntityRuleResult `json:"rules"`
	// Graded is false when the scorecard's filter leaves the entity out
	// (or it was not graded yet).
	Graded bool `json:"graded"`
}

// EntityRuleResult is one rule's verdict for an entity.
type EntityRuleResult struct {
	Identifier string `json:"identifier"`
	Title      string `json:"title,omitempty"`
	Level      string `json:"level"`
	Passed     bool   `json:"passed"`
}

// GetEntityScorecard returns ref's standing in scorecard id (the entity
// must be readable by the actor).
func (s *Service) GetEntityScorecard(ctx context.Context, ref Ref, id string) (*EntityScorecard, error) {
	e, err := s.GetEntity(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := s.store.Blueprint(ctx, ref.Blueprint)
	if err != nil {
		return nil, err
	}
	sc := b.Scorecards[id]
	if sc == nil {
		return nil, fmt.Errorf("scorecard %s/%s: %w", ref.Blueprint, id, ErrNotFound)
	}
	out := &EntityScorecard{Blueprint: ref.Blueprint, Identifier: ref.Identifier, Scorecard: id, Title: sc.Title, Levels: sc.LevelsOrDefault(), Rules: []EntityRuleResult{}}
	res, _ := e.Scorecards[id].(map[string]any)
	out.Level, _ = res["level"].(string)
	out.Graded = out.Level != ""
	passed := map[string]bool{}
	if rules, ok := res["rules"].([]any); ok {
		for _, r := range rules {
			m, _ := r.(map[string]any)
			rid, _ := m["identifier"].(string)
			passed[rid], _ = m["passed"].(bool)
		}
	}
	for _, r := range sc.Rules {
		out.Rules = append(out.Rules, EntityRuleResult{Identifier: r.Identifier, Title: r.Title, Level: r.Level, Passed: passed[r.Identifier]})
	}
	return out, nil
}

// LevelRank returns the position of level among levels (-1 when absent).
func LevelRank(levels []ScorecardLevel, level string) int {
	for i, l := range levels {
		if l.Title == level {
			return i
		}
	}
	return -1
}

// scorecardError words a blueprint's validation error about scorecard id
// as one about the scorecard document: paths relative to it.
func scorecardError(err error, id string) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	prefix := pointer("scorecards", id)
	out := &ValidationError{Message: "invalid scorecard"}
	for _, v := range ve.Violations {
		if rest, ok := strings.CutPrefix(v.Path, prefix); ok {
			v.Path = rest
		}
		out.Violations = append(out.Violations, v)
	}
	return out
}
