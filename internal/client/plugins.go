package client

import (
	"context"
	"net/http"

	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/registry"
)

// PublishedPlugin is the answer to a publish: the plugin's record and
// Result, "created" or "exists-same" (the same bytes again).
type PublishedPlugin struct {
	registry.Plugin
	Result string `json:"result"`
}

// PublishWasm publishes a Wasm module (POST /api/v1/plugins as
// application/wasm).
func (c *Client) PublishWasm(ctx context.Context, module []byte) (*PublishedPlugin, error) {
	var out PublishedPlugin
	if err := c.Upload(ctx, "/api/v1/plugins", "application/wasm", module, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Plugins lists every published plugin version.
func (c *Client) Plugins(ctx context.Context) ([]*registry.Plugin, error) {
	var out struct {
		Plugins []*registry.Plugin `json:"plugins"`
	}
	err := c.get(ctx, "/api/v1/plugins", &out)
	return out.Plugins, err
}

// Integration is an installation's status as GET /integrations/{id}
// answers it.
type Integration struct {
	integrations.Status
	ScheduleState *integrations.ScheduleState `json:"scheduleState,omitempty"`
}

// Integrations lists every installation.
func (c *Client) Integrations(ctx context.Context) ([]*integrations.Status, error) {
	var out struct {
		Integrations []*integrations.Status `json:"integrations"`
	}
	err := c.get(ctx, "/api/v1/integrations", &out)
	return out.Integrations, err
}

// Integration returns installation id.
func (c *Client) Integration(ctx context.Context, id string) (*Integration, error) {
	var out Integration
	if err := c.get(ctx, "/api/v1/integrations/"+seg(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Resync starts a resync of installation id.
func (c *Client) Resync(ctx context.Context, id string) (*integrations.Sync, error) {
	var out integrations.Sync
	if err := c.Do(ctx, http.MethodPost, "/api/v1/integrations/"+seg(id)+"/resync", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sync returns sync sid of installation id.
func (c *Client) Sync(ctx context.Context, id, sid string) (*integrations.Sync, error) {
	var out integrations.Sync
	if err := c.get(ctx, "/api/v1/integrations/"+seg(id)+"/syncs/"+seg(sid), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
