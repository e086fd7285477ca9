package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Actor is who makes a change and, for entities, which source owns it.
type Actor struct {
	// ID names the user, token or integration ("admin", "alice@example.com").
	ID string
	// Datasource is recorded on written entities; empty means "user:<ID>".
	Datasource string
	// Role is admin, member or viewer for an authenticated user,
	// RoleSystem for an internal caller (SystemActor) and RoleIntegration
	// for an integration installation (IntegrationActor). An actor without
	// a role is nobody: the access Authorizer lets it neither write nor read.
	Role string
	// Teams are the user's teams (identifiers of _team entities).
	Teams []string
	// Scopes restrict what the credential may do (read, write, run,
	// approve, admin); nil means unrestricted.
	Scopes []string
	// TokenID names the API token used, for the audit log ("" for none).
	TokenID string
	// Lane lists the blueprints a RoleIntegration actor may write and read
	// (never protected ones, whatever it lists).
	Lane []string
}

// SystemActor is an internal caller (bootstrap, timers, workflows, the
// integration host's bookkeeping) named id: the Authorizer trusts it. Only
// code creates it; no token resolves to it.
func SystemActor(id string) Actor { return Actor{ID: id, Role: RoleSystem} }

// IntegrationActor is an integration installation writing as datasource:
// it writes and reads only the blueprints of lane, never protected ones,
// and never changes entities another installation owns.
func IntegrationActor(datasource string, lane []string) Actor {
	return Actor{ID: datasource, Datasource: datasource, Role: RoleIntegration, Lane: lane}
}

// InLane reports whether a RoleIntegration actor may write and read
// entities of blueprint.
func (a Actor) InLane(blueprint string) bool {
	return !IsProtected(blueprint) && slices.Contains(a.Lane, blueprint)
}

// OwnedByOther reports whether an entity's datasource names another
// integration installation than the actor's.
func (a Actor) OwnedByOther(e *Entity) bool {
	return e != nil && strings.HasPrefix(e.Datasource, IntegrationDatasourcePrefix) && e.Datasource != a.Datasource
}

// IntegrationDatasourcePrefix starts the datasource of entities written by
// an integration installation ("integration:<id>").
const IntegrationDatasourcePrefix = "integration:"

type actorKey struct{}

// WithActor attaches the acting principal to ctx.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the acting principal of ctx: when none, Anonymous,
// which has no role (the access Authorizer denies it every write and every
// filtered read).
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.ID != "" {
		return a
	}
	return Actor{ID: Anonymous}
}

// Anonymous is the identifier of the actor of a context without one.
const Anonymous = "anonymous"

func (a Actor) datasource() string {
	if a.Datasource != "" {
		return a.Datasource
	}
	return "user:" + a.ID
}

// Service is the catalog's API: validation, relation integrity, computed
// properties and search on top of a Store.
type Service struct {
	store Store
	now   func() time.Time

	mu       sync.Mutex
	compiled map[string]compiledEntry
	// compiledNext caches, per blueprint, the proposed definition of its
	// validation in progress.
	compiledNext map[string]compiledChange
	// wake nudges RunChanges when this process starts a backfill.
	wake chan struct{}

	authz Authorizer // nil: everything allowed
	// background runs a change's scan or backfill (Options.Background).
	background func(func())
}

type compiledEntry struct {
	updatedAt time.Time
	c         *CompiledBlueprint
}

