//go:build wasip1

// Command jqbomb is a hostile plugin whose default mapping never ends: its
// title expression recurses for ever. A resync must fail on it, naming the
// expression, and leave the portal serving.
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
		Name: "jqbomb", Version: "0.1.0",
		Kinds: []pdk.Kind{{Kind: "item"}},
		Blueprints: []json.RawMessage{json.RawMessage(`{"identifier": "jqbombItem", "title": "Bomb item",
 "schema": {"properties": {"name": {"type": "string"}}}}`)},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{{
			Kind:   "item",
			Entity: pdk.EntityMapping{Identifier: ".id", Title: `def f: f; f`, Blueprint: `"jqbombItem"`},
		}}},
		Secrets: []string{"apiToken", "webhookSecret"},
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
