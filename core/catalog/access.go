package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Roles of authenticated users (core/access assigns them).
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleViewer = "viewer"
)

// Roles code gives to non-human actors; no user or token carries them and
// no permission may list them.
const (
	// RoleSystem is an internal caller (SystemActor), trusted.
	RoleSystem = "system"
	// RoleIntegration is an integration installation (IntegrationActor),
	// confined to its Lane.
	RoleIntegration = "integration"
)

// Operations an Authorizer decides on.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	// OpPut creates or replaces a blueprint.
	OpPut = "put"
)

// ProtectedPrefix starts the identifiers of protected blueprints (the
// built-in _user and _team): only admins change them or their entities.
// It is the only place an identifier may start with "_".
const ProtectedPrefix = "_"

// IsProtected reports whether a blueprint identifier is protected.
func IsProtected(blueprint string) bool { return strings.HasPrefix(blueprint, ProtectedPrefix) }

// Permissions is a blueprint's access policy (DESIGN §4 "Access"). A nil
// Permission means "admins and members"; an empty one means admins only.
// Admins may always do everything, viewers never write.
type Permissions struct {
	Create *Permission `json:"create,omitempty"`
	Update *Permission `json:"update,omitempty"`
	Delete *Permission `json:"delete,omitempty"`
	Read   *ReadPolicy `json:"read,omitempty"`
	// Properties adds a permission for changing single properties.
	Properties map[string]PropertyPermission `json:"properties,omitempty"`
}

// Permission admits an actor whose role, team or identifier is listed, or
// (with OwningTeam) whose teams intersect the entity's owning teams.
type Permission struct {
	Roles      []string `json:"roles,omitempty"`
	Teams      []string `json:"teams,omitempty"`
	Users      []string `json:"users,omitempty"`
	OwningTeam bool     `json:"owningTeam,omitempty"`
}

// ReadPolicy scopes reads: with OwnedOnly, non-admins see only entities
// their teams own.
type ReadPolicy struct {
	OwnedOnly bool `json:"ownedOnly"`
}

// PropertyPermission guards changes of one property on update.
type PropertyPermission struct {
	Update *Permission `json:"update,omitempty"`
}

// Ownership makes an entity also owned by the teams ($team) of the
// entities its relation Via points at: a workload with
// {"via": "service"} is owned by its own teams and its service's teams.
// Only one hop is followed.
type Ownership struct {
	Via string `json:"via"`
}

// WriteCheck is one entity write to authorize.
type WriteCheck struct {
	Op        string // OpCreate, OpUpdate or OpDelete
	Blueprint *Blueprint
	// Before is the stored entity (nil on create), After the candidate
	// (nil on delete).
	Before, After *Entity
	// Owners are the entity's owning teams (own $team plus those inherited
	// through Blueprint.Ownership): of After on create, of Before otherwise.
	Owners []string
}

// Authorizer decides who may change blueprints and read or write entities.
// The Service calls it inside every write and read path; a nil Authorizer
// allows everything (tests and internal callers). Refusals wrap
// ErrForbidden. The actor is ActorFrom(ctx).
type Authorizer interface {
	// CanChangeBlueprint authorizes OpPut (bp is the new definition) or
	// OpDelete (bp carries only the identifier).
	CanChangeBlueprint(ctx context.Context, op string, bp *Blueprint) error
	// CanWrite authorizes one entity write.
	CanWrite(ctx context.Context, w WriteCheck) error
	// ReadFiltered reports whether CanRead may refuse some entity of bp;
	// when false, reads skip the per-entity check.
	ReadFiltered(ctx context.Context, bp *Blueprint) bool
	// CanRead reports whether the actor may see e, owned by owners.
	CanRead(ctx context.Context, bp *Blueprint, e *Entity, owners []string) bool
}

// blueprintIdentifierProblem is schemaIdentifierProblem allowing one
// leading ProtectedPrefix.
func blueprintIdentifierProblem(s string) string {
	if msg := schemaIdentifierProblem(strings.TrimPrefix(s, ProtectedPrefix)); msg != "" {
		return msg + " (optionally prefixed with " + ProtectedPrefix + ")"
	}
	return ""
}

var knownRoles = []string{RoleAdmin, RoleMember, RoleViewer}