// Options configure a Service; zero fields take the defaults noted.
type Options struct {
	// Authorizer is the access policy (nil: allow everything).
	Authorizer Authorizer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Background runs the long work of blueprint changes (validation
	// scans, index backfills) and returns when it is done; the portal
	// passes lowpriority.Run so that requests go first. Default: inline.
	Background func(func())
}

// NewService returns a catalog service over store.
func NewService(store Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Background == nil {
		opts.Background = func(fn func()) { fn() }
	}
	return &Service{
		store: store, now: opts.Now, authz: opts.Authorizer, background: opts.Background,
		compiled: map[string]compiledEntry{}, compiledNext: map[string]compiledChange{},
		wake: make(chan struct{}, 1),
	}
}

// Ping reports whether the store is reachable.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// compile returns the compiled form of a stored blueprint, cached until the
// blueprint's UpdatedAt changes (so every replica sees a change at once).
func (s *Service) compile(bp *Blueprint) (*CompiledBlueprint, error) {
	s.mu.Lock()
	e, ok := s.compiled[bp.Identifier]
	s.mu.Unlock()
	if ok && e.updatedAt.Equal(bp.UpdatedAt) {
		return e.c, nil
	}
	c, err := CompileBlueprint(bp)
	if err != nil {
		return nil, fmt.Errorf("compile stored blueprint %s: %w", bp.Identifier, err)
	}
	s.mu.Lock()
	s.compiled[bp.Identifier] = compiledEntry{updatedAt: bp.UpdatedAt, c: c}
	s.mu.Unlock()
	return c, nil
}

// lastCompiled returns the blueprint as last compiled, nil if never: a
// hint, possibly stale.
func (s *Service) lastCompiled(id string) *Blueprint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.compiled[id]; ok {
		return e.c.Blueprint
	}
	return nil
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) event(ctx context.Context, typ, bp, id string, before, after any) Event {
	return Event{
		Type:       typ,
		Blueprint:  bp,
		Identifier: id,
		Before:     rawJSON(before),
		After:      rawJSON(after),
		Actor:      ActorFrom(ctx).ID,
		At:         s.timestamp(),
	}
}

// entityEvent describes an entity change; the store fills Before and After
// from the entities it writes, so each is serialised once.
func (s *Service) entityEvent(ctx context.Context, typ string, ref Ref) Event {
	return Event{Type: typ, Blueprint: ref.Blueprint, Identifier: ref.Identifier, Actor: ActorFrom(ctx).ID, At: s.timestamp(), Depth: DepthFrom(ctx)}
}

type depthKey struct{}

// WithDepth marks the changes made with ctx as caused by a chain of depth
// automations: their events carry it, so that an automation reacting to
// them continues the count and a loop ends at a limit.
func WithDepth(ctx context.Context, depth int) context.Context {
	return context.WithValue(ctx, depthKey{}, depth)
}

// DepthFrom returns the automation depth of ctx (0 when none).
func DepthFrom(ctx context.Context) int {
	d, _ := ctx.Value(depthKey{}).(int)
	return d
}

func rawJSON(v any) json.RawMessage {
	switch t := v.(type) {
	case nil:
		return json.RawMessage("null")
	case *Entity:
		if t == nil {
			return json.RawMessage("null")
		}
	case *Blueprint:
		if t == nil {
			return json.RawMessage("null")
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return raw
}

// Events reads the change stream (see Store.Events).
// Entity events the actor may not read come back redacted, with only ID
// set, so a reader can move past them.
func (s *Service) Events(ctx context.Context, after string, count int, block time.Duration) ([]Event, error) {
	evs, err := s.store.Events(ctx, after, count, block)
	if err != nil {
		return nil, err
	}
	return s.filterEvents(ctx, evs)
}

// EventBounds returns the oldest and newest event ids in the stream (see
// Store.EventBounds).
func (s *Service) EventBounds(ctx context.Context) (oldest, newest string, err error) {
	return s.store.EventBounds(ctx)
}

// EventIDBefore reports whether stream id a comes before b ("0" and ""
// come before every id).
func EventIDBefore(a, b string) bool {
	am, as := splitEventID(a)
	bm, bs := splitEventID(b)
	if am != bm {
		return am < bm
	}
	return as < bs
}

func splitEventID(id string) (ms, seq uint64) {
	head, tail, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(head, 10, 64)
	seq, _ = strconv.ParseUint(tail, 10, 64)
	return ms, seq
}

// History returns an entity's recent changes, oldest first.
func (s *Service) History(ctx context.Context, ref Ref) ([]Event, error) {
	if _, err := s.GetEntity(ctx, ref); err != nil {
		return nil, err
	}
	return s.store.History(ctx, ref)
}

// blueprintMap loads every blueprint keyed by identifier.
func (s *Service) blueprintMap(ctx context.Context) (map[string]*Blueprint, error) {
	all, err := s.store.Blueprints(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Blueprint, len(all))
	for _, bp := range all {
		out[bp.Identifier] = bp
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
