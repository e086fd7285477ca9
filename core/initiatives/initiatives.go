// Package initiatives tracks how the catalog meets its standards over
// time: each entity's level in a scorecard, the level distribution of a
// scorecard day by day, and initiatives — a target (a scorecard level or a
// rule query) for the entities in scope, with a due date and an owner,
// whose progress is shown overall, by team and over time, with the
// entities that regressed. The daily figures are recorded by Run, a
// consumer of the catalog's change stream.
package initiatives

import (
	"context"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/errkind"
)

// ErrNotFound: no such initiative.
var ErrNotFound = errkind.New(errkind.NotFound, "not found")

// Initiative is a standard a set of entities should meet by a date.
type Initiative struct {
	Identifier  string `json:"identifier"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Blueprint   string `json:"blueprint"`
	Target      Target `json:"target"`
	// Filter selects the blueprint's entities in scope (nil: all).
	Filter    *catalog.Rule `json:"filter,omitempty"`
	DueDate   string        `json:"dueDate"` // YYYY-MM-DD
	Owner     string        `json:"owner"`   // a team or user identifier
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// Target is what an entity in scope must meet: a scorecard level (that
// level or a higher one) or a rule query.
type Target struct {
	Scorecard string        `json:"scorecard,omitempty"`
	Level     string        `json:"level,omitempty"`
	Rules     *catalog.Rule `json:"rules,omitempty"`
}

// View is an initiative with its progress as the caller may see it.
type View struct {
	*Initiative
	Progress *Progress `json:"progress"`
}

// Progress is how far an initiative has come: counts of the entities the
// caller may read.
type Progress struct {
	InScope   int            `json:"inScope"`
	Meeting   int            `json:"meeting"`
	Share     float64        `json:"share"`
	ByTeam    []TeamProgress `json:"byTeam"`
	Regressed []Regression   `json:"regressed"`
	// History is the share day by day; it counts every entity, so it is
	// shown only to a caller who may read every entity in scope.
	History []SharePoint `json:"history"`
}

// TeamProgress is an initiative's progress among one team's entities.
type TeamProgress struct {
	Team    string  `json:"team"`
	InScope int     `json:"inScope"`
	Meeting int     `json:"meeting"`
	Share   float64 `json:"share"`
}

// Regression is an entity in scope whose level fell below the target.
type Regression struct {
	Blueprint  string    `json:"blueprint"`
	Identifier string    `json:"identifier"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	At         time.Time `json:"at"`
}

// SharePoint is an initiative's progress on one day (the last figure
// recorded that day).
type SharePoint struct {
	Date    string  `json:"date"`
	Share   float64 `json:"share"`
	InScope int     `json:"inScope"`
	Meeting int     `json:"meeting"`
}

// Distribution is how many of a blueprint's entities stood at each level
// of a scorecard on one day (the last snapshot of that day).
type Distribution struct {
	Date     string         `json:"date"`
	Levels   map[string]int `json:"levels"`
	Ungraded int            `json:"ungraded"`
}

// LevelPoint is one change of an entity's level in a scorecard.
type LevelPoint struct {
	At        time.Time `json:"at"`
	Level     string    `json:"level"`
	From      string    `json:"from"`
	Direction string    `json:"direction,omitempty"`
}

// Store keeps initiative definitions, the daily figures and the change
// stream position of Run.
type Store interface {
	// Put stores an initiative; created reports a new identifier.
	Put(ctx context.Context, in *Initiative) (created bool, err error)
	// Get returns an initiative or ErrNotFound.
	Get(ctx context.Context, id string) (*Initiative, error)
	// List returns every initiative by identifier.
	List(ctx context.Context) ([]*Initiative, error)
	// Delete removes an initiative with its figures (ErrNotFound when
	// there is none).
	Delete(ctx context.Context, id string) error

	// SaveDistribution records a scorecard's distribution of d.Date
	// (replacing that day's).
	SaveDistribution(ctx context.Context, bp, scorecard string, d Distribution) error
	// Distributions returns a scorecard's recorded days, oldest first.
	Distributions(ctx context.Context, bp, scorecard string) ([]Distribution, error)
	// SaveShare records an initiative's progress of p.Date.
	SaveShare(ctx context.Context, id string, p SharePoint) error
	// Shares returns an initiative's recorded days, oldest first.
	Shares(ctx context.Context, id string) ([]SharePoint, error)
	// AddRegression records a regression, keeping the most recent
	// MaxRegressions.
	AddRegression(ctx context.Context, id string, r Regression) error
	// Regressions returns the recorded regressions, newest first.
	Regressions(ctx context.Context, id string) ([]Regression, error)

	// Position returns the change stream id Run has handled up to ("" at
	// first).
	Position(ctx context.Context) (string, error)
	// SavePosition moves the position forward to id (never back: another
	// process may have gone further).
	SavePosition(ctx context.Context, id string) error
}

// MaxRegressions is how many regressions an initiative keeps.
const MaxRegressions = 100
