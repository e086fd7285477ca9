package initiatives

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
)

// Actor is who the initiatives service reads the catalog as when it
// records figures for everybody.
const Actor = "portico:initiatives"

// Options configure a Service.
type Options struct {
	// Now is the clock (default time.Now); days are UTC dates.
	Now func() time.Time
	// Throttle is the least time between two snapshots of one scorecard
	// or initiative (default one second).
	Throttle time.Duration
}

// Service serves initiatives and scorecard histories over a catalog.
type Service struct {
	store    Store
	cat      *catalog.Service
	now      func() time.Time
	throttle time.Duration
}

// NewService returns a Service storing in store and reading cat.
func NewService(store Store, cat *catalog.Service, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Throttle == 0 {
		opts.Throttle = time.Second
	}
	return &Service{store: store, cat: cat, now: opts.Now, throttle: opts.Throttle}
}

func (s *Service) today() string { return day(s.now()) }

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// system is ctx acting as the service itself, which reads everything.
func system(ctx context.Context) context.Context {
	return catalog.WithActor(ctx, catalog.SystemActor(Actor))
}

// Put validates and stores an initiative, records its progress of today
// and returns it with the caller's view of its progress.
func (s *Service) Put(ctx context.Context, in *Initiative) (*View, bool, error) {
	if err := s.validate(ctx, in); err != nil {
		return nil, false, err
	}
	now := s.now().UTC()
	in.CreatedAt, in.UpdatedAt = now, now
	if old, err := s.store.Get(ctx, in.Identifier); err == nil {
		in.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	created, err := s.store.Put(ctx, in)
	if err != nil {
		return nil, false, err
	}
	if err := s.recordShare(ctx, in); err != nil {
		return nil, false, err
	}
	v, err := s.view(ctx, in)
	return v, created, err
}

// Get returns an initiative with the caller's view of its progress.
func (s *Service) Get(ctx context.Context, id string) (*View, error) {
	in, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, in)
}

