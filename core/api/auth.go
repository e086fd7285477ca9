package api

import (
	"context"
	"crypto/subtle"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

// Authenticator turns a bearer token into the acting principal. The access
// layer replaces the bootstrap implementation with users, teams and scoped
// tokens; every /api/v1 route goes through it.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (catalog.Actor, error)
}

// AdminToken accepts exactly one token: the bootstrap admin token, whose
// actor is an admin.
type AdminToken string

// Authenticate implements Authenticator.
func (t AdminToken) Authenticate(_ context.Context, token string) (catalog.Actor, error) {
	if t == "" || subtle.ConstantTimeCompare([]byte(token), []byte(t)) != 1 {
		return catalog.Actor{}, ErrUnauthorized
	}
	return catalog.Actor{ID: "admin", Role: catalog.RoleAdmin}, nil
}

// authenticate requires "Authorization: Bearer <token>" and puts the actor
// on the request context.
func authenticate(a Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := bearerToken(c.GetHeader("Authorization"))
		if !ok {
			c.Set(authFailureKey, reasonMissingToken)
			c.Header("WWW-Authenticate", `Bearer realm="portico"`)
			fail(c, ErrUnauthorized)
			return
		}
		actor, err := a.Authenticate(c.Request.Context(), token)
		if err != nil {
			c.Set(authFailureKey, reasonInvalidToken)
			c.Header("WWW-Authenticate", `Bearer realm="portico", error="invalid_token"`)
			fail(c, err)
			return
		}
		c.Request = c.Request.WithContext(catalog.WithActor(c.Request.Context(), actor))
		c.Set(actorKey, actor)
		c.Next()
	}
}

// bearerToken extracts the token of "Authorization: Bearer <token>"; the
// scheme is case-insensitive (RFC 7235).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
