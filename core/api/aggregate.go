package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

// aggregateRequest is the body of POST /entities/aggregate; the query is
// decoded by catalog.DecodeQuery for precise error paths.
type aggregateRequest struct {
	Query    json.RawMessage          `json:"query"`
	Func     string                   `json:"func"`
	Property string                   `json:"property"`
	GroupBy  string                   `json:"groupBy"`
	Bucket   *catalog.AggregateBucket `json:"bucket"`
}

func (h *handlers) aggregate(c *gin.Context) {
	var req aggregateRequest
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	q := catalog.AggregateQuery{Func: req.Func, Property: req.Property, GroupBy: req.GroupBy, Bucket: req.Bucket}
	rule, err := optionalQuery(req.Query)
	if err != nil {
		fail(c, err)
		return
	}
	q.Query = rule
	res, err := h.cat.Aggregate(c.Request.Context(), q)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
