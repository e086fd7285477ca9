package catalog

import "time"

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
