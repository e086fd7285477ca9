package access

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/portico-dev/portico/core/catalog"
)

// Authorizer is the access policy the catalog asks inside every read and
// write path (catalog.Options.Authorizer). It decides from the actor of
// the context and the blueprint alone, so it holds no state: the catalog
// is built with it before the Service, which needs the catalog.
type Authorizer struct{}

var _ catalog.Authorizer = Authorizer{}

// CanChangeBlueprint implements catalog.Authorizer: blueprint definitions
// (and with them permissions) are changed by admins holding the write
// scope, protected ones only with the admin scope; the built-in blueprints
// are never deleted and keep their core.
func (Authorizer) CanChangeBlueprint(ctx context.Context, op string, bp *catalog.Blueprint) error {
	if op == catalog.OpDelete && isBuiltin(bp.Identifier) {
		return fmt.Errorf("%w: missing permission: delete blueprint %s (built-in blueprints are never deleted)", catalog.ErrForbidden, bp.Identifier)
	}
	a := catalog.ActorFrom(ctx)
	switch a.Role {
	case catalog.RoleSystem:
	case "", catalog.RoleIntegration:
		return fmt.Errorf("%w: missing permission: %s blueprint %s (%s)", catalog.ErrForbidden, verb(op), bp.Identifier, nobody(a))
	default:
		if err := RequireScope(a, ScopeWrite); err != nil {
			return err
		}
		if a.Role != catalog.RoleAdmin {
			return fmt.Errorf("%w: missing permission: %s blueprint %s (role admin)", catalog.ErrForbidden, verb(op), bp.Identifier)
		}
		if catalog.IsProtected(bp.Identifier) {
			if err := RequireScope(a, ScopeAdmin); err != nil {
				return err
			}
		}
	}
	if op == catalog.OpPut && isBuiltin(bp.Identifier) {
		return checkBuiltinShape(bp)
	}
	return nil
}

func verb(op string) string {
	if op == catalog.OpPut {
		return "change"
	}
	return op
}

// nobody explains why an actor without a user role is refused.
func nobody(a Principal) string {
	if a.Role == catalog.RoleIntegration {
		return "integration " + a.ID + " only writes entities"
	}
	return "no authenticated actor"
}

// CanWrite implements catalog.Authorizer.
func (Authorizer) CanWrite(ctx context.Context, w catalog.WriteCheck) error {
	a := catalog.ActorFrom(ctx)
	switch a.Role {
	case catalog.RoleSystem:
		return nil
	case catalog.RoleIntegration:
		return laneWrite(a, w)
	case "":
		return fmt.Errorf("%w: missing permission: %s %s (no authenticated actor)", catalog.ErrForbidden, w.Op, w.Blueprint.Identifier)
	}
	if err := RequireScope(a, ScopeWrite); err != nil {
		return err
	}
	if a.Role == catalog.RoleAdmin {
		return nil
	}
	bp := w.Blueprint
	if a.Role != catalog.RoleMember {
		return fmt.Errorf("%w: missing permission: %s %s (role %s is read-only)", catalog.ErrForbidden, w.Op, bp.Identifier, a.Role)
	}
	if catalog.IsProtected(bp.Identifier) {
		return fmt.Errorf("%w: missing permission: %s %s (role admin)", catalog.ErrForbidden, w.Op, bp.Identifier)
	}
	var perms catalog.Permissions
	if bp.Permissions != nil {
		perms = *bp.Permissions
	}
	p := map[string]*catalog.Permission{catalog.OpCreate: perms.Create, catalog.OpUpdate: perms.Update, catalog.OpDelete: perms.Delete}[w.Op]
	if p != nil && !Admits(p, a, w.Owners) {
		return fmt.Errorf("%w: missing permission: %s %s (%s)", catalog.ErrForbidden, w.Op, bp.Identifier, Describe(p))
	}
	if w.Op != catalog.OpUpdate || len(perms.Properties) == 0 {
		return nil
	}
	for _, name := range sortedKeys(perms.Properties) {
		pp := perms.Properties[name].Update
		if pp == nil || !changed(w.Before, w.After, name) {
			continue
		}
		if !Admits(pp, a, w.Owners) {
			return fmt.Errorf("%w: missing permission: update %s.%s (%s)", catalog.ErrForbidden, bp.Identifier, name, Describe(pp))
		}
	}
	return nil
}

