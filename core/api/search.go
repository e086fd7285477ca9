package api

import (
	"encoding/json"
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

// searchRequest is the body of POST /entities/search; the query itself is
// decoded by catalog.DecodeQuery for precise error paths.
type searchRequest struct {
	Query  json.RawMessage     `json:"query"`
	Limit  int                 `json:"limit"`
	Cursor *string             `json:"cursor"`
	Sort   []catalog.SortField `json:"sort"`
}

func (h *handlers) search(c *gin.Context) {
	var req searchRequest
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	q := catalog.SearchQuery{Limit: req.Limit, Cursor: req.Cursor, Sort: req.Sort}
	rule, err := optionalQuery(req.Query)
	if err != nil {
		fail(c, err)
		return
	}
	q.Query = rule
	page, err := h.cat.Search(c.Request.Context(), q)
	if err != nil {
		fail(c, err)
		return
	}
	var next *string
	if page.Next != "" {
		next = &page.Next
	}
	renderPage(c, page.Entities, next, page.Total)
}

// prefixPaths re-roots a validation error's pointers under prefix.
func prefixPaths(err error, prefix string) error {
	var verr *catalog.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	out := &catalog.ValidationError{Message: verr.Message}
	for _, v := range verr.Violations {
		out.Violations = append(out.Violations, catalog.Violation{Path: prefix + v.Path, Message: v.Message})
	}
	return out
}

// optionalQuery decodes a request body's "query" member (nil when absent
// or null); errors point into it.
func optionalQuery(raw json.RawMessage) (*catalog.Rule, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	rule, err := catalog.DecodeQuery(raw)
	if err != nil {
		return nil, prefixPaths(err, "/query")
	}
	return rule, nil
}
