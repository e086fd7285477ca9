package catalog

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Scorecard grades a blueprint's entities: an entity reaches a level when
// it passes every rule of that level and of all lower ones.
type Scorecard struct {
	Identifier  string `json:"identifier"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Levels are ordered lowest first; the first is where an entity that
	// passes nothing stands. Empty means DefaultLevels.
	Levels []ScorecardLevel `json:"levels,omitempty"`
	// Filter selects the entities the scorecard applies to (nil: all).
	Filter    *Rule           `json:"filter,omitempty"`
	Rules     []ScorecardRule `json:"rules"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// LevelsOrDefault returns the scorecard's levels, DefaultLevels when it
// names none.
func (sc *Scorecard) LevelsOrDefault() []ScorecardLevel {
	if len(sc.Levels) == 0 {
		return DefaultLevels
	}
	return sc.Levels
}

// ScorecardLevel is one level of a scorecard.
type ScorecardLevel struct {
	Title string `json:"title"`
	Color string `json:"color,omitempty"`
}

// DefaultLevels are a scorecard's levels when it names none.
var DefaultLevels = []ScorecardLevel{
	{Title: "Basic", Color: "gray"}, {Title: "Bronze", Color: "brown"},
	{Title: "Silver", Color: "silver"}, {Title: "Gold", Color: "gold"},
}

// ScorecardRule is one check of a scorecard, counted at Level.
type ScorecardRule struct {
	Identifier  string `json:"identifier"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Level       string `json:"level"`
	Query       *Rule  `json:"query"`
}

// ScorecardLevelChange is the Detail of a scorecard.level_changed event.
type ScorecardLevelChange struct {
	Scorecard string `json:"scorecard"`
	From      string `json:"from"` // "" when the entity was not graded before
	To        string `json:"to"`   // "" when it no longer is
	// Direction is "improved" or "degraded" (or "" when either side is
	// ungraded).
	Direction string `json:"direction,omitempty"`
}

// AggregationProperty is computed over the Target entities whose Relation
// points at the entity and that match Query: Func is count, or sum, avg,
// min, max or median of their Property.
type AggregationProperty struct {
	Title    string `json:"title,omitempty"`
	Target   string `json:"target"`
	Relation string `json:"relation"`
	Func     string `json:"func"`
	Property string `json:"property,omitempty"`
	Query    *Rule  `json:"query,omitempty"`
}

// compiledScorecard is a scorecard ready to grade entities.
type compiledScorecard struct {
	sc     *Scorecard
	levels []ScorecardLevel
	// rank[i] is the position in levels of Rules[i].Level.
	rank []int
	// verdicts[i][passed] is rule i's result object: built once and shared
	// by every entity's results (never modified).
	verdicts [][2]map[string]any
}

// levelRank returns the position of a level title, -1 when unknown.
func (cs *compiledScorecard) levelRank(title string) int { return LevelRank(cs.levels, title) }

// compileScorecards checks bp's scorecards against the blueprint's names
// (c holds its properties, relations, calculations, mirrors and
// aggregations) and compiles them. Rule properties may also be paths
// through a relation ("owner.slackChannel"), read like mirrors.
func (c *CompiledBlueprint) compileScorecards(vs *violations) {
	for _, id := range sortedKeys(c.Blueprint.Scorecards) {
		sc := c.Blueprint.Scorecards[id]
		if cs := c.compileScorecard(sc, pointer("scorecards", id), vs); cs != nil {
			c.scorecards = append(c.scorecards, cs)
		}
	}
}

// compileScorecard checks one scorecard; path points at it in errors.
func (c *CompiledBlueprint) compileScorecard(sc *Scorecard, path string, vs *violations) *compiledScorecard {
	if sc == nil {
		vs.add(path, "required")
		return nil
	}
	if msg := schemaIdentifierProblem(sc.Identifier); msg != "" {
		vs.add(path+"/identifier", "%s", msg)
	}
	cs := &compiledScorecard{sc: sc, levels: sc.LevelsOrDefault()}
	seen := map[string]bool{}
	for i, l := range cs.levels {
		p := pointer("levels", strconv.Itoa(i))
		switch {
		case strings.TrimSpace(l.Title) == "":
			vs.add(path+p+"/title", "required")
		case seen[l.Title]:
			vs.add(path+p+"/title", "level %q appears twice", l.Title)
		}
		seen[l.Title] = true
	}
	if sc.Filter != nil {
		c.checkGradingQuery(sc.Filter, path+"/filter", vs)
	}
	if len(sc.Rules) == 0 {
		vs.add(path+"/rules", "a scorecard needs at least one rule")
	}
	ruleIDs := map[string]bool{}
	for i, r := range sc.Rules {
		p := path + pointer("rules", strconv.Itoa(i))
		if msg := schemaIdentifierProblem(r.Identifier); msg != "" {
			vs.add(p+"/identifier", "%s", msg)
		} else if ruleIDs[r.Identifier] {
			vs.add(p+"/identifier", "rule %q appears twice", r.Identifier)
		}
		ruleIDs[r.Identifier] = true
		rank := cs.levelRank(r.Level)
		switch {
		case r.Level == "":
			vs.add(p+"/level", "required")
		case rank < 0:
			vs.add(p+"/level", "level %q is not one of the scorecard's levels", r.Level)
		case rank == 0:
			vs.add(p+"/level", "%q is the lowest level, where every entity starts: a rule belongs to a higher one", r.Level)
		}
		cs.rank = append(cs.rank, rank)
		cs.verdicts = append(cs.verdicts, [2]map[string]any{
			{"identifier": r.Identifier, "level": r.Level, "passed": false},
			{"identifier": r.Identifier, "level": r.Level, "passed": true},
		})
		if r.Query == nil {
			vs.add(p+"/query", "required")
			continue
		}
		c.checkGradingQuery(r.Query, p+"/query", vs)
	}
	return cs
}

// checkGradingQuery validates a scorecard query: the rule language minus
// relatedTo, over names the blueprint defines (or relation paths, which it
// registers as implicit mirrors).
func (c *CompiledBlueprint) checkGradingQuery(q *Rule, path string, vs *violations) {
	if err := q.Validate(path); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			vs.list = append(vs.list, ve.Violations...)
			return
		}
		vs.add(path, "%v", err)
		return
	}
	q.Walk(func(r *Rule) {
		switch {
		case r.IsCombinator():
		case r.Operator == "relatedTo":
			vs.add(path, "relatedTo is not available in scorecard rules: use an aggregation property or a relation path")
		case c.gradable(r.Property):
		default:
			vs.add(path, "property %q is not a property, relation, computed property or \"<relation>.<property>\" path of blueprint %s", r.Property, c.Blueprint.Identifier)
		}
	})
}

// gradable reports whether a scorecard rule may name property, adding a
// relation path to the mirrors grading reads.
func (c *CompiledBlueprint) gradable(name string) bool {
	if strings.HasPrefix(name, "$") {
		return isQueryableMeta(name)
	}
	if _, ok := c.props[name]; ok {
		return true
	}
	if _, ok := c.relations[name]; ok {
		return true
	}
	if _, ok := c.computed[name]; ok {
		return true
	}
	if _, ok := c.Blueprint.AggregationProperties[name]; ok {
		return true
	}
	rel, prop, msg := schemaSplitMirrorPath(name, c.Blueprint)
	if msg != "" {
		return false
	}
	for _, m := range c.paths {
		if m.Name == name {
			return true
		}
	}
	c.paths = append(c.paths, Mirror{Name: name, Relation: rel, Property: prop})
	return true
}

// gradingTargets lists the relation targets grading e reads (through
// mirrors and relation paths).
func (c *CompiledBlueprint) gradingTargets(e *Entity) []Ref {
	if len(c.scorecards) == 0 {
		return nil
	}
	var out []Ref
	for _, list := range [][]Mirror{c.mirrors, c.paths} {
		for _, m := range list {
			target := c.Blueprint.Relations[m.Relation].Target
			for _, id := range e.RelationTargets(m.Relation) {
				out = append(out, Ref{Blueprint: target, Identifier: id})
			}
		}
	}
	return out
}

// grade evaluates every scorecard over e (its stored properties and
// aggregations, its mirrors and relation paths read from targets, and its
// calculations) and returns the results to store on e, nil when there is
// no scorecard.
func (c *CompiledBlueprint) grade(e *Entity, targets map[Ref]*Entity, now time.Time) map[string]any {
	if len(c.scorecards) == 0 {
		return nil
	}
	view := make(map[string]any, len(e.Properties)+len(e.Aggregations)+len(c.mirrors)+len(c.paths))
	for k, v := range e.Properties {
		view[k] = v
	}
	for k, v := range e.Aggregations {
		view[k] = v
	}
	for _, list := range [][]Mirror{c.mirrors, c.paths} {
		for _, m := range list {
			view[m.Name] = mirrorValue(e, m, c.Blueprint, targets)
		}
	}
	if len(c.calcs) > 0 {
		withView := *e
		withView.Properties = view
		for k, v := range c.Calculate(&withView) {
			view[k] = v
		}
	}
	out := make(map[string]any, len(c.scorecards))
	for _, cs := range c.scorecards {
		if r := cs.grade(e, view, now); r != nil {
			out[cs.sc.Identifier] = r
		}
	}
	return out
}

// grade is one scorecard's result for e (nil when its filter leaves e
// out): the highest level whose rules, and all lower levels' rules, pass.
// The rule objects in it are shared: results are never modified.
func (cs *compiledScorecard) grade(e *Entity, view map[string]any, now time.Time) map[string]any {
	if cs.sc.Filter != nil && !Match(cs.sc.Filter, e, view, now, nil) {
		return nil
	}
	failedAt := len(cs.levels) // the lowest level with a failing rule
	rules := make([]any, len(cs.sc.Rules))
	for i := range cs.sc.Rules {
		r := &cs.sc.Rules[i]
		passed := Match(r.Query, e, view, now, nil)
		if !passed && cs.rank[i] < failedAt {
			failedAt = cs.rank[i]
		}
		if passed {
			rules[i] = cs.verdicts[i][1]
		} else {
			rules[i] = cs.verdicts[i][0]
		}
	}
	return map[string]any{"level": cs.levels[failedAt-1].Title, "rules": rules}
}

// ScorecardLevelOf returns e's level in scorecard id ("" when e is not
// graded by it).
func ScorecardLevelOf(e *Entity, id string) string {
	r, _ := e.Scorecards[id].(map[string]any)
	s, _ := r["level"].(string)
	return s
}

// scorecardLevelProperty recognizes "scorecards.<id>.level", the name
// queries, sorts and aggregates give an entity's level in a scorecard.
func scorecardLevelProperty(name string) (id string, ok bool) {
	rest, found := strings.CutPrefix(name, "scorecards.")
	if !found {
		return "", false
	}
	id, found = strings.CutSuffix(rest, ".level")
	return id, found && id != ""
}

// ScorecardLevelProperty is the property name of an entity's level in
// scorecard id.
func ScorecardLevelProperty(id string) string { return "scorecards." + id + ".level" }

// DerivedType returns the JSON type of a derived value a query may name
// on entities of bp: "number" for an aggregation property, "string" for
// "scorecards.<id>.level" of one of its scorecards.
func (bp *Blueprint) DerivedType(prop string) (string, bool) {
	if _, ok := bp.AggregationProperties[prop]; ok {
		return "number", true
	}
	if id, ok := scorecardLevelProperty(prop); ok && bp.Scorecards[id] != nil {
		return "string", true
	}
	return "", false
}