// validateAccess checks a blueprint's permissions and ownership.
func validateAccess(bp *Blueprint, vs *violations) {
	if o := bp.Ownership; o != nil {
		if _, ok := bp.Relations[o.Via]; !ok {
			vs.add("/ownership/via", "must name a relation of the blueprint")
		}
	}
	p := bp.Permissions
	if p == nil {
		return
	}
	for _, x := range []struct {
		name string
		p    *Permission
	}{{"create", p.Create}, {"update", p.Update}, {"delete", p.Delete}} {
		validatePermission(x.p, pointer("permissions", x.name), vs)
	}
	for _, name := range sortedKeys(p.Properties) {
		path := pointer("permissions", "properties", name)
		if _, ok := bp.Schema.Properties[name]; !ok {
			vs.add(path, "property %q is not defined", name)
		}
		if p.Properties[name].Update == nil {
			vs.add(path+"/update", "required")
		}
		validatePermission(p.Properties[name].Update, path+"/update", vs)
	}
}

func validatePermission(p *Permission, path string, vs *violations) {
	if p == nil {
		return
	}
	for i, r := range p.Roles {
		if !slices.Contains(knownRoles, r) {
			vs.add(path+"/roles/"+strconv.Itoa(i), "must be one of %s", strings.Join(knownRoles, ", "))
		}
	}
	for i, t := range p.Teams {
		if msg := schemaIdentifierProblem(t); msg != "" {
			vs.add(path+"/teams/"+strconv.Itoa(i), "%s", msg)
		}
	}
	for i, u := range p.Users {
		if msg := schemaIdentifierProblem(u); msg != "" {
			vs.add(path+"/users/"+strconv.Itoa(i), "%s", msg)
		}
	}
}

// authorizeBlueprint asks the Authorizer about a blueprint change.
func (s *Service) authorizeBlueprint(ctx context.Context, op string, bp *Blueprint) error {
	if s.authz == nil {
		return nil
	}
	return s.authz.CanChangeBlueprint(ctx, op, bp)
}

// OwningTeams returns an entity's owning teams: its $team plus, when its
// blueprint declares Ownership, the teams of the entities the ownership
// relation points at (what owningTeam permissions check).
func (s *Service) OwningTeams(ctx context.Context, e *Entity) ([]string, error) {
	bp, err := s.store.Blueprint(ctx, e.Blueprint)
	if err != nil {
		return nil, err
	}
	teams, err := s.owningTeams(ctx, bp, []*Entity{e}, map[Ref]*Entity{})
	if err != nil {
		return nil, err
	}
	return teams[0], nil
}

// owningTeams returns each entity's owning teams: its own $team plus,
// when the blueprint declares Ownership, the teams of the entities its
// Via relation points at. known supplies entities not stored yet (a batch's
// candidates) and caches what was read.
func (s *Service) owningTeams(ctx context.Context, bp *Blueprint, ents []*Entity, known map[Ref]*Entity) ([][]string, error) {
	out := make([][]string, len(ents))
	var rel Relation
	via := ""
	if bp.Ownership != nil {
		via = bp.Ownership.Via
		rel = bp.Relations[via]
	}
	if via == "" || rel.Target == "" {
		for i, e := range ents {
			if e != nil {
				out[i] = e.Team
			}
		}
		return out, nil
	}
	var missing []Ref
	for _, e := range ents {
		if e == nil {
			continue
		}
		for _, id := range e.RelationTargets(via) {
			r := Ref{Blueprint: rel.Target, Identifier: id}
			if _, ok := known[r]; !ok {
				known[r] = nil
				missing = append(missing, r)
			}
		}
	}
	if len(missing) > 0 {
		got, err := s.store.Entities(ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("owners of %s: %w", bp.Identifier, err)
		}
		for i, e := range got {
			known[missing[i]] = e
		}
	}
	for i, e := range ents {
		if e == nil {
			continue
		}
		teams := slices.Clone(e.Team)
		for _, id := range e.RelationTargets(via) {
			if t := known[Ref{Blueprint: rel.Target, Identifier: id}]; t != nil {
				for _, team := range t.Team {
					if !slices.Contains(teams, team) {
						teams = append(teams, team)
					}
				}
			}
		}
		out[i] = teams
	}
	return out, nil
}

// authorize asks the Authorizer about every candidate write of the batch,
// failing refused items individually.
func (w *batch) authorize(ctx context.Context) error {
	authz := w.s.authz
	if authz == nil {
		return nil
	}
	known := map[Ref]*Entity{}
	for _, a := range w.afters {
		if a != nil {
			known[a.Ref()] = a
		}
	}
	for i, after := range w.afters {
		if after == nil {
			continue
		}
		bp := w.bps[after.Blueprint].Blueprint
		check := WriteCheck{Op: OpCreate, Blueprint: bp, Before: w.befores[i], After: after}
		subject := after
		if check.Before != nil {
			check.Op, subject = OpUpdate, check.Before
		}
		owners, err := w.s.owningTeams(ctx, bp, []*Entity{subject}, known)
		if err != nil {
			return err
		}
		check.Owners = owners[0]
		if err := authz.CanWrite(ctx, check); err != nil {
			w.fail(i, err)
		}
	}
	return nil
}

