// Package access is Portico's identity and access layer: users and teams
// (entities of the built-in _user and _team blueprints), API tokens, roles
// and scopes, blueprint permissions and ownership (Authorizer, the
// catalog's access policy), reusable action policies, per-token rate limits and the
// audit log. It defines the Store it needs; redisaccess implements it.
//
// Decisions, in order: the system actor (catalog.SystemActor: bootstrap,
// timers, workflows, the integration host's bookkeeping) is trusted; an
// actor without a role (a context nobody authenticated) may neither write
// nor change blueprints, and reads nothing of a blueprint; an integration
// installation (catalog.IntegrationActor) writes and reads only entities
// of its lane's blueprints, never protected ones, never changes entities
// another installation owns and reads read.ownedOnly entities only when it
// wrote them; scopes restrict a token whatever its user's role (reads need
// "read", writes "write", access administration "admin"); admins may do
// everything; viewers only read; members read everything (except entities
// of blueprints with read.ownedOnly that their teams do not own) and write
// what the blueprint's permissions allow (absent permissions: admins and
// members). Entities of protected blueprints ("_" prefix) are written by
// admins only.
package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/ratelimit"

	"github.com/portico-dev/portico/internal/errkind"
)

// Scopes a token may carry.
const (
	ScopeRead    = "read"
	ScopeWrite   = "write"
	ScopeRun     = "run"
	ScopeApprove = "approve"
	ScopeAdmin   = "admin"
)

// AllScopes lists every scope, the default of a new token.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeRun, ScopeApprove, ScopeAdmin}

// Built-in blueprints.
const (
	UserBlueprint = "_user"
	TeamBlueprint = "_team"
)

// BootstrapAdmin is the actor of the bootstrap admin token.
const BootstrapAdmin = "admin"

// ErrUnauthenticated: the token is unknown, revoked or expired, or its
// user no longer exists (HTTP 401).
var ErrUnauthenticated = errkind.New(errkind.Unauthenticated, "invalid or expired token")

// Principal is an authenticated caller: ID (the user's email, or "admin"
// for the bootstrap token), Role, Teams, Scopes and TokenID.
type Principal = catalog.Actor

