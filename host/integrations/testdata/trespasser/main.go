//go:build wasip1

// Command trespasser is a hostile plugin that tries to leave its lane: its
// default mapping makes every "user" item an admin _user, "loot" items name
// their own blueprint, its webhook applies whatever changes the delivery
// lists, and its "peek" action reads any entity through
// portico_catalog_get. It declares one blueprint, "trespass" (kind "own").
// Resync items come from the installation's config, so no network is used:
// {"users": [...], "loot": [...], "own": [...]}.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

func info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{
		Name: "trespasser", Version: "0.1.0",
		Kinds: []pdk.Kind{{Kind: "user"}, {Kind: "loot"}, {Kind: "own"}},
		Blueprints: []json.RawMessage{json.RawMessage(`{"identifier": "trespass",
 "schema": {"properties": {"name": {"type": "string"}}}}`)},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{
			{Kind: "user", Entity: pdk.EntityMapping{Identifier: ".email", Blueprint: `"_user"`,
				Properties: map[string]string{"name": ".email", "role": `"admin"`}}},
			{Kind: "loot", Entity: pdk.EntityMapping{Identifier: ".id", Blueprint: ".bp",
				Properties: map[string]string{"name": ".name"}}},
			{Kind: "own", Entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"trespass"`,
				Properties: map[string]string{"name": ".name"}}},
		}},
		Actions: []pdk.Action{{Name: "peek"}, {Name: "apply"}},
		Webhook: true,
	}, nil
}

// items is the installation's config: the resync items of each kind.
type items struct {
	Users []json.RawMessage `json:"users"`
	Loot  []json.RawMessage `json:"loot"`
	Own   []json.RawMessage `json:"own"`
}

func resync(_ context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	cfg, err := pdk.DecodeConfig[items](req.Config)
	if err != nil {
		return nil, err
	}
	page := map[string][]json.RawMessage{"user": cfg.Users, "loot": cfg.Loot, "own": cfg.Own}[req.Kind]
	if page == nil {
		page = []json.RawMessage{}
	}
	return &pdk.ResyncPage{Items: page}, nil
}

// changes is what a webhook delivery or the "apply" action asks for.
type changes struct {
	Upserts []pdk.KindItem `json:"upserts"`
	Deletes []pdk.KindItem `json:"deletes"`
}

// webhook verifies nothing and applies the delivery's changes.
func webhook(_ context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	var c changes
	if err := json.Unmarshal(req.Body, &c); err != nil {
		return nil, err
	}
	return &pdk.WebhookResult{Upserts: c.Upserts, Deletes: c.Deletes}, nil
}

// act "peek" returns {"entity": <portico_catalog_get of inputs>}; "apply"
// returns the changes its inputs list.
func act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	switch req.Action {
	case "peek":
		var in pdk.CatalogGetRequest
		if err := json.Unmarshal(req.Inputs, &in); err != nil {
			return nil, err
		}
		e, err := pdk.HostFrom(ctx).CatalogGet(ctx, in)
		if err != nil {
			return nil, err
		}
		out, _ := json.Marshal(map[string]json.RawMessage{"entity": e})
		return &pdk.ActResult{Outputs: out}, nil
	case "apply":
		var c changes
		if err := json.Unmarshal(req.Inputs, &c); err != nil {
			return nil, err
		}
		return &pdk.ActResult{Upserts: c.Upserts, Deletes: c.Deletes}, nil
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

//go:wasmexport info
func infoExport() int32 { return wasm.Respond(info) }

//go:wasmexport resync
func resyncExport() int32 { return wasm.Handle(resync) }

//go:wasmexport webhook
func webhookExport() int32 { return wasm.Handle(webhook) }

//go:wasmexport act
func actExport() int32 { return wasm.Handle(act) }

func main() {}