// authorize asks the Authorizer about every entity a deletion removes.
func (d *deletion) authorize(ctx context.Context, order []Ref, doomed map[Ref]*Entity) error {
	authz := d.s.authz
	if authz == nil {
		return nil
	}
	known := map[Ref]*Entity{}
	for _, ref := range order {
		e := doomed[ref]
		if e == nil {
			continue
		}
		bp, err := d.blueprint(ctx, ref.Blueprint)
		if err != nil {
			return err
		}
		owners, err := d.s.owningTeams(ctx, bp, []*Entity{e}, known)
		if err != nil {
			return err
		}
		if err := authz.CanWrite(ctx, WriteCheck{Op: OpDelete, Blueprint: bp, Before: e, Owners: owners[0]}); err != nil {
			return err
		}
	}
	return nil
}

// readFilter decides entity visibility for one request; nil means every
// entity is visible. It is safe for concurrent use.
type readFilter struct {
	s        *Service
	ctx      context.Context
	bps      map[string]*Blueprint
	filtered map[string]bool

	mu    sync.Mutex
	known map[Ref]*Entity
}

// newReadFilter returns the filter for the actor of ctx over the given
// blueprints, or nil when nothing is filtered.
func (s *Service) newReadFilter(ctx context.Context, bps map[string]*Blueprint) *readFilter {
	if s.authz == nil {
		return nil
	}
	f := &readFilter{s: s, ctx: ctx, bps: bps, filtered: map[string]bool{}, known: map[Ref]*Entity{}}
	for id, bp := range bps {
		if s.authz.ReadFiltered(ctx, bp) {
			f.filtered[id] = true
		}
	}
	if len(f.filtered) == 0 {
		return nil
	}
	return f
}

// allows reports whether the actor may see e. An unreadable owner lookup
// hides the entity.
func (f *readFilter) allows(e *Entity) bool {
	if f == nil || e == nil || !f.filtered[e.Blueprint] {
		return true
	}
	f.mu.Lock()
	ok, err := f.s.readable(f.ctx, f.bps[e.Blueprint], e, f.known)
	f.mu.Unlock()
	return ok && err == nil
}

// visibility is the filter as a Visibility (nil when nothing is hidden).
func (f *readFilter) visibility() Visibility {
	if f == nil {
		return nil
	}
	return f.visible
}

// visible reports which of refs the actor may see; a missing entity of a
// filtered blueprint is not visible, others are not read.
func (f *readFilter) visible(refs []Ref) ([]bool, error) {
	out := make([]bool, len(refs))
	var read []Ref
	var at []int
	for i, r := range refs {
		if f == nil || !f.filtered[r.Blueprint] {
			out[i] = true
			continue
		}
		read = append(read, r)
		at = append(at, i)
	}
	if len(read) == 0 {
		return out, nil
	}
	ents, err := f.s.store.Entities(f.ctx, read)
	if err != nil {
		return nil, err
	}
	for k, e := range ents {
		out[at[k]] = e != nil && f.allows(e)
	}
	return out, nil
}

// readable reports whether the actor of ctx may read e, an entity of a
// blueprint whose reads the Authorizer filters; known caches the entities
// ownership is inherited from.
func (s *Service) readable(ctx context.Context, bp *Blueprint, e *Entity, known map[Ref]*Entity) (bool, error) {
	owners, err := s.owningTeams(ctx, bp, []*Entity{e}, known)
	if err != nil {
		return false, err
	}
	return s.authz.CanRead(ctx, bp, e, owners[0]), nil
}

// readChecks decides, inside a write transaction, whether the actor may
// read entities: a write must not reveal or touch what a read would not
// show. Blueprints come from blueprint, each asked about once.
type readChecks struct {
	s         *Service
	blueprint func(ctx context.Context, id string) (*Blueprint, error)
	filtered  map[string]*Blueprint // nil value: reads not filtered
	known     map[Ref]*Entity
}

func (s *Service) newReadChecks(blueprint func(context.Context, string) (*Blueprint, error)) *readChecks {
	return &readChecks{s: s, blueprint: blueprint, filtered: map[string]*Blueprint{}, known: map[Ref]*Entity{}}
}

