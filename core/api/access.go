package api

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"

	"github.com/portico-dev/portico/internal/errkind"
)

// errRateLimited is a request over its token's rate limit (429).
var errRateLimited = errkind.New(errkind.RateLimited, "rate limit exceeded, retry later")

// actorKey is where authenticate leaves the actor on the gin context.
const actorKey = "portico.actor"

// readOnlyPosts are POST routes that only read: they need the read scope
// and are not audited.
var readOnlyPosts = map[string]bool{
	"/api/v1/entities/search":    true,
	"/api/v1/entities/aggregate": true,
}

// adminPrefixes are route prefixes whose writes need the admin role
// (plugin registry and integrations).
var adminPrefixes = []string{"/api/v1/plugins", "/api/v1/integrations"}

func isRead(c *gin.Context) bool {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return readOnlyPosts[c.FullPath()]
}

// guard applies the token's rate limit and the coarse scope of the route:
// reads need "read", writes "write" (revoking a token and /me need none);
// finer checks live in the services.
func guard(acc *access.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := catalog.ActorFrom(c.Request.Context())
		if ok, wait := acc.Limit(p); !ok {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
			fail(c, errRateLimited)
			return
		}
		route := c.FullPath()
		scope := access.ScopeWrite
		switch {
		case route == "/api/v1/me" || route == "/api/v1/tokens/:id" && c.Request.Method == http.MethodDelete:
			scope = ""
		case runScopes[c.Request.Method+" "+route] != "":
			scope = runScopes[c.Request.Method+" "+route]
		case isRead(c):
			scope = access.ScopeRead
		}
		if scope != "" {
			if err := access.RequireScope(p, scope); err != nil {
				fail(c, err)
				return
			}
		}
		if what := adminRoutes[c.Request.Method+" "+route]; what != "" {
			if err := access.RequireAdmin(p, what); err != nil {
				fail(c, err)
				return
			}
		}
		if !isRead(c) && slices.ContainsFunc(adminPrefixes, func(pre string) bool { return strings.HasPrefix(route, pre) }) {
			if err := access.RequireAdmin(p, "manage plugins and integrations"); err != nil {
				fail(c, err)
				return
			}
		}
		c.Next()
	}
}

// securityHeaders sets restrictive headers on every response and answers
// CORS only for the configured origins ("*" for any); without any, no
// CORS header is ever sent.
func securityHeaders(origins []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		origin := c.GetHeader("Origin")
		if origin == "" || len(origins) == 0 || !(slices.Contains(origins, origin) || slices.Contains(origins, "*")) {
			c.Next()
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

// audit records every authenticated write request once it has been
// answered: who, what, from where, the outcome and, for single-entity
// writes, before/after. Requests without a valid token are not recorded
// (an anonymous flood would fill the log and push real entries out); the
// client limiter counts them in portico_http_unauthenticated_total.
func audit(acc *access.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		if acc == nil || isRead(c) {
			c.Next()
			return
		}
		start := time.Now()
		c.Next()
		v, ok := c.Get(actorKey)
		if !ok {
			return
		}
		a := v.(catalog.Actor)
		e := access.AuditEntry{
			Kind:     access.KindRequest,
			Actor:    a.ID,
			TokenID:  a.TokenID,
			Method:   c.Request.Method,
			Route:    c.FullPath(),
			Path:     c.Request.URL.EscapedPath(), // as sent: a%2Fb stays one segment
			Status:   c.Writer.Status(),
			RemoteIP: c.ClientIP(),
		}
		bp, id := c.Param("bp"), c.Param("id")
		switch {
		case bp != "" && strings.HasPrefix(e.Route, "/api/v1/blueprints/:bp/entities"):
			e.Blueprint, e.Identifier = bp, id
			e.Resource = "entity/" + bp + "/" + id
		case bp != "" || e.Route == "/api/v1/blueprints":
			e.Kind, e.Blueprint = access.KindBlueprint, bp
			e.Resource = "blueprint/" + bp
		case strings.HasPrefix(e.Route, "/api/v1/tokens/"):
			e.Resource = "token/" + id
		default:
			e.Resource = strings.TrimPrefix(e.Path, "/api/v1/")
		}
		ctx := c.Request.Context()
		if e.Identifier != "" && e.Status < 300 {
			acc.RecordChange(ctx, &e, start)
		}
		acc.Record(ctx, e)
	}
}

// accessHandlers serve tokens, /me and the audit log.
type accessHandlers struct {
	acc *access.Service
	cat *catalog.Service
}

// mountAccess adds the access routes to the authenticated group.
func mountAccess(v1 *gin.RouterGroup, acc *access.Service, cat *catalog.Service) {
	if acc == nil {
		return
	}
	h := &accessHandlers{acc: acc, cat: cat}
	v1.POST("/tokens", h.createToken)
	v1.GET("/tokens", h.listTokens)
	v1.DELETE("/tokens/:id", h.revokeToken)
	v1.GET("/me", h.me)
	v1.GET("/audit", h.audit)
}

func (h *accessHandlers) createToken(c *gin.Context) {
	var req access.TokenRequest
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	t, err := h.acc.CreateToken(c.Request.Context(), req)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, t)
}

func (h *accessHandlers) listTokens(c *gin.Context) {
	ts, err := h.acc.ListTokens(c.Request.Context(), c.Query("user"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tokens": ts})
}

func (h *accessHandlers) revokeToken(c *gin.Context) {
	if err := h.acc.RevokeToken(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// me describes the caller; "user" is its _user entity (null for the
// bootstrap admin).
func (h *accessHandlers) me(c *gin.Context) {
	ctx := c.Request.Context()
	p := catalog.ActorFrom(ctx)
	var user *catalog.Entity
	if u, err := h.cat.GetEntity(ctx, catalog.Ref{Blueprint: access.UserBlueprint, Identifier: p.ID}); err == nil {
		user = u
	} else if !errors.Is(err, catalog.ErrNotFound) {
		fail(c, err)
		return
	}
	teams, scopes := p.Teams, p.Scopes
	if teams == nil {
		teams = []string{}
	}
	if scopes == nil {
		scopes = access.AllScopes
	}
	c.JSON(http.StatusOK, gin.H{"id": p.ID, "role": p.Role, "teams": teams, "scopes": scopes, "tokenId": p.TokenID, "user": user})
}

func (h *accessHandlers) audit(c *gin.Context) {
	q := access.AuditQuery{
		Actor: c.Query("actor"), Resource: c.Query("resource"), Kind: c.Query("kind"),
		Blueprint: c.Query("blueprint"), Identifier: c.Query("identifier"),
	}
	var vs []catalog.Violation
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := c.Query(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				vs = append(vs, catalog.Violation{Path: "/" + f.name, Message: "must be an RFC 3339 time"})
			}
			*f.dst = t
		}
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > access.MaxAuditLimit {
			vs = append(vs, catalog.Violation{Path: "/limit", Message: "must be an integer between 1 and " + strconv.Itoa(access.MaxAuditLimit)})
		}
		q.Limit = n
	}
	if len(vs) > 0 {
		fail(c, &catalog.ValidationError{Message: "invalid audit query", Violations: vs})
		return
	}
	entries, err := h.acc.Audit(c.Request.Context(), q)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"entries": entries})
}
