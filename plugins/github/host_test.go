package main

import (
	"bytes"
	"cmp"
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

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/github/standin"
)

const testSecret = "It's a Secret to Everybody"

// fakeHost plays Portico's host: HTTP goes out with net/http and the token
// added (as the host's auth template does), HMAC signs with testSecret.
type fakeHost struct {
	token string
	// respond, when set, answers instead of the network.
	respond func(pdk.HTTPRequest) *pdk.HTTPResponse
	mu      sync.Mutex
	calls   []pdk.HTTPRequest
}

func (h *fakeHost) HTTP(ctx context.Context, r pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	h.mu.Lock()
	h.calls = append(h.calls, r)
	h.mu.Unlock()
	if h.respond != nil {
		return h.respond(r), nil
	}
	req, err := http.NewRequestWithContext(ctx, cmp.Or(r.Method, "GET"), r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Headers {
		req.Header[k] = v
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return &pdk.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body}, err
}

func (h *fakeHost) HMAC(_ context.Context, r pdk.HMACRequest) (*pdk.HMACResponse, error) {
	if r.Secret != "webhookSecret" || r.Algorithm != "sha256" {
		return nil, errors.New("unknown secret or algorithm")
	}
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(r.Data)
	return &pdk.HMACResponse{Hex: hex.EncodeToString(m.Sum(nil))}, nil
}

func (h *fakeHost) Log(context.Context, pdk.LogRequest) error { return nil }
func (h *fakeHost) KVGet(context.Context, pdk.KVGetRequest) (*pdk.KVGetResponse, error) {
	return &pdk.KVGetResponse{}, nil
}
func (h *fakeHost) KVSet(context.Context, pdk.KVSetRequest) error { return nil }
func (h *fakeHost) CatalogGet(context.Context, pdk.CatalogGetRequest) (json.RawMessage, error) {
	return nil, nil
}

func (h *fakeHost) urls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		out = append(out, cmp.Or(c.Method, "GET")+" "+c.URL)
	}
	return out
}

// fakeClock records sleeps and advances its time by them.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	slept  []time.Duration
	failAt int // sleep number that fails (0: none)
}

func (c *fakeClock) clock() *clock {
	return &clock{
		now: func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t },
		sleep: func(ctx context.Context, d time.Duration) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.slept = append(c.slept, d)
			c.t = c.t.Add(d)
			return nil
		},
	}
}

// env is a stand-in, a host talking to it and a plugin with a fake clock.
type env struct {
	api   *standin.Server
	host  *fakeHost
	clock *fakeClock
	g     GitHub
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	api := standin.New()
	t.Cleanup(api.Close)
	e := &env{api: api, host: &fakeHost{token: standin.Token}, clock: &fakeClock{t: time.Now()}}
	e.g = GitHub{clock: e.clock.clock()}
	e.ctx = pdk.WithHost(context.Background(), e.host)
	return e
}

// config returns an installation config for the stand-in with extra keys.
func (e *env) config(extra map[string]any) json.RawMessage {
	cfg := map[string]any{"baseUrl": e.api.URL + "/", "runsSinceDays": 0}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return b
}

// resyncAll pages through a kind and returns its items.
func (e *env) resyncAll(t *testing.T, kind string, cfg json.RawMessage) ([]json.RawMessage, error) {
	t.Helper()
	var items []json.RawMessage
	cursor := ""
	for range 1000 {
		page, err := e.g.Resync(e.ctx, pdk.ResyncRequest{Kind: kind, Cursor: cursor, Config: cfg})
		if err != nil {
			return items, err
		}
		// What goes over the wire, as the host reads it.
		wire, err := pdk.EncodeOutput(page)
		if err != nil {
			t.Fatal(err)
		}
		var got pdk.ResyncPage
		if err := json.Unmarshal(wire, &got); err != nil {
			t.Fatalf("page of %s is not valid JSON: %v\n%.300s", kind, err, wire)
		}
		items = append(items, got.Items...)
		if page.Cursor == "" {
			return items, nil
		}
		if page.Cursor == cursor {
			t.Fatalf("cursor repeated: %s", cursor)
		}
		cursor = page.Cursor
	}
	t.Fatal("resync did not end")
	return nil, nil
}

// field returns the string form of a top-level member of a JSON item.
func field(t *testing.T, item json.RawMessage, path ...string) string {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(item))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("item: %v", err)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func fields(t *testing.T, items []json.RawMessage, path ...string) string {
	t.Helper()
	var out []string
	for _, it := range items {
		out = append(out, field(t, it, path...))
	}
	return strings.Join(out, ",")
}