// filteredBlueprint returns the blueprint when the Authorizer filters
// the actor's reads of it, nil otherwise (also for a missing blueprint).
func (c *readChecks) filteredBlueprint(ctx context.Context, id string) (*Blueprint, error) {
	if c.s.authz == nil {
		return nil, nil
	}
	if bp, done := c.filtered[id]; done {
		return bp, nil
	}
	bp, err := c.blueprint(ctx, id)
	if errors.Is(err, ErrNotFound) {
		bp, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if bp != nil && !c.s.authz.ReadFiltered(ctx, bp) {
		bp = nil
	}
	c.filtered[id] = bp
	return bp, nil
}

// hidden reports whether e exists and the actor may not read it.
func (c *readChecks) hidden(ctx context.Context, e *Entity) (bool, error) {
	if e == nil {
		return false, nil
	}
	bp, err := c.filteredBlueprint(ctx, e.Blueprint)
	if bp == nil || err != nil {
		return false, err
	}
	ok, err := c.s.readable(ctx, bp, e, c.known)
	return !ok, err
}

// listFiltered is ListEntities when some entities may be hidden: it reads
// the whole blueprint so the total counts only visible entities.
func (s *Service) listFiltered(ctx context.Context, f *readFilter, bp, after string, limit int) (*EntityPage, error) {
	const chunk = 1000
	page := &EntityPage{}
	cursor := ""
	for {
		ids, _, err := s.store.EntityIDs(ctx, bp, cursor, chunk)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		ents, err := s.entitiesOf(ctx, bp, ids)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e == nil || !f.allows(e) {
				continue
			}
			page.Total++
			if e.Identifier <= after && after != "" {
				continue
			}
			switch {
			case len(page.Entities) < limit:
				page.Entities = append(page.Entities, e)
			case page.Next == "":
				page.Next = page.Entities[len(page.Entities)-1].Identifier
			}
		}
		cursor = ids[len(ids)-1]
		if len(ids) < chunk {
			break
		}
	}
	if page.Entities == nil {
		page.Entities = []*Entity{}
	}
	if err := s.decorate(ctx, page.Entities); err != nil {
		return nil, err
	}
	return page, nil
}

// filterEvents redacts (keeps only the ID of) entity events whose entity
// the actor may not see, neither before nor after the change.
func (s *Service) filterEvents(ctx context.Context, evs []Event) ([]Event, error) {
	if s.authz == nil || len(evs) == 0 {
		return evs, nil
	}
	bps, err := s.blueprintMap(ctx)
	if err != nil {
		return nil, err
	}
	f := s.newReadFilter(ctx, bps)
	if f == nil {
		return evs, nil
	}
	for i, ev := range evs {
		if ev.Identifier == "" || !f.filtered[ev.Blueprint] {
			continue
		}
		visible := false
		for _, raw := range []json.RawMessage{ev.Before, ev.After} {
			var e Entity
			if len(raw) > 0 && string(raw) != "null" && json.Unmarshal(raw, &e) == nil && f.allows(&e) {
				visible = true
				break
			}
		}
		if !visible {
			evs[i] = Event{ID: ev.ID}
		}
	}
	return evs, nil
}

// Placeholders a search rule value may use: "$me" is the actor's
// identifier, "$me.teams" (inside a list value) the actor's teams, e.g.
// {"property": "$team", "operator": "containsAny", "value": ["$me.teams"]}
// finds "my" entities.
const (
	MeValue      = "$me"
	MyTeamsValue = "$me.teams"
)

// expandMe replaces the "$me" placeholders in rule values.
func expandMe(r *Rule, a Actor) {
	r.Walk(func(r *Rule) {
		switch v := r.Value.(type) {
		case string:
			if v == MeValue {
				r.Value = a.ID
			}
		case []any:
			var out []any
			changed := false
			for _, x := range v {
				switch x {
				case MeValue:
					out, changed = append(out, a.ID), true
				case MyTeamsValue:
					changed = true
					for _, t := range a.Teams {
						out = append(out, t)
					}
				default:
					out = append(out, x)
				}
			}
			if changed {
				if out == nil {
					out = []any{}
				}
				r.Value = out
			}
		}
	})
}

// LatestChange returns the most recent event of an entity (kept after its
// deletion), or nil when it has none.
func (s *Service) LatestChange(ctx context.Context, ref Ref) (*Event, error) {
	evs, err := s.store.History(ctx, ref)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return &evs[len(evs)-1], nil
}
