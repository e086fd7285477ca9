package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
)

type definitionHandlers struct{ svc *definitions.Service }

// mountDefinitions adds portal-as-code's ledger and drift, for admins
// only (nil svc: left out).
func mountDefinitions(v1 *gin.RouterGroup, svc *definitions.Service) {
	if svc == nil {
		return
	}
	h := &definitionHandlers{svc: svc}
	g := v1.Group("/definitions", requireAdmin("read and record portal-as-code applies"))
	g.GET("", h.list)
	g.POST("/applies", h.record)
	g.GET("/drift", h.drift)
}

// requireAdmin refuses callers without the admin role and scope.
func requireAdmin(what string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := access.RequireAdmin(catalog.ActorFrom(c.Request.Context()), what); err != nil {
			fail(c, err)
			return
		}
		c.Next()
	}
}

// list returns the ledger (?set: one set's records only).
func (h *definitionHandlers) list(c *gin.Context) {
	recs, err := h.svc.List(c.Request.Context(), c.Query("set"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"definitions": recs})
}

// record takes what an apply did.
func (h *definitionHandlers) record(c *gin.Context) {
	var in definitions.Applied
	if err := bindJSON(c, &in); err != nil {
		fail(c, err)
		return
	}
	if err := h.svc.Record(c.Request.Context(), in); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// drift lists definitions changed outside of code since they were
// applied (?set: one set's only).
func (h *definitionHandlers) drift(c *gin.Context) {
	out, err := h.svc.Drift(c.Request.Context(), c.Query("set"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"drift": out})
}