// Options configure a Service.
type Options struct {
	// AdminToken is the bootstrap admin token ("" disables it).
	AdminToken string
	// CacheTTL bounds how long a resolved token is trusted without
	// re-reading it and its user (default 30 s): a revocation in another
	// process, or a role or team change, takes effect within it.
	CacheTTL time.Duration
	// RateLimit is the sustained requests per second allowed per token
	// (0: unlimited); RateBurst the bucket size (default 2×RateLimit).
	// The bootstrap admin token is not limited.
	RateLimit float64
	RateBurst int
	// Logger receives audit-append failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Service authenticates tokens, authorizes catalog access and keeps the
// audit log.
type Service struct {
	cat     *catalog.Service
	store   Store
	opts    Options
	cache   tokenCache
	limiter *ratelimit.Limiter
}

// NewService returns the access layer over cat and store. cat enforces
// the policy when it was built with Authorizer (catalog.Options).
func NewService(cat *catalog.Service, store Store, opts Options) *Service {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{cat: cat, store: store, opts: opts, cache: tokenCache{entries: map[string]*cacheEntry{}}}
	if opts.RateLimit > 0 {
		s.limiter = ratelimit.New(opts.RateLimit, opts.RateBurst)
	}
	return s
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// Bootstrap creates the built-in _team and _user blueprints when missing.
// Existing definitions (possibly extended by an admin) are left alone.
func (s *Service) Bootstrap(ctx context.Context) error {
	ctx = catalog.WithActor(ctx, catalog.SystemActor("system"))
	for _, bp := range builtinBlueprints() {
		if _, _, err := s.cat.PutBlueprint(ctx, bp, true); err != nil && !errors.Is(err, catalog.ErrAlreadyExists) {
			return fmt.Errorf("bootstrap blueprint %s: %w", bp.Identifier, err)
		}
	}
	return nil
}

// adminsOnly is the permission of the built-in blueprints' entities.
func adminsOnly() *catalog.Permissions {
	p := func() *catalog.Permission { return &catalog.Permission{Roles: []string{catalog.RoleAdmin}} }
	return &catalog.Permissions{Create: p(), Update: p(), Delete: p()}
}

// builtinBlueprints returns _team first (_user relates to it).
func builtinBlueprints() []*catalog.Blueprint {
	return []*catalog.Blueprint{
		{
			Identifier:  TeamBlueprint,
			Title:       "Team",
			Description: "A team; its members are the _user entities whose teams relation points at it.",
			Schema: catalog.Schema{Properties: map[string]catalog.Property{
				"name": {Type: "string", Title: "Name"},
			}},
			Relations:   map[string]catalog.Relation{"parent": {Title: "Parent team", Target: TeamBlueprint}},
			Permissions: adminsOnly(),
		},
		{
			Identifier:  UserBlueprint,
			Title:       "User",
			Description: "A user (identifier: email) or, with serviceAccount, a service account.",
			Schema: catalog.Schema{Properties: map[string]catalog.Property{
				"name":           {Type: "string", Title: "Name"},
				"role":           {Type: "string", Title: "Role", Enum: []any{catalog.RoleAdmin, catalog.RoleMember, catalog.RoleViewer}},
				"serviceAccount": {Type: "boolean", Title: "Service account"},
			}},
			Relations:   map[string]catalog.Relation{"teams": {Title: "Teams", Target: TeamBlueprint, Many: true}},
			Permissions: adminsOnly(),
		},
	}
}

// checkBuiltinShape refuses a replacement of a built-in blueprint that
// drops or changes what access relies on.
func checkBuiltinShape(bp *catalog.Blueprint) error {
	for _, want := range builtinBlueprints() {
		if want.Identifier != bp.Identifier {
			continue
		}
		var vs []catalog.Violation
		for name, p := range want.Schema.Properties {
			got, ok := bp.Schema.Properties[name]
			if !ok || got.Type != p.Type || (len(p.Enum) > 0 && !slices.Equal(got.Enum, p.Enum)) {
				vs = append(vs, catalog.Violation{Path: "/schema/properties/" + name, Message: fmt.Sprintf("the built-in blueprint %s must keep this property as defined", bp.Identifier)})
			}
		}
		for name, r := range want.Relations {
			got, ok := bp.Relations[name]
			if !ok || got.Target != r.Target || got.Many != r.Many {
				vs = append(vs, catalog.Violation{Path: "/relations/" + name, Message: fmt.Sprintf("the built-in blueprint %s must keep this relation as defined", bp.Identifier)})
			}
		}
		if len(vs) > 0 {
			slices.SortFunc(vs, func(a, b catalog.Violation) int { return cmp.Compare(a.Path, b.Path) })
			return &catalog.ValidationError{Message: "invalid built-in blueprint", Violations: vs}
		}
	}
	return nil
}

func isBuiltin(id string) bool { return id == UserBlueprint || id == TeamBlueprint }

// HasScope reports whether a principal's credential carries scope (nil
// scopes: unrestricted).
func HasScope(p Principal, scope string) bool {
	return p.Scopes == nil || slices.Contains(p.Scopes, scope)
}

// RequireScope returns an ErrForbidden naming the scope when p lacks it.
func RequireScope(p Principal, scope string) error {
	if HasScope(p, scope) {
		return nil
	}
	return fmt.Errorf("%w: missing scope: %s", catalog.ErrForbidden, scope)
}

// RequireAdmin requires the admin role (or the system actor) and the
// admin scope.
func RequireAdmin(p Principal, what string) error {
	if p.Role != catalog.RoleAdmin && p.Role != catalog.RoleSystem {
		return fmt.Errorf("%w: missing permission: %s (role admin)", catalog.ErrForbidden, what)
	}
	return RequireScope(p, ScopeAdmin)
}

// Limit takes one request from the token's bucket: ok, or how long to
// wait. The bootstrap admin and the system actor are not limited.
func (s *Service) Limit(p Principal) (bool, time.Duration) {
	if s.limiter == nil || p.Role == catalog.RoleSystem || p.TokenID == bootstrapTokenID {
		return true, 0
	}
	key := p.TokenID
	if key == "" {
		key = "actor:" + p.ID
	}
	return s.limiter.Allow(key, s.opts.Now())
}
