package catalog

import (
	"context"
	"encoding/json"
	"time"
)

// Store persists blueprints, entities, their indexes and the change stream.
// rediscatalog implements it; nothing else touches the storage keys.
type Store interface {
	// Update runs fn in an optimistic transaction: everything fn reads through
	// the Tx is watched, everything it writes is applied atomically with its
	// indexes and events. On a concurrent modification fn runs again.
	Update(ctx context.Context, fn func(Tx) error) error

	// Blueprint returns a blueprint, or ErrNotFound.
	Blueprint(ctx context.Context, id string) (*Blueprint, error)
	// Blueprints returns every blueprint, ordered by identifier.
	Blueprints(ctx context.Context) ([]*Blueprint, error)
	// Entities returns the entities named by refs, nil where one is missing.
	Entities(ctx context.Context, refs []Ref) ([]*Entity, error)
	// EntityIDs pages through a blueprint's identifiers in lexical order,
	// starting after `after`; it also returns how many there are.
	EntityIDs(ctx context.Context, blueprint, after string, limit int) (ids []string, total int, err error)
	// ReadProjected returns the entities named by refs holding only their
	// identifier, blueprint and the parts only names (nil where one is
	// missing): cheaper than Entities when little of each is needed.
	ReadProjected(ctx context.Context, refs []Ref, only *Projection) ([]*Entity, error)
	// ReferrersOf returns, for each ref, the relation edges pointing at it.
	ReferrersOf(ctx context.Context, refs []Ref) ([][]Reference, error)
	// Search returns the entities matching req, sorted and paged.
	Search(ctx context.Context, req SearchRequest) (*SearchResult, error)
	// Columns answers req from the indexes alone, without reading a
	// document; ok is false when they cannot answer it exactly (a rule
	// or a field they do not hold), and the caller reads the documents.
	Columns(ctx context.Context, req ColumnsRequest) (cols *Columns, ok bool, err error)
	// GroupedNumbers answers, when it can from the indexes without
	// materialising rows (ok), the numbers of req.Fields[1] grouped by
	// the values of req.Fields[0] over the entities req.Query matches.
	GroupedNumbers(ctx context.Context, req ColumnsRequest) (*GroupedNumbers, bool, error)
	// Events returns up to count events after the given stream id ("" or
	// "0" for the beginning, "$" for only new ones), waiting up to block for
	// the first one when block > 0.
	Events(ctx context.Context, after string, count int, block time.Duration) ([]Event, error)
	// EventBounds returns the ids of the oldest and newest events still
	// in the stream ("" when it is empty): a reader whose position is
	// older than the oldest missed trimmed events.
	EventBounds(ctx context.Context) (oldest, newest string, err error)
	// History returns an entity's most recent events, oldest first.
	History(ctx context.Context, ref Ref) ([]Event, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error

	// Changes lists the blueprints with a change in progress.
	Changes(ctx context.Context) ([]string, error)
	// Change returns a blueprint's change in progress and how far it has
	// come (nil, nil when there is none).
	Change(ctx context.Context, bp string) (*BlueprintChange, *ChangeProgress, error)
	// ChangeProgressed records a validation's progress (and that its
	// validator is alive) unless change id is no longer in progress,
	// which is ErrConflict.
	ChangeProgressed(ctx context.Context, bp, id string, p ChangeProgress) error
	// ScanEntities calls fn with a blueprint's stored entities in chunks,
	// in identifier order, outside any transaction (an entity written
	// during the scan is seen in one of its states), reading a chunk only
	// once fn returned from the one before. With only set, the entities
	// hold just their identifier and the parts only names.
	ScanEntities(ctx context.Context, bp string, only *Projection, chunk int, fn func([]*Entity) error) error
	// Claim hands out up to n pending marks to this worker (first those
	// whose worker stopped heartbeating for stale); each must be Done.
	Claim(ctx context.Context, n int, stale time.Duration) ([]DirtyMark, error)
	// Changed returns the properties MarkReferrers noted for ref; Told
	// forgets them once its readers were told.
	Changed(ctx context.Context, ref Ref) ([]string, error)
	Told(ctx context.Context, ref Ref, props []string) error
	// Heartbeat tells that a claimed mark's work goes on.
	Heartbeat(ctx context.Context, m DirtyMark) error
	// Done ends a claimed mark.
	Done(ctx context.Context, m DirtyMark) error
	// ClaimEntities claims the recomputation of entities that no mark
	// names (a whole blueprint's, a changed entity's readers); those
	// claimed by another worker are left out of the result and marked
	// to be recomputed after. One worker at
	// a time recomputes an entity: none writes values from older inputs
	// over another's from newer ones. Release ends such claims.
	ClaimEntities(ctx context.Context, refs []Ref) ([]Ref, error)
	Release(ctx context.Context, refs []Ref) error
	// Marked reports whether a mark is pending or claimed.
	Marked(ctx context.Context, kind byte, ref Ref) (bool, error)
	// DeriveProgress returns the progress of blueprint bp's
	// recomputation (nil when none is recorded); SaveDeriveProgress
	// records p unless the stored progress is not prev (nil: none), which
	// happens when the blueprint was marked again: then it returns false.
	DeriveProgress(ctx context.Context, bp string) (*DeriveProgress, error)
	SaveDeriveProgress(ctx context.Context, bp string, prev, p *DeriveProgress) (bool, error)

	// Backfill re-indexes the next chunk of up to limit entities of a
	// blueprint being backfilled by change id, in one transaction with
	// its progress. When that was the last chunk it ends the change and
	// appends finished to the stream; done reports it.
	Backfill(ctx context.Context, bp, id string, limit int, finished Event) (p ChangeProgress, done bool, err error)
}

// Tx is the read-then-write view inside Store.Update. Reads are watched:
// if anything read changes before the writes are applied, Update retries.
type Tx interface {
	Blueprint(ctx context.Context, id string) (*Blueprint, error)
	Entities(ctx context.Context, refs []Ref) ([]*Entity, error)
	// Read is Entities(refs) in the same round trip as a check of which of
	// others exist (read, and watched, without being decoded).
	Read(ctx context.Context, refs, others []Ref) ([]*Entity, []bool, error)
	Referrers(ctx context.Context, ref Ref) ([]Reference, error)
	// EntityCount returns how many entities a blueprint has (watched: an
	// entity created or deleted meanwhile retries the transaction).
	EntityCount(ctx context.Context, blueprint string) (int, error)

	PutBlueprint(bp *Blueprint, ev Event)
	DeleteBlueprint(id string, ev Event)
	// PutEntity writes after (before is the stored version or nil), keeping
	// indexes in step; ev, with Before and After filled in from the
	// entities, is appended to the stream and the entity history.
	// UpdatedAt strictly increases with every change, so an entity with
	// UpdatedAt == CreatedAt was never changed. An ev without a Type
	// writes silently: no event, no history. The blueprint supplies the
	// relations' target blueprints and the index layout.
	PutEntity(bp *Blueprint, before, after *Entity, ev Event)
	DeleteEntity(bp *Blueprint, before *Entity, ev Event)
	// ReadDerived is Entities with the scorecard results left as their
	// stored JSON (nil when none), for a recomputation to compare.
	ReadDerived(ctx context.Context, refs []Ref) ([]*Entity, []json.RawMessage, error)
	// PutDerived is PutEntity for an after that differs from before only
	// in its derived values (Scorecards, Aggregations) and UpdatedAt.
	PutDerived(bp *Blueprint, before, after *Entity, ev Event)

	// Change returns the blueprint's change in progress (nil if none),
	// watched: a change starting or ending retries the transaction.
	Change(ctx context.Context, bp string) (*BlueprintChange, error)
	// PutChange starts (or replaces) a blueprint's change, with its
	// progress reset; DeleteChange ends it.
	PutChange(c *BlueprintChange)
	DeleteChange(bp string)
	// Offenders returns (watched) the entities written during a
	// validation that the proposed definition would refuse.
	Offenders(ctx context.Context, bp string) ([]string, error)
	// AddOffender records one such entity.
	AddOffender(bp, id string)
	// Emit appends an event to the stream only (no entity history).
	Emit(ev Event)

	// Blueprints returns every blueprint, watched.
	Blueprints(ctx context.Context) ([]*Blueprint, error)
	// Record appends an event about an entity written in this
	// transaction to the stream and the entity's history, as given.
	Record(ev Event)
	// Marks carry the automation depth of the change that made them (see
	// WithDepth; the latest mark's, for ten minutes): DirtyMark.Depth.
	// MarkDirty marks an entity whose derived values need recomputing;
	// MarkReferrers marks the entities whose relations point at ref,
	// noting which of ref's properties they read changed (Changed);
	// MarkAll marks every entity of a blueprint and starts its progress
	// over under a new run, so that a recomputation under way stops (see
	// DirtyMark and SaveDeriveProgress).
	MarkDirty(ref Ref, depth int)
	MarkReferrers(ref Ref, changed []string, depth int)
	MarkAll(bp string)
}

// Mark kinds of DirtyMark.
const (
	MarkEntity    = 'e'
	MarkReferrers = 'r'
	MarkBlueprint = 'b'
)

// DirtyMark is one pending recomputation of derived values: of an entity,
// of the entities pointing at it, or of a whole blueprint (Ref.Identifier
// empty). A worker claims marks; a claimed mark whose worker stops
// heartbeating is handed out again, and a thing marked while claimed is
// marked anew, so no mark is lost.
type DirtyMark struct {
	Kind byte
	Ref  Ref
	// Depth is the automation depth of the change that made the mark.
	Depth int
}

// DeriveProgress is how far the recomputation of a whole blueprint came.
type DeriveProgress struct {
	// Run names the recomputation the progress belongs to: marking the
	// blueprint again discards it (the next run starts over).
	Run   string `json:"run"`
	After string `json:"after"` // last identifier done
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// Reference is one relation edge pointing at an entity.
type Reference struct {
	From     Ref    `json:"from"`
	Relation string `json:"relation"`
}

// SortField orders search results by a property or meta-property.
type SortField struct {
	Property string `json:"property"`
	Order    string `json:"order,omitempty"` // asc (default) or desc
}

// SearchRequest is a validated search as the store runs it.
type SearchRequest struct {
	Query *Rule
	// Computed names the properties that are not stored (calculation and
	// mirror properties): the store cannot use indexes for them.
	Computed map[string]bool
	// Match decides the final verdict for a candidate entity, given the
	// relatedTo sets the store resolved.
	Match func(e *Entity, related Related) bool
	// Restricted says Match also applies a filter no index answers (read
	// permissions): the total must count only entities Match admits.
	Restricted bool
	// Visible bounds the relation walks of relatedTo rules (see Walk).
	Visible Visibility
	Sort    []SortField
	Offset  int
	Limit   int
	// SortValue returns the value to sort by (it may be computed); nil means
	// use stored properties.
	SortValue func(e *Entity, property string) any
}

// SearchResult is one page of a search.
type SearchResult struct {
	Entities []*Entity
	Total    int
}

// ColumnsRequest asks for some fields of every entity matching Query.
type ColumnsRequest struct {
	Query *Rule
	// Computed names the properties that are not stored (as in
	// SearchRequest).
	Computed map[string]bool
	// Fields are properties, meta-properties, relations or other paths
	// (a store answers those it indexes).
	Fields []string
	// CountOnly says only how many entities hold each value of the one
	// field (or how many there are, without fields) matters: the store
	// may answer with weighted rows.
	CountOnly bool
}

// GroupedNumbers are the numbers of a property of the matching entities
// by the values of a field (key nil: entities holding none): Groups holds
// the numbers, Present every key some entity holds (with or without a
// number).
type GroupedNumbers struct {
	Groups  map[any][]float64
	Present map[any]bool
}

// Columns are fields of the matching entities, one row per entity:
// Values[f][r] is field f of entity Refs[r], as Lookup reports it (a
// list as []any), nil when the entity lacks it.
type Columns struct {
	Refs   []Ref
	Values [][]any
	// Weights, when set, says row r stands for Weights[r] entities
	// holding the same values (Refs[r] then names only the blueprint).
	Weights []int
}
