package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portico-dev/portico/core/catalog"
)

// EntityPage is one page of entities (a list or a search), as the API
// answers it.
type EntityPage struct {
	Entities []*catalog.Entity `json:"entities"`
	Next     *string           `json:"next"`
	Total    int               `json:"total"`
}

// Blueprints lists every blueprint.
func (c *Client) Blueprints(ctx context.Context) ([]*catalog.Blueprint, error) {
	var out struct {
		Blueprints []*catalog.Blueprint `json:"blueprints"`
	}
	err := c.get(ctx, "/api/v1/blueprints", &out)
	return out.Blueprints, err
}

// Blueprint returns blueprint bp.
func (c *Client) Blueprint(ctx context.Context, bp string) (*catalog.Blueprint, error) {
	var out catalog.Blueprint
	if err := c.get(ctx, "/api/v1/blueprints/"+seg(bp), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Entities returns one page of blueprint bp's entities: at most limit
// (0: the server's default) after cursor ("" for the first page).
func (c *Client) Entities(ctx context.Context, bp string, limit int, cursor string) (*EntityPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/api/v1/blueprints/" + seg(bp) + "/entities"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out EntityPage
	if err := c.get(ctx, path, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Entity returns entity bp/id.
func (c *Client) Entity(ctx context.Context, bp, id string) (*catalog.Entity, error) {
	var out catalog.Entity
	if err := c.get(ctx, "/api/v1/blueprints/"+seg(bp)+"/entities/"+seg(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Search runs a search (POST /api/v1/entities/search).
func (c *Client) Search(ctx context.Context, q catalog.SearchQuery) (*EntityPage, error) {
	var out EntityPage
	if err := c.Do(ctx, http.MethodPost, "/api/v1/entities/search", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
