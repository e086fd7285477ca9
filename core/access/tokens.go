package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-dev/portico/core/catalog"
)

// Token lifetimes.
const (
	DefaultTokenLifetime = 720 * time.Hour
	MaxTokenLifetime     = 8760 * time.Hour
	// touchEvery is how often a token's LastUsedAt is rewritten at most.
	touchEvery = time.Minute
	// bootstrapTokenID names the bootstrap admin token in actors and audit.
	bootstrapTokenID = "bootstrap"
)

// Token is an API token's metadata; the secret itself is never stored,
// only its SHA-256 Hash.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	User       string     `json:"user"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"createdAt"`
	CreatedBy  string     `json:"createdBy"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	Hash       string     `json:"-"`
}

// TokenRequest asks for a new token. User defaults to the caller; minting
// for another user (e.g. a service account: a _user entity with
// serviceAccount true) needs the admin role and scope. Scopes default to
// the caller's and may not exceed them; ExpiresIn is a Go duration or
// "<n>d" (default 720h, at most 8760h).
type TokenRequest struct {
	Name      string   `json:"name"`
	User      string   `json:"user"`
	Scopes    []string `json:"scopes"`
	ExpiresIn string   `json:"expiresIn"`
}

// NewToken is a created token with its secret, shown once.
type NewToken struct {
	Token
	Secret string `json:"token"`
}

// HashToken is how tokens are stored and looked up: hex SHA-256.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

func invalid(path, format string, args ...any) error {
	return &catalog.ValidationError{Message: "invalid token request", Violations: []catalog.Violation{{Path: path, Message: fmt.Sprintf(format, args...)}}}
}

// parseLifetime reads a Go duration or "<n>d".
func parseLifetime(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTokenLifetime, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// CreateToken mints a token for the principal of ctx (or, for admins,
// another user).
func (s *Service) CreateToken(ctx context.Context, req TokenRequest) (*NewToken, error) {
	caller := catalog.ActorFrom(ctx)
	user := req.User
	if user == "" {
		if caller.TokenID == bootstrapTokenID {
			return nil, invalid("/user", "required when using the bootstrap admin token (tokens belong to _user entities)")
		}
		user = caller.ID
	}
	if user != caller.ID {
		if err := RequireAdmin(caller, "create tokens for other users"); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		return nil, invalid("/name", "required, at most 200 characters")
	}
	scopes := req.Scopes
	if scopes == nil {
		scopes = caller.Scopes
		if scopes == nil {
			scopes = AllScopes
		}
	}
	scopes = slices.Clone(scopes)
	for i, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return nil, invalid("/scopes/"+strconv.Itoa(i), "must be one of %s", strings.Join(AllScopes, ", "))
		}
		if !HasScope(caller, sc) {
			return nil, fmt.Errorf("%w: missing scope: %s (a token cannot grant more than the one creating it)", catalog.ErrForbidden, sc)
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	life, err := parseLifetime(req.ExpiresIn)
	if err != nil || life <= 0 || life > MaxTokenLifetime {
		return nil, invalid("/expiresIn", "must be a positive duration of at most %s, like \"720h\" or \"30d\"", MaxTokenLifetime)
	}
	if _, err := s.userEntity(ctx, user); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, invalid("/user", "no _user entity %q", user)
		}
		return nil, err
	}
	id, err := randomHex(8)
	if err != nil {
		return nil, err
	}
	secret, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Second)
	t := &NewToken{Secret: "pt_" + secret, Token: Token{
		ID: "tok_" + id, Name: req.Name, User: user, Scopes: scopes,
		CreatedAt: now, CreatedBy: caller.ID, ExpiresAt: now.Add(life),
	}}
	t.Hash = HashToken(t.Secret)
	if err := s.store.PutToken(ctx, &t.Token); err != nil {
		return nil, fmt.Errorf("create token: %w", err)
	}
	s.record(ctx, AuditEntry{Kind: KindTokenCreated, Actor: caller.ID, TokenID: caller.TokenID,
		Resource: "token/" + t.ID, Detail: fmt.Sprintf("token %s for %s, scopes %s, expires %s", t.ID, user, strings.Join(scopes, ","), t.ExpiresAt.Format(time.RFC3339))})
	return t, nil
}

// ListTokens lists the caller's tokens; admins list everyone's (all users
// when user is "").
func (s *Service) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	caller := catalog.ActorFrom(ctx)
	isAdmin := RequireAdmin(caller, "list other users' tokens") == nil
	switch {
	case user == "" && isAdmin:
	case user == "" || user == caller.ID:
		user = caller.ID
	case !isAdmin:
		return nil, RequireAdmin(caller, "list other users' tokens")
	}
	ts, err := s.store.Tokens(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	if ts == nil {
		ts = []*Token{}
	}
	return ts, nil
}

// RevokeToken deletes a token of the caller (admins: any token). Another
// user's token is reported as not found.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	caller := catalog.ActorFrom(ctx)
	t, err := s.store.Token(ctx, id)
	if err != nil {
		return err
	}
	if t.User != caller.ID && RequireAdmin(caller, "revoke other users' tokens") != nil {
		return fmt.Errorf("token %s: %w", id, catalog.ErrNotFound)
	}
	if err := s.store.DeleteToken(ctx, t); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.cache.forget(id)
	s.record(ctx, AuditEntry{Kind: KindTokenRevoked, Actor: caller.ID, TokenID: caller.TokenID, Resource: "token/" + id, Detail: "token of " + t.User})
	return nil
}

// Authenticate implements the API's Authenticator: the bootstrap admin
// token, else a stored token (by hash) whose user exists. Resolutions are
// cached for CacheTTL; revocations in this process apply at once.
func (s *Service) Authenticate(ctx context.Context, secret string) (catalog.Actor, error) {
	if s.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.AdminToken)) == 1 {
		return catalog.Actor{ID: BootstrapAdmin, Role: catalog.RoleAdmin, Scopes: AllScopes, TokenID: bootstrapTokenID}, nil
	}
	hash := HashToken(secret)
	now := s.opts.Now()
	if e := s.cache.get(hash, now); e != nil {
		s.afterUse(ctx, e, now)
		return e.actor, nil
	}
	t, err := s.store.TokenByHash(ctx, hash)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Actor{}, ErrUnauthenticated
	}
	if err != nil {
		return catalog.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	if !now.Before(t.ExpiresAt) {
		return catalog.Actor{}, fmt.Errorf("%w: token %s expired at %s", ErrUnauthenticated, t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	u, err := s.userEntity(ctx, t.User)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Actor{}, fmt.Errorf("%w: user %s no longer exists", ErrUnauthenticated, t.User)
	}
	if err != nil {
		return catalog.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	actor := catalog.Actor{ID: t.User, Role: roleOf(u), Teams: u.RelationTargets("teams"), Scopes: t.Scopes, TokenID: t.ID}
	if actor.Teams == nil {
		actor.Teams = []string{}
	}
	e := &cacheEntry{actor: actor, expires: minTime(now.Add(s.opts.CacheTTL), t.ExpiresAt)}
	if t.LastUsedAt != nil {
		e.touched = *t.LastUsedAt
	}
	s.cache.put(hash, e, now)
	s.afterUse(ctx, e, now)
	return actor, nil
}

// afterUse records LastUsedAt (at most once a minute) and the first use
// of the day ("login").
func (s *Service) afterUse(ctx context.Context, e *cacheEntry, now time.Time) {
	day := now.UTC().Format(time.DateOnly)
	s.cache.mu.Lock()
	touch := now.Sub(e.touched) >= touchEvery
	if touch {
		e.touched = now
	}
	login := e.loginDay != day
	e.loginDay = day
	s.cache.mu.Unlock()
	if touch {
		if err := s.store.TouchToken(ctx, e.actor.TokenID, now.UTC().Truncate(time.Second)); err != nil {
			s.opts.Logger.Warn("record token use", "token", e.actor.TokenID, "err", err)
		}
	}
	if login {
		first, err := s.store.FirstUse(ctx, e.actor.TokenID, day)
		if err != nil {
			s.opts.Logger.Warn("record login", "token", e.actor.TokenID, "err", err)
			return
		}
		if first {
			s.record(ctx, AuditEntry{Kind: KindLogin, Actor: e.actor.ID, TokenID: e.actor.TokenID, Resource: "token/" + e.actor.TokenID})
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Service) userEntity(ctx context.Context, email string) (*catalog.Entity, error) {
	sys := catalog.WithActor(ctx, catalog.SystemActor("system"))
	return s.cat.GetEntity(sys, catalog.Ref{Blueprint: UserBlueprint, Identifier: email})
}

// roleOf reads a _user's role; anything unknown is viewer (least
// privilege).
func roleOf(u *catalog.Entity) string {
	switch r, _ := u.Properties["role"].(string); r {
	case catalog.RoleAdmin, catalog.RoleMember:
		return r
	}
	return catalog.RoleViewer
}

// tokenCache remembers resolved tokens by hash.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	actor    catalog.Actor
	expires  time.Time
	touched  time.Time // last LastUsedAt written (guarded by mu)
	loginDay string    // day of the last login check (guarded by mu)
}

// maxCached bounds the cache; beyond it expired entries are swept.
const maxCached = 10_000

func (c *tokenCache) get(hash string, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[hash]
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *tokenCache) put(hash string, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCached {
		for h, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, h)
			}
		}
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
	}
	c.entries[hash] = e
}

// forget drops a revoked token.
func (c *tokenCache) forget(tokenID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, e := range c.entries {
		if e.actor.TokenID == tokenID {
			delete(c.entries, h)
		}
	}
}
