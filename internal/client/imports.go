package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/portico-dev/portico/core/catalog"
)

// FindBlueprint returns blueprint id, or (nil, nil) when there is none.
func (c *Client) FindBlueprint(ctx context.Context, id string) (*catalog.Blueprint, error) {
	var bp catalog.Blueprint
	err := c.get(ctx, "/api/v1/blueprints/"+seg(id), &bp)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &bp, nil
}

// PutBlueprint creates or replaces a blueprint.
func (c *Client) PutBlueprint(ctx context.Context, bp *catalog.Blueprint) error {
	return c.Do(ctx, http.MethodPut, "/api/v1/blueprints/"+seg(bp.Identifier), bp, nil)
}

// BulkResult is the outcome of one item of a bulk write.
type BulkResult struct {
	Index      int    `json:"index"`
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
	// Status is created, updated, unchanged or error.
	Status string       `json:"status"`
	Error  *BulkProblem `json:"error,omitempty"`
}

// BulkProblem is why one bulk item was refused.
type BulkProblem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"details,omitempty"`
}

// WriteEntities upserts entities with one bulk request (at most
// catalog.MaxBatch); a refused item is a result with status "error", not
// an error.
func (c *Client) WriteEntities(ctx context.Context, entities []*catalog.Entity) ([]BulkResult, error) {
	var out struct {
		Results []BulkResult `json:"results"`
	}
	body := make([]entityBody, len(entities))
	for i, e := range entities {
		body[i] = entityBody{e.Blueprint, e.Identifier, e.Title, e.Icon, e.Team, e.Properties, e.Relations}
	}
	in := map[string]any{"entities": body}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/entities/bulk", in, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

// entityBody is what a client writes of an entity (no server-managed
// fields).
type entityBody struct {
	Blueprint  string         `json:"blueprint"`
	Identifier string         `json:"identifier"`
	Title      string         `json:"title,omitempty"`
	Icon       string         `json:"icon,omitempty"`
	Team       []string       `json:"team,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Relations  map[string]any `json:"relations,omitempty"`
}

// ExistingEntities reports which of ids are entities of blueprint bp the
// caller may read.
func (c *Client) ExistingEntities(ctx context.Context, bp string, ids []string) (map[string]bool, error) {
	found := make(map[string]bool, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), catalog.MaxSearchLimit)
		chunk := ids[:n]
		ids = ids[n:]
		q := map[string]any{
			"query": map[string]any{"combinator": "and", "rules": []any{
				map[string]any{"property": "$blueprint", "operator": "=", "value": bp},
				map[string]any{"property": "$identifier", "operator": "in", "value": chunk},
			}},
			"limit": n,
		}
		var res struct {
			Entities []struct {
				Identifier string `json:"identifier"`
			} `json:"entities"`
		}
		if err := c.Do(ctx, http.MethodPost, "/api/v1/entities/search", q, &res); err != nil {
			return nil, err
		}
		for _, e := range res.Entities {
			found[e.Identifier] = true
		}
	}
	return found, nil
}
