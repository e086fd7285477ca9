// Package catalog is Portico's domain core: blueprints (schemas), entities
// (catalog records), relations between them, search and the change-event
// stream. It defines the Store it needs; rediscatalog implements it.
package catalog

import (
	"encoding/json"
	"regexp"
	"sort"
	"time"
)

// IdentifierPattern is what blueprint, entity, property and relation
// identifiers must match.
var IdentifierPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@_.:/=+-]{0,199}$`)

// Blueprint is the schema of one kind of entity.
type Blueprint struct {
	Identifier            string                         `json:"identifier"`
	Title                 string                         `json:"title,omitempty"`
	Description           string                         `json:"description,omitempty"`
	Icon                  string                         `json:"icon,omitempty"`
	Schema                Schema                         `json:"schema"`
	Relations             map[string]Relation            `json:"relations,omitempty"`
	CalculationProperties map[string]CalculationProperty `json:"calculationProperties,omitempty"`
	MirrorProperties      map[string]MirrorProperty      `json:"mirrorProperties,omitempty"`
	// AggregationProperties are computed over the entities whose relation
	// points at the entity, stored with it and kept current (derive.go).
	AggregationProperties map[string]AggregationProperty `json:"aggregationProperties,omitempty"`
	// Scorecards grade the blueprint's entities (scorecards.go). They are
	// managed through their own routes: a blueprint write keeps the
	// stored ones whatever it carries.
	Scorecards map[string]*Scorecard `json:"scorecards,omitempty"`
	// Dependents are the blueprints whose derived values read this one's
	// entities (server-managed, kept in step by blueprint writes).
	Dependents []Dependent `json:"dependents,omitempty"`
	// Permissions restricts who may write (and optionally read) entities;
	// nil means admins and members (see access.go).
	Permissions *Permissions `json:"permissions,omitempty"`
	// Ownership makes entities inherit owning teams through a relation.
	Ownership *Ownership `json:"ownership,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	// Change is the change in progress, if any (read-only: never stored,
	// ignored on writes).
	Change *ChangeStatus `json:"change,omitempty"`
}

// Schema is the JSON-Schema subset an entity's properties are validated with.
type Schema struct {
	Properties map[string]Property `json:"properties,omitempty"`
	Required   []string            `json:"required,omitempty"`
}

// Property describes one entity property. Type is one of string, number,
// integer, boolean, array, object. Format (for strings) is one of url,
// email, date-time, timer, team, user.
type Property struct {
	Type        string    `json:"type"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	Icon        string    `json:"icon,omitempty"`
	Format      string    `json:"format,omitempty"`
	Enum        []any     `json:"enum,omitempty"`
	Minimum     *float64  `json:"minimum,omitempty"`
	Maximum     *float64  `json:"maximum,omitempty"`
	MinLength   *int      `json:"minLength,omitempty"`
	MaxLength   *int      `json:"maxLength,omitempty"`
	Pattern     string    `json:"pattern,omitempty"`
	Items       *Property `json:"items,omitempty"`
	Default     any       `json:"default,omitempty"`
	// ExpiryAction (format "timer" only) names the action run, on the
	// entity, when the timer expires.
	ExpiryAction string `json:"expiryAction,omitempty"`
	// Cardinality (string and array properties) hints how many distinct
	// values to expect: "low" (a few, shared by many entities: enums,
	// environments, languages) or "high" (nearly one per entity: URLs,
	// names). It picks the secondary index layout; without it, formats
	// url, email, date-time, timer and user are high and other strings
	// low. Changing it re-indexes the blueprint's entities.
	Cardinality string `json:"cardinality,omitempty"`
}

// Cardinality hints.
const (
	CardinalityLow  = "low"
	CardinalityHigh = "high"
)

// HighCardinality reports whether a string property's values are
// expected to be nearly unique per entity: its hint, else its format (an
// array takes both from its items when it has no hint of its own).
func (p *Property) HighCardinality() bool {
	switch {
	case p.Cardinality == CardinalityHigh:
		return true
	case p.Cardinality == CardinalityLow:
		return false
	case p.Type == "array" && p.Items != nil:
		return p.Items.HighCardinality()
	}
	switch p.Format {
	case "url", "email", "date-time", "timer", "user":
		return true
	}
	return false
}

// Relation declares that entities of a blueprint may point at entities of
// Target. Many relations hold a list of identifiers, others one.
type Relation struct {
	Title    string `json:"title,omitempty"`
	Target   string `json:"target"`
	Many     bool   `json:"many"`
	Required bool   `json:"required"`
}

// CalculationProperty is computed on read by a jq expression over the entity.
type CalculationProperty struct {
	Title string `json:"title,omitempty"`
	Type  string `json:"type,omitempty"`
	JQ    string `json:"jq"`
}

// MirrorProperty reads a value through a relation: Path is
// "<relation>.<property>" (or "<relation>.$title" and other meta-properties).
type MirrorProperty struct {
	Title string `json:"title,omitempty"`
	Path  string `json:"path"`
}

// Entity is one catalog record; its identity is (Blueprint, Identifier).
// Relations values are a string (single) or a []string (many) once
// validated.
type Entity struct {
	Identifier string         `json:"identifier"`
	Title      string         `json:"title,omitempty"`
	Blueprint  string         `json:"blueprint"`
	Icon       string         `json:"icon,omitempty"`
	Team       []string       `json:"team,omitempty"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations"`
	CreatedAt  time.Time      `json:"createdAt"`
	UpdatedAt  time.Time      `json:"updatedAt"`
	CreatedBy  string         `json:"createdBy,omitempty"`
	UpdatedBy  string         `json:"updatedBy,omitempty"`
	Datasource string         `json:"datasource,omitempty"`
	// Scorecards holds the entity's results per scorecard, as JSON values:
	// {"<id>": {"level": "Silver", "rules": [{"identifier", "level",
	// "passed"}]}}. Server-managed: a write that sets it is refused.
	Scorecards map[string]any `json:"scorecards,omitempty"`
	// Aggregations holds the stored values of the blueprint's aggregation
	// properties; reads show them among the properties. Server-managed.
	Aggregations map[string]any `json:"aggregations,omitempty"`
}

