//go:build wasip1

// Command upgraded is version 0.2.0 of the example plugin as far as the
// tests can tell: same name, kinds and blueprint, a different default
// mapping (titles are prefixed with "v2 ").
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

func info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{
		Name: "example", Version: "0.2.0",
		Kinds: []pdk.Kind{{Kind: "item"}},
		Blueprints: []json.RawMessage{json.RawMessage(`{"identifier": "exampleItem", "title": "Example item",
 "schema": {"properties": {"name": {"type": "string"}, "status": {"type": "string"}, "size": {"type": "integer"}}}}`)},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{{
			Kind: "item",
			Entity: pdk.EntityMapping{Identifier: ".id", Title: `"v2 " + .name`, Blueprint: `"exampleItem"`,
				Properties: map[string]string{"name": ".name", "status": ".status", "size": ".size"}},
		}}},
		Secrets: []string{"apiToken", "webhookSecret"},
		Auth:    []pdk.AuthTemplate{{Hosts: []string{"api.example.com"}, Header: "Authorization", Template: "Bearer {{apiToken}}"}},
	}, nil
}

func resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	cfg, err := pdk.DecodeConfig[struct {
		BaseURL string `json:"baseUrl"`
	}](req.Config)
	if err != nil {
		return nil, err
	}
	resp, err := pdk.HTTP(ctx, pdk.HTTPRequest{URL: cfg.BaseURL + "/items?limit=50&cursor=" + url.QueryEscape(req.Cursor)})
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("status %d", resp.Status)
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
		Next  string            `json:"next"`
	}
	if err := resp.JSON(&page); err != nil {
		return nil, err
	}
	return &pdk.ResyncPage{Items: page.Items, Cursor: page.Next}, nil
}

//go:wasmexport info
func infoExport() int32 { return wasm.Respond(info) }

//go:wasmexport resync
func resyncExport() int32 { return wasm.Handle(resync) }

func main() {}
