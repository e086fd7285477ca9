// Command example is Portico's example integration. It syncs "items" from a
// small JSON API, verifies signed webhooks and offers a few actions. The same
// code builds as a Wasm module (main_wasm.go) and as a go-plugin binary
// (main_goplugin.go):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o example.wasm ./plugins/example
//	go build -o example ./plugins/example
package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/portico-dev/portico/pdk"
)

// Example implements pdk.Integration and pdk.Watcher.
type Example struct{}

var (
	_ pdk.Integration = Example{}
	_ pdk.Watcher     = Example{}
)

// config is the installation's configuration (see configSchema).
type config struct {
	BaseURL  string `json:"baseUrl"`
	PageSize int    `json:"pageSize"`
}

const configSchema = `{"type": "object", "required": ["baseUrl"],
 "properties": {"baseUrl": {"type": "string", "format": "uri"},
                "pageSize": {"type": "integer", "minimum": 1, "maximum": 1000}}}`

const itemBlueprint = `{"identifier": "exampleItem", "title": "Example item",
 "schema": {"properties": {"name": {"type": "string"}, "status": {"type": "string"},
                           "size": {"type": "integer"}}}}`

// Info describes the plugin.
func (Example) Info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{
		Name:        "example",
		Version:     "0.1.0",
		Description: "Syncs items from the example API.",
		Kinds:       []pdk.Kind{{Kind: "item", Description: "An item of the example API"}},
		Blueprints:  []json.RawMessage{json.RawMessage(itemBlueprint)},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{{
			Kind:     "item",
			Selector: "true",
			Entity: pdk.EntityMapping{
				Identifier: ".id",
				Title:      ".name",
				Blueprint:  `"exampleItem"`,
				Properties: map[string]string{"name": ".name", "status": ".status", "size": ".size"},
			},
		}}},
		Config:  json.RawMessage(configSchema),
		Secrets: []string{"apiToken", "webhookSecret"},
		Auth: []pdk.AuthTemplate{{
			Hosts: []string{"api.example.com", pdk.AuthHostBaseURL}, Header: "Authorization", Template: "Bearer {{apiToken}}",
		}},
		Actions: []pdk.Action{
			{Name: "noop", Title: "Do nothing"},
			{Name: "rename", Title: "Rename item",
				Inputs: json.RawMessage(`{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}`)},
			{Name: "check-connection", Title: "Check the connection to the API"},
			{Name: "secret-access", Title: "Report whether the plugin may read its secrets (never their values)"},
		},
		Webhook: true,
		Watch:   true,
	}, nil
}

// Resync returns one page of items: GET {baseUrl}/items?cursor=…&limit=….
func (Example) Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	if req.Kind != "item" {
		return nil, fmt.Errorf("unknown kind %q", req.Kind)
	}
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.Itoa(cfg.PageSize)}}
	if req.Cursor != "" {
		q.Set("cursor", req.Cursor)
	}
	u := cfg.BaseURL + "/items?" + q.Encode()
	resp, err := get(ctx, u)
	if err != nil {
		return nil, err
	}
	// The items pass through undecoded and unsplit: the host found the
	// page's top-level fields (Fields: true) and decodes and maps the items
	// itself. Decoding the page here would cost a Wasm guest far more.
	fields, err := resp.Fields()
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	items := fields["items"]
	switch {
	case len(items) == 0 || string(items) == "null":
		items = json.RawMessage(`[]`)
	case items[0] != '[':
		return nil, fmt.Errorf("GET %s: items is not an array", u)
	}
	var next string
	if raw := fields["next"]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &next); err != nil {
			return nil, fmt.Errorf("GET %s: next: %w", u, err)
		}
	}
	if err := pdk.HostFrom(ctx).KVSet(ctx, pdk.KVSetRequest{Key: "items.cursor", Value: next}); err != nil {
		return nil, err
	}
	pdk.Logf(ctx, pdk.LevelDebug, "resync items: %d bytes, next %q", len(items), next)
	return &pdk.ResyncPage{ItemsJSON: items, Cursor: next}, nil
}

