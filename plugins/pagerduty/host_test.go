package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/pagerduty/standin"
)

const testSecret = "whsec-test"

// fakeHost plays Portico's host for unit tests: HTTP goes to the stand-in
// for real, with the Authorization header the host would inject, and HMAC
// signs with testSecret.
type fakeHost struct {
	token string
	mu    sync.Mutex
	logs  []string
}

func (h *fakeHost) HTTP(ctx context.Context, r pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Headers {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Set("Authorization", "Token token="+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &pdk.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body}, nil
}

func (h *fakeHost) HMAC(_ context.Context, r pdk.HMACRequest) (*pdk.HMACResponse, error) {
	if r.Secret != "webhookSecret" || r.Algorithm != "sha256" {
		return nil, errors.New("unknown secret or algorithm")
	}
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(r.Data)
	return &pdk.HMACResponse{Hex: hex.EncodeToString(m.Sum(nil))}, nil
}

func (h *fakeHost) Log(_ context.Context, r pdk.LogRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, r.Level+": "+r.Message)
	return nil
}

func (h *fakeHost) KVGet(context.Context, pdk.KVGetRequest) (*pdk.KVGetResponse, error) {
	return &pdk.KVGetResponse{}, nil
}
func (h *fakeHost) KVSet(context.Context, pdk.KVSetRequest) error { return nil }
func (h *fakeHost) CatalogGet(context.Context, pdk.CatalogGetRequest) (json.RawMessage, error) {
	return nil, nil
}

// setup starts a stand-in and returns it, a context carrying a fake host
// authenticated to it, and a config pointing at it.
func setup(t *testing.T, extra string) (*standin.Server, context.Context, *fakeHost, json.RawMessage) {
	t.Helper()
	s := standin.New()
	t.Cleanup(s.Close)
	h := &fakeHost{token: standin.DefaultToken}
	cfg := `{"baseUrl": "` + s.URL + `", "fromEmail": "oncall@example.com"` + extra + `}`
	return s, pdk.WithHost(context.Background(), h), h, json.RawMessage(cfg)
}

// resyncAll pages through kind and returns its raw items.
func resyncAll(t *testing.T, p PagerDuty, ctx context.Context, kind string, cfg json.RawMessage) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	cursor := ""
	for range 1000 {
		page, err := p.Resync(ctx, pdk.ResyncRequest{Kind: kind, Cursor: cursor, Config: cfg})
		if err != nil {
			t.Fatalf("resync %s (cursor %q): %v", kind, cursor, err)
		}
		items, err := page.RawItems()
		if err != nil {
			t.Fatalf("resync %s: items: %v", kind, err)
		}
		out = append(out, items...)
		if cursor = page.Cursor; cursor == "" {
			return out
		}
	}
	t.Fatalf("resync %s: no end after 1000 pages", kind)
	return nil
}

// mapItem evaluates the default mapping of kind over a raw item, as the
// host does: {"identifier", "title", "properties", "relations"} with null
// values left out.
func mapItem(t *testing.T, kind string, raw json.RawMessage) map[string]any {
	t.Helper()
	var item any
	if err := json.Unmarshal(raw, &item); err != nil {
		t.Fatalf("decode item: %v", err)
	}
	for _, m := range mappings {
		if m.Kind != kind {
			continue
		}
		eval := func(src string) any {
			q, err := gojq.Parse(src)
			if err != nil {
				t.Fatalf("parse %q: %v", src, err)
			}
			v, ok := q.Run(item).Next()
			if !ok {
				return nil
			}
			if err, isErr := v.(error); isErr {
				t.Fatalf("jq %q: %v", src, err)
			}
			return v
		}
		props, rels := map[string]any{}, map[string]any{}
		for name, src := range m.Entity.Properties {
			if v := eval(src); v != nil {
				props[name] = v
			}
		}
		for name, src := range m.Entity.Relations {
			if v := eval(src); v != nil {
				rels[name] = v
			}
		}
		return map[string]any{"identifier": eval(m.Entity.Identifier), "title": eval(m.Entity.Title),
			"blueprint": eval(m.Entity.Blueprint), "properties": props, "relations": rels}
	}
	t.Fatalf("no mapping for kind %s", kind)
	return nil
}

// byID indexes raw items by their "id".
func byID(items []json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(items))
	for _, it := range items {
		out[stringField(it, "id")] = it
	}
	return out
}

// recordedSleep is a PagerDuty.sleep that records instead of sleeping.
type recordedSleep struct {
	mu     sync.Mutex
	waited []time.Duration
}

func (r *recordedSleep) sleep(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waited = append(r.waited, d)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
