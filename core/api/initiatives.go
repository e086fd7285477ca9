package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/initiatives"
)

// initiativeWire is an initiative as clients send it: what GET returns is
// accepted back (progress and the timestamps are the server's and are
// dropped).
type initiativeWire struct {
	initiatives.Initiative
	Progress json.RawMessage `json:"progress"`
}

// defaultHistoryDays is how many days a scorecard's history covers when
// the request names none.
const defaultHistoryDays = 30

type initiativeHandlers struct{ svc *initiatives.Service }

// mountInitiatives adds initiatives and the scorecard histories (nil
// svc: left out).
func mountInitiatives(v1 *gin.RouterGroup, svc *initiatives.Service) {
	if svc == nil {
		return
	}
	h := &initiativeHandlers{svc: svc}
	v1.GET("/blueprints/:bp/entities/:id/scorecards/:sc/history", h.levelHistory)
	v1.GET("/blueprints/:bp/scorecards/:sc/history", h.distributions)
	v1.GET("/initiatives", h.list)
	v1.GET("/initiatives/:id", h.get)
	v1.PUT("/initiatives/:id", h.put)
	v1.DELETE("/initiatives/:id", h.delete)
}

func (h *initiativeHandlers) levelHistory(c *gin.Context) {
	levels, err := h.svc.LevelHistory(c.Request.Context(), ref(c), c.Param("sc"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"levels": levels})
}

func (h *initiativeHandlers) distributions(c *gin.Context) {
	days := defaultHistoryDays
	if s := c.Query("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			fail(c, &badRequest{msg: "days must be a whole number of days, got " + strconv.Quote(s)})
			return
		}
		days = n
	}
	out, err := h.svc.Distributions(c.Request.Context(), c.Param("bp"), c.Param("sc"), days)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"days": out})
}

func (h *initiativeHandlers) list(c *gin.Context) {
	list, err := h.svc.List(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"initiatives": list})
}

func (h *initiativeHandlers) get(c *gin.Context) {
	v, err := h.svc.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (h *initiativeHandlers) put(c *gin.Context) {
	var in initiativeWire
	if err := bindJSON(c, &in); err != nil {
		fail(c, err)
		return
	}
	if err := reconcileIdentifier(&in.Identifier, c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	v, created, err := h.svc.Put(c.Request.Context(), &in.Initiative)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), v)
}

func (h *initiativeHandlers) delete(c *gin.Context) {
	if err := h.svc.Delete(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