// Watch long-polls GET {baseUrl}/changes?since=<cursor>&waitMs=<n>: the API
// holds the request until it has changes after the cursor (an empty cursor
// asks for the current position only: the resync brings the state).
func (Example) Watch(ctx context.Context, req pdk.WatchRequest) (*pdk.WatchResult, error) {
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	q := url.Values{"waitMs": {strconv.Itoa(req.WaitMs)}}
	if req.Cursor != "" {
		q.Set("since", req.Cursor)
	}
	u := cfg.BaseURL + "/changes?" + q.Encode()
	resp, err := get(ctx, u)
	if err != nil {
		return nil, err
	}
	var page struct {
		Changes []struct {
			Event string          `json:"event"`
			Item  json.RawMessage `json:"item"`
		} `json:"changes"`
		Next string `json:"next"`
		Gap  bool   `json:"gap"` // changes after the cursor were dropped
	}
	if err := resp.JSON(&page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	res := &pdk.WatchResult{Cursor: page.Next, Resync: page.Gap}
	for _, c := range page.Changes {
		item := pdk.KindItem{Kind: "item", Item: c.Item}
		if c.Event == "item.deleted" {
			res.Deletes = append(res.Deletes, item)
		} else {
			res.Upserts = append(res.Upserts, item)
		}
	}
	return res, nil
}

// SignatureHeader carries the hex HMAC-SHA256 of a webhook body.
const SignatureHeader = "X-Example-Signature"

// Webhook verifies the signature of a delivery with the webhookSecret (via the
// host: the plugin never sees the secret) and turns it into changes.
func (Example) Webhook(ctx context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	sig := strings.TrimPrefix(req.Header(SignatureHeader), "sha256=")
	if sig == "" {
		return nil, errors.New("missing " + SignatureHeader)
	}
	mac, err := pdk.HostFrom(ctx).HMAC(ctx, pdk.HMACRequest{Secret: "webhookSecret", Algorithm: "sha256", Data: req.Body})
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(mac.Hex)) {
		return nil, errors.New("signature mismatch")
	}
	var ev struct {
		Event string          `json:"event"`
		Item  json.RawMessage `json:"item"`
	}
	if err := json.Unmarshal(req.Body, &ev); err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	res := &pdk.WebhookResult{Response: &pdk.WebhookResponse{Status: 200, Body: `{"ok":true}`}}
	item := pdk.KindItem{Kind: "item", Item: ev.Item}
	switch ev.Event {
	case "item.created", "item.updated":
		res.Upserts = append(res.Upserts, item)
	case "item.deleted":
		res.Deletes = append(res.Deletes, item)
	default:
		res.Response = &pdk.WebhookResponse{Status: 202, Body: `{"ignored":true}`}
	}
	return res, nil
}

// Act runs an action.
func (Example) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	switch req.Action {
	case "noop":
		return &pdk.ActResult{}, nil
	case "rename":
		return rename(ctx, req)
	case "check-connection":
		return checkConnection(ctx, req)
	case "secret-access":
		// Native (go-plugin) builds may read their secrets; Wasm ones never.
		_, err := pdk.Secret(ctx, "apiToken")
		outputs, _ := json.Marshal(map[string]any{"readable": err == nil})
		return &pdk.ActResult{Outputs: outputs}, nil
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

func rename(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	var in struct {
		Name string `json:"name"`
	}
	var entity struct {
		Identifier string `json:"identifier"`
	}
	if err := json.Unmarshal(req.Inputs, &in); err != nil || in.Name == "" {
		return nil, errors.New("inputs: name is required")
	}
	if err := json.Unmarshal(req.Entity, &entity); err != nil || entity.Identifier == "" {
		return nil, errors.New("rename needs an entity")
	}
	body, _ := json.Marshal(map[string]string{"name": in.Name})
	resp, err := pdk.HTTP(ctx, pdk.HTTPRequest{
		Method: "PATCH", URL: cfg.BaseURL + "/items/" + url.PathEscape(entity.Identifier),
		Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body,
	})
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("rename %s: status %d", entity.Identifier, resp.Status)
	}
	return &pdk.ActResult{
		Message: fmt.Sprintf("renamed %s to %q", entity.Identifier, in.Name),
		Logs:    []string{"PATCH /items/" + entity.Identifier},
		Upserts: []pdk.KindItem{{Kind: "item", Item: resp.Body}},
	}, nil
}

// checkConnection calls GET {baseUrl}/whoami and reports everything the plugin
// sees, which must never include a secret.
func checkConnection(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	resp, err := pdk.HTTP(ctx, pdk.HTTPRequest{URL: cfg.BaseURL + "/whoami"})
	if err != nil {
		return nil, err
	}
	outputs, _ := json.Marshal(map[string]any{
		"status": resp.Status, "body": string(resp.Body), "headers": resp.Headers, "request": req,
	})
	return &pdk.ActResult{Message: fmt.Sprintf("status %d", resp.Status), Outputs: outputs}, nil
}

func decodeConfig(raw json.RawMessage) (config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return cfg, err
	}
	if cfg.BaseURL == "" {
		return cfg, errors.New("config: baseUrl is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	return cfg, nil
}

// get returns a successful response to GET u, asking the host to find the
// top-level fields of its JSON body (see pdk.HTTPResponse.Fields).
func get(ctx context.Context, u string) (*pdk.HTTPResponse, error) {
	resp, err := pdk.HTTP(ctx, pdk.HTTPRequest{
		URL: u, Headers: map[string][]string{"Accept": {"application/json"}}, Fields: true,
	})
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.Status)
	}
	return resp, nil
}