// Ref names one entity.
type Ref struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
}

// Ref returns the entity's identity.
func (e *Entity) Ref() Ref { return Ref{Blueprint: e.Blueprint, Identifier: e.Identifier} }

// RelationTargets returns the identifiers a relation points at (zero, one or
// many), whatever its cardinality.
func (e *Entity) RelationTargets(name string) []string {
	return RelationIDs(e.Relations[name])
}

// RelationIDs returns the identifiers in a relation value: a string, a
// []string or a decoded []any.
func RelationIDs(v any) []string {
	switch t := v.(type) {
	case string:
		if t == "" {
			return nil
		}
		return []string{t}
	case []string:
		return t
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// RelationNames returns the entity's relation names in sorted order.
func (e *Entity) RelationNames() []string {
	names := make([]string, 0, len(e.Relations))
	for n := range e.Relations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Event types appended to the change stream.
const (
	EventEntityCreated    = "entity.created"
	EventEntityUpdated    = "entity.updated"
	EventEntityDeleted    = "entity.deleted"
	EventBlueprintCreated = "blueprint.created"
	EventBlueprintUpdated = "blueprint.updated"
	EventBlueprintDeleted = "blueprint.deleted"
	// EventTimerExpired: a timer property of the entity came due.
	EventTimerExpired = "timer.expired"
	// EventScorecardLevelChanged: an entity's level in a scorecard
	// changed; Detail is a ScorecardLevelChange.
	EventScorecardLevelChanged = "scorecard.level_changed"
	// EventRunCreated and EventRunFinished: an action run was requested
	// or ended (Detail carries the run; Identifier is the run's entity).
	EventRunCreated  = "run.created"
	EventRunFinished = "run.finished"
)

// Event is one change in the catalog, as appended to the event stream.
type Event struct {
	ID         string          `json:"id,omitempty"` // stream id; empty in history
	Type       string          `json:"type"`
	Blueprint  string          `json:"blueprint"`
	Identifier string          `json:"identifier,omitempty"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	Actor      string          `json:"actor"`
	At         time.Time       `json:"at"`
	// Detail is what an event of a type other than entity.* carries
	// beyond before and after (a scorecard level change, a run).
	Detail json.RawMessage `json:"detail,omitempty"`
	// Depth counts the automations that led to this event: 0 for a
	// change made by a person, an integration or a timer (see WithDepth).
	Depth int `json:"depth,omitempty"`
}