// List returns every initiative with the caller's view of its progress.
func (s *Service) List(ctx context.Context) ([]*View, error) {
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*View, 0, len(all))
	for _, in := range all {
		v, err := s.view(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("initiative %s: %w", in.Identifier, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete removes an initiative and its figures.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.store.Delete(ctx, id)
}

// validate checks an initiative against the catalog: its blueprint, the
// scorecard and level of its target, its queries and its due date.
func (s *Service) validate(ctx context.Context, in *Initiative) error {
	var vs []catalog.Violation
	add := func(path, format string, args ...any) {
		vs = append(vs, catalog.Violation{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	addQuery := func(path string, q *catalog.Rule) {
		var ve *catalog.ValidationError
		if err := q.Validate(path); errors.As(err, &ve) {
			vs = append(vs, ve.Violations...)
		} else if err != nil {
			add(path, "%v", err)
		}
	}
	if !catalog.IdentifierPattern.MatchString(in.Identifier) {
		add("/identifier", "must match %s", catalog.IdentifierPattern)
	}
	if strings.TrimSpace(in.Owner) == "" {
		add("/owner", "required: the team or user accountable")
	}
	if _, err := time.Parse(time.DateOnly, in.DueDate); err != nil {
		add("/dueDate", "must be a date as YYYY-MM-DD, got %q", in.DueDate)
	}
	if in.Filter != nil {
		addQuery("/filter", in.Filter)
	}
	var bp *catalog.Blueprint
	if in.Blueprint == "" {
		add("/blueprint", "required")
	} else {
		var err error
		bp, err = s.cat.GetBlueprint(ctx, in.Blueprint)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			add("/blueprint", "blueprint %q does not exist", in.Blueprint)
		case err != nil:
			return err
		}
	}
	t := in.Target
	switch {
	case t.Rules != nil && (t.Scorecard != "" || t.Level != ""):
		add("/target", "either a scorecard and level or rules, not both")
	case t.Rules != nil:
		addQuery("/target/rules", t.Rules)
	case t.Scorecard == "":
		add("/target/scorecard", "required (or target rules)")
	case t.Level == "":
		add("/target/level", "required with a scorecard")
	case bp != nil:
		sc := bp.Scorecards[t.Scorecard]
		if sc == nil {
			add("/target/scorecard", "blueprint %s has no scorecard %q", in.Blueprint, t.Scorecard)
		} else if catalog.LevelRank(sc.LevelsOrDefault(), t.Level) < 0 {
			add("/target/level", "level %q is not one of scorecard %s's levels (%s)", t.Level, t.Scorecard, strings.Join(levelTitles(sc), ", "))
		}
	}
	if len(vs) > 0 {
		return &catalog.ValidationError{Message: "invalid initiative", Violations: vs}
	}
	return nil
}

func levelTitles(sc *catalog.Scorecard) []string {
	var out []string
	for _, l := range sc.LevelsOrDefault() {
		out = append(out, l.Title)
	}
	return out
}

// queries returns an initiative's scope and the subset meeting its target
// (nil meet when its scorecard or level is gone).
func (s *Service) queries(ctx context.Context, in *Initiative) (scope, meet *catalog.Rule, err error) {
	scope = &catalog.Rule{Combinator: "and", Rules: []catalog.Rule{{Property: "$blueprint", Operator: "=", Value: in.Blueprint}}}
	if in.Filter != nil {
		scope.Rules = append(scope.Rules, *in.Filter)
	}
	target := in.Target.Rules
	if target == nil {
		levels, err := s.qualifying(ctx, in)
		if err != nil || levels == nil {
			return scope, nil, err
		}
		target = &catalog.Rule{Property: catalog.ScorecardLevelProperty(in.Target.Scorecard), Operator: "in", Value: levels}
	}
	meet = &catalog.Rule{Combinator: "and", Rules: append(slices.Clone(scope.Rules), *target)}
	return scope, meet, nil
}

// qualifying lists the levels at or above an initiative's target level
// (nil when the scorecard or the level no longer exists).
func (s *Service) qualifying(ctx context.Context, in *Initiative) ([]any, error) {
	bp, err := s.cat.GetBlueprint(system(ctx), in.Blueprint)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bp.Scorecards[in.Target.Scorecard]
	if sc == nil {
		return nil, nil
	}
	levels := sc.LevelsOrDefault()
	rank := catalog.LevelRank(levels, in.Target.Level)
	if rank < 0 {
		return nil, nil
	}
	var out []any
	for _, l := range levels[rank:] {
		out = append(out, l.Title)
	}
	return out, nil
}

// count is how many entities match q that ctx's actor may read.
func (s *Service) count(ctx context.Context, q *catalog.Rule) (int, error) {
	if q == nil {
		return 0, nil
	}
	// An aggregate count is answered from the indexes when it can be (a
	// search would sort every match to return one).
	res, err := s.cat.Aggregate(ctx, catalog.AggregateQuery{Query: cloneRule(q), Func: catalog.FuncCount})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range res.Groups {
		if v, ok := g.Value.(int); ok {
			n += v
		}
	}
	return n, nil
}

// cloneRule deep-copies a rule: Search rewrites "$me" values in place.
func cloneRule(r *catalog.Rule) *catalog.Rule {
	c := *r
	c.Rules = make([]catalog.Rule, len(r.Rules))
	for i := range r.Rules {
		c.Rules[i] = *cloneRule(&r.Rules[i])
	}
	if r.Rules == nil {
		c.Rules = nil
	}
	return &c
}

func share(meeting, inScope int) float64 {
	if inScope == 0 {
		return 0
	}
	return math.Round(float64(meeting)/float64(inScope)*10000) / 10000
}

// view computes an initiative's progress as ctx's actor may see it.
func (s *Service) view(ctx context.Context, in *Initiative) (*View, error) {
	scope, meet, err := s.queries(ctx, in)
	if err != nil {
		return nil, err
	}
	p := &Progress{ByTeam: []TeamProgress{}, Regressed: []Regression{}, History: []SharePoint{}}
	if p.InScope, err = s.count(ctx, scope); err != nil {
		return nil, err
	}
	if p.Meeting, err = s.count(ctx, meet); err != nil {
		return nil, err
	}
	p.Share = share(p.Meeting, p.InScope)
	if p.ByTeam, err = s.byTeam(ctx, scope, meet); err != nil {
		return nil, err
	}
	if p.Regressed, err = s.regressed(ctx, in); err != nil {
		return nil, err
	}
	// The history counts everything: only for a caller who reads every
	// entity in scope (what one reads is a subset of everything, so equal
	// counts mean the same entities).
	all, err := s.count(system(ctx), scope)
	if err != nil {
		return nil, err
	}
	if all == p.InScope {
		if p.History, err = s.store.Shares(ctx, in.Identifier); err != nil {
			return nil, err
		}
	}
	return &View{Initiative: in, Progress: p}, nil
}

// byTeam counts scope and meet per team the caller may read, leaving out
// teams without an entity in scope; an entity counts for each of its
// teams.
func (s *Service) byTeam(ctx context.Context, scope, meet *catalog.Rule) ([]TeamProgress, error) {
	teams, err := s.teams(ctx)
	if err != nil {
		return nil, err
	}
	inScope, err := s.countByTeam(ctx, scope)
	if err != nil {
		return nil, err
	}
	meeting := map[string]int{}
	if meet != nil {
		if meeting, err = s.countByTeam(ctx, meet); err != nil {
			return nil, err
		}
	}
	out := []TeamProgress{}
	for _, team := range teams {
		in := inScope[team]
		if in == 0 {
			continue
		}
		tp := TeamProgress{Team: team, InScope: in, Meeting: meeting[team]}
		tp.Share = share(tp.Meeting, tp.InScope)
		out = append(out, tp)
	}
	return out, nil
}

// countByTeam counts the entities q matches per team, in one aggregate
// (an entity counts for each of its teams).
func (s *Service) countByTeam(ctx context.Context, q *catalog.Rule) (map[string]int, error) {
	res, err := s.cat.Aggregate(ctx, catalog.AggregateQuery{Query: cloneRule(q), Func: catalog.FuncCount, GroupBy: "$team"})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, g := range res.Groups {
		team, _ := g.Key.(string)
		n, _ := g.Value.(int)
		if team != "" {
			out[team] += n
		}
	}
	return out, nil
}

// teams lists the identifiers of the _team entities the caller may read.
func (s *Service) teams(ctx context.Context) ([]string, error) {
	var out []string
	after := ""
	for {
		page, err := s.cat.ListEntities(ctx, access.TeamBlueprint, after, catalog.MaxSearchLimit)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, nil // a catalog without teams
		}
		if err != nil {
			return nil, err
		}
		for _, e := range page.Entities {
			out = append(out, e.Identifier)
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// regressed lists the latest regression of each entity the caller may
// read.
func (s *Service) regressed(ctx context.Context, in *Initiative) ([]Regression, error) {
	all, err := s.store.Regressions(ctx, in.Identifier)
	if err != nil {
		return nil, err
	}
	out := []Regression{}
	seen := map[catalog.Ref]bool{}
	for _, r := range all {
		ref := catalog.Ref{Blueprint: r.Blueprint, Identifier: r.Identifier}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		_, err := s.cat.GetEntity(ctx, ref)
		switch {
		case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrForbidden):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// recordShare records today's progress of an initiative, counting every
// entity.
func (s *Service) recordShare(ctx context.Context, in *Initiative) error {
	ctx = system(ctx)
	scope, meet, err := s.queries(ctx, in)
	if err != nil {
		return err
	}
	var p SharePoint
	if p.InScope, err = s.count(ctx, scope); err != nil {
		return err
	}
	if p.Meeting, err = s.count(ctx, meet); err != nil {
		return err
	}
	p.Date = s.today() // the day the counts end in (see snapshotScorecard)
	p.Share = share(p.Meeting, p.InScope)
	return s.store.SaveShare(ctx, in.Identifier, p)
}
