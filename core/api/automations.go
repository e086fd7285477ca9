package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
)

type automationHandlers struct{ svc *automations.Service }

// mountAutomations adds the automation routes (nil svc: left out).
func mountAutomations(v1 *gin.RouterGroup, svc *automations.Service) {
	if svc == nil {
		return
	}
	h := &automationHandlers{svc: svc}
	v1.GET("/automations", h.list)
	v1.GET("/automations/:id", h.get)
	v1.PUT("/automations/:id", h.put)
	v1.DELETE("/automations/:id", h.delete)
	v1.GET("/automations/:id/runs", h.runs)
}

// automationResponse is an automation plus, once at creation, its
// webhook signing secret.
type automationResponse struct {
	*automations.Automation
	SigningSecret string `json:"signingSecret,omitempty"`
}

func (h *automationHandlers) put(c *gin.Context) {
	var a automations.Automation
	if err := bindDefinition(c, &a); err != nil {
		fail(c, err)
		return
	}
	if err := pathIdentifier(c, &a.Identifier); err != nil {
		fail(c, err)
		return
	}
	out, secret, created, err := h.svc.Put(c.Request.Context(), &a)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), automationResponse{Automation: out, SigningSecret: secret})
}

func (h *automationHandlers) get(c *gin.Context) {
	a, err := h.svc.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (h *automationHandlers) list(c *gin.Context) {
	list, err := h.svc.List(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"automations": list})
}

func (h *automationHandlers) delete(c *gin.Context) {
	if err := h.svc.Delete(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// runs lists an automation's deliveries, newest first (?limit, default
// and at most automations.MaxDeliveries).
func (h *automationHandlers) runs(c *gin.Context) {
	limit := 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fail(c, &catalog.ValidationError{Message: "invalid query", Violations: []catalog.Violation{{Path: "/limit", Message: "must be a positive integer"}}})
			return
		}
		limit = n
	}
	list, err := h.svc.Deliveries(c.Request.Context(), c.Param("id"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"runs": list})
}
