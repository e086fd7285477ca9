package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
)

// fakeHost serves GET /items from a fixed list and signs with one secret.
type fakeHost struct {
	kv map[string]string
}

func (h *fakeHost) HTTP(_ context.Context, r pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	switch {
	case strings.Contains(r.URL, "/items?") && !strings.Contains(r.URL, "cursor="):
		return &pdk.HTTPResponse{Status: 200, Body: []byte(`{"items": [{"id": "a"}], "next": "1"}`)}, nil
	case strings.Contains(r.URL, "cursor=1"):
		return &pdk.HTTPResponse{Status: 200, Body: []byte(`{"items": [{"id": "b"}], "next": ""}`)}, nil
	}
	return &pdk.HTTPResponse{Status: 404}, nil
}

func (h *fakeHost) HMAC(_ context.Context, r pdk.HMACRequest) (*pdk.HMACResponse, error) {
	if r.Secret != "webhookSecret" {
		return nil, errors.New("unknown secret")
	}
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(r.Data)
	return &pdk.HMACResponse{Hex: hex.EncodeToString(m.Sum(nil))}, nil
}

func (h *fakeHost) Log(context.Context, pdk.LogRequest) error { return nil }
func (h *fakeHost) KVGet(_ context.Context, r pdk.KVGetRequest) (*pdk.KVGetResponse, error) {
	v, ok := h.kv[r.Key]
	return &pdk.KVGetResponse{Value: v, Found: ok}, nil
}
func (h *fakeHost) KVSet(_ context.Context, r pdk.KVSetRequest) error {
	h.kv[r.Key] = r.Value
	return nil
}
func (h *fakeHost) CatalogGet(context.Context, pdk.CatalogGetRequest) (json.RawMessage, error) {
	return nil, nil
}

func TestInfoIsValid(t *testing.T) {
	info, err := Example{}.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestResyncPages(t *testing.T) {
	ctx := pdk.WithHost(context.Background(), &fakeHost{kv: map[string]string{}})
	cfg := json.RawMessage(`{"baseUrl": "https://api.example.com/"}`)
	var ids []string
	cursor := ""
	for range 5 {
		page, err := Example{}.Resync(ctx, pdk.ResyncRequest{Kind: "item", Cursor: cursor, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		items, err := page.RawItems()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			ids = append(ids, string(it))
		}
		if cursor = page.Cursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(ids, ","); got != `{"id": "a"},{"id": "b"}` {
		t.Errorf("items %s", got)
	}
	if _, err := (Example{}).Resync(ctx, pdk.ResyncRequest{Kind: "item"}); err == nil {
		t.Error("missing baseUrl accepted")
	}
}

func TestWebhook(t *testing.T) {
	ctx := pdk.WithHost(context.Background(), &fakeHost{kv: map[string]string{}})
	body := []byte(`{"event": "item.deleted", "item": {"id": "a"}}`)
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(body)
	sig := hex.EncodeToString(m.Sum(nil))
	tests := []struct {
		name, sig, wantErr string
		deletes            int
	}{
		{"valid", sig, "", 1},
		{"valid with prefix", "sha256=" + strings.ToUpper(sig), "", 1},
		{"wrong", strings.Repeat("0", 64), "signature mismatch", 0},
		{"missing", "", "missing X-Example-Signature", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := pdk.WebhookRequest{Body: body, Headers: map[string][]string{}}
			if tt.sig != "" {
				req.Headers["x-example-signature"] = []string{tt.sig}
			}
			res, err := Example{}.Webhook(ctx, req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(res.Deletes) != tt.deletes {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	}
}
