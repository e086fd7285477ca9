package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

// scorecardWire is a scorecard as clients send it: what GET returns is
// accepted back (blueprint must agree with the path; evaluation and the
// timestamps are the server's and are dropped).
type scorecardWire struct {
	catalog.Scorecard
	Blueprint  string          `json:"blueprint"`
	Evaluation json.RawMessage `json:"evaluation"`
}

func mountScorecards(v1 *gin.RouterGroup, h *handlers) {
	v1.GET("/blueprints/:bp/scorecards", h.listScorecards)
	v1.GET("/blueprints/:bp/scorecards/:sc", h.getScorecard)
	v1.PUT("/blueprints/:bp/scorecards/:sc", h.putScorecard)
	v1.DELETE("/blueprints/:bp/scorecards/:sc", h.deleteScorecard)
	v1.GET("/blueprints/:bp/entities/:id/scorecards/:sc", h.entityScorecard)
}

func (h *handlers) listScorecards(c *gin.Context) {
	list, err := h.cat.ListScorecards(c.Request.Context(), c.Param("bp"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"scorecards": list})
}

func (h *handlers) getScorecard(c *gin.Context) {
	sc, err := h.cat.GetScorecard(c.Request.Context(), c.Param("bp"), c.Param("sc"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sc)
}

func (h *handlers) putScorecard(c *gin.Context) {
	var in scorecardWire
	if err := bindJSON(c, &in); err != nil {
		fail(c, err)
		return
	}
	if err := reconcileIdentifier(&in.Identifier, c.Param("sc")); err != nil {
		fail(c, err)
		return
	}
	if err := reconcileIdentifier(&in.Blueprint, c.Param("bp")); err != nil {
		fail(c, err)
		return
	}
	out, created, err := h.cat.PutScorecard(c.Request.Context(), in.Blueprint, &in.Scorecard)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), out)
}

func (h *handlers) deleteScorecard(c *gin.Context) {
	if err := h.cat.DeleteScorecard(c.Request.Context(), c.Param("bp"), c.Param("sc")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// entityScorecard is the CI gate: one entity's level and rule verdicts.
func (h *handlers) entityScorecard(c *gin.Context) {
	out, err := h.cat.GetEntityScorecard(c.Request.Context(), ref(c), c.Param("sc"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