// laneWrite decides an integration installation's write: only blueprints
// of its lane (never protected ones), and never an entity another
// installation owns.
func laneWrite(a Principal, w catalog.WriteCheck) error {
	bp := w.Blueprint.Identifier
	if !a.InLane(bp) {
		return fmt.Errorf("%w: missing permission: %s %s (outside the lane of %s: %v)", catalog.ErrForbidden, w.Op, bp, a.ID, lane(a))
	}
	if a.OwnedByOther(w.Before) {
		return fmt.Errorf("%w: missing permission: %s %s/%s (owned by %s)", catalog.ErrForbidden, w.Op, bp, w.Before.Identifier, w.Before.Datasource)
	}
	return nil
}

// lane lists the blueprints an integration actor may write, for messages.
func lane(a Principal) []string {
	out := []string{}
	for _, bp := range a.Lane {
		if a.InLane(bp) {
			out = append(out, bp)
		}
	}
	return out
}

// ReadFiltered implements catalog.Authorizer: admins and the system actor
// see everything; an actor without a role sees nothing; an integration is
// confined to its lane; otherwise only blueprints with read.ownedOnly hide
// entities.
func (Authorizer) ReadFiltered(ctx context.Context, bp *catalog.Blueprint) bool {
	switch a := catalog.ActorFrom(ctx); a.Role {
	case catalog.RoleAdmin, catalog.RoleSystem:
		return false
	case "":
		return true
	case catalog.RoleIntegration:
		return !a.InLane(bp.Identifier) || ownedOnly(bp)
	}
	return ownedOnly(bp)
}

func ownedOnly(bp *catalog.Blueprint) bool {
	return bp.Permissions != nil && bp.Permissions.Read != nil && bp.Permissions.Read.OwnedOnly
}

// CanRead implements catalog.Authorizer: the actor's teams must own e; an
// integration reads entities of its lane, read.ownedOnly ones only when it
// wrote them.
func (auth Authorizer) CanRead(ctx context.Context, bp *catalog.Blueprint, e *catalog.Entity, owners []string) bool {
	if !auth.ReadFiltered(ctx, bp) {
		return true
	}
	a := catalog.ActorFrom(ctx)
	switch a.Role {
	case "":
		return false
	case catalog.RoleIntegration:
		return a.InLane(bp.Identifier) && (!ownedOnly(bp) || e.Datasource == a.Datasource)
	}
	return intersects(owners, a.Teams)
}

// Admits reports whether p admits the principal for an entity owned by
// owners. Admins are always admitted.
func Admits(p *catalog.Permission, a Principal, owners []string) bool {
	switch {
	case a.Role == catalog.RoleAdmin:
		return true
	case a.Role != "" && slices.Contains(p.Roles, a.Role):
		return true
	case slices.Contains(p.Users, a.ID):
		return true
	case intersects(p.Teams, a.Teams):
		return true
	case p.OwningTeam && intersects(owners, a.Teams):
		return true
	}
	return false
}

// Describe names what a permission admits, for 403 messages:
// "roles member; teams platform; owning team".
func Describe(p *catalog.Permission) string {
	var parts []string
	if len(p.Roles) > 0 {
		parts = append(parts, "roles "+strings.Join(p.Roles, ", "))
	}
	if len(p.Teams) > 0 {
		parts = append(parts, "teams "+strings.Join(p.Teams, ", "))
	}
	if len(p.Users) > 0 {
		parts = append(parts, "users "+strings.Join(p.Users, ", "))
	}
	if p.OwningTeam {
		parts = append(parts, "owning team")
	}
	if len(parts) == 0 {
		return "role admin"
	}
	return strings.Join(parts, "; ")
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// changed reports whether property name differs between before and after.
func changed(before, after *catalog.Entity, name string) bool {
	var x, y any
	var okX, okY bool
	if before != nil {
		x, okX = before.Properties[name]
	}
	if after != nil {
		y, okY = after.Properties[name]
	}
	if okX != okY {
		return true
	}
	return !reflect.DeepEqual(catalog.JSONValue(x), catalog.JSONValue(y))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
