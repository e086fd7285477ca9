package host_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/pdk"
)

// server records the Authorization and X-Key headers it receives.
type server struct {
	*httptest.Server
	hits  atomic.Int64
	seen  atomic.Value // last "Authorization|X-Key"
	hostp string
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.seen.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Key"))
		if h != nil {
			h(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	s.hostp = u.Host
	return s
}

func (s *server) last() string {
	v, _ := s.seen.Load().(string)
	return v
}

func TestHTTPAllowlist(t *testing.T) {
	target := newServer(t, nil)
	ctx := context.Background()
	port := target.hostp[strings.LastIndex(target.hostp, ":")+1:]
	tests := []struct {
		name    string
		allowed []string
		url     string
		wantErr string
	}{
		{"exact host:port", []string{target.hostp}, target.URL, ""},
		{"host without port matches any port", []string{"127.0.0.1"}, target.URL, ""},
		{"other port", []string{"127.0.0.1:1"}, target.URL, "host not allowed"},
		{"empty allowlist", nil, target.URL, "host not allowed"},
		{"wildcard does not reach loopback", []string{"*.0.0.1"}, target.URL, "non-public address 127.0.0.1"},
		{"scheme", []string{target.hostp}, "file:///etc/passwd", "scheme"},
		{"localhost named explicitly", []string{"localhost:" + port}, "http://localhost:" + port, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := host.NewServices("t", host.Sandbox{AllowedHosts: tt.allowed}, host.Deps{})
			resp, err := s.HTTP(ctx, pdk.HTTPRequest{URL: tt.url})
			if tt.wantErr == "" {
				if err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
					t.Fatalf("got %v, %v; want 200 ok", resp, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, host.ErrHostNotAllowed) {
				t.Errorf("err = %v, want ErrHostNotAllowed", err)
			}
		})
	}
}

func TestHTTPRedirects(t *testing.T) {
	final := newServer(t, nil)
	forbidden := newServer(t, nil)
	hop := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		to := final.URL
		if r.URL.Query().Get("to") == "forbidden" {
			to = forbidden.URL
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	sb := host.Sandbox{
		AllowedHosts: []string{hop.hostp, final.hostp},
		Secrets:      map[string]string{"hopKey": "hop-secret", "finalKey": "final-secret"},
		Auth: []pdk.AuthTemplate{
			{Hosts: []string{hop.hostp}, Header: "X-Key", Template: "{{hopKey}}"},
			{Hosts: []string{final.hostp}, Header: "Authorization", Template: "Token {{ finalKey }}"},
		},
	}
	s := host.NewServices("t", sb, host.Deps{})
	ctx := context.Background()

	resp, err := s.HTTP(ctx, pdk.HTTPRequest{URL: hop.URL})
	if err != nil || resp.Status != 200 {
		t.Fatalf("allowed redirect: %v, %v", resp, err)
	}
	if got := hop.last(); got != "|hop-secret" {
		t.Errorf("hop saw %q, want only its own key", got)
	}
	if got := final.last(); got != "Token final-secret|" {
		t.Errorf("final saw %q, want only its own credentials (the hop's key must be dropped)", got)
	}

	_, err = s.HTTP(ctx, pdk.HTTPRequest{URL: hop.URL + "?to=forbidden"})
	if err == nil || !errors.Is(err, host.ErrHostNotAllowed) || !strings.Contains(err.Error(), "redirect to") {
		t.Fatalf("redirect to forbidden host: err = %v", err)
	}
	if forbidden.hits.Load() != 0 {
		t.Error("forbidden host was reached")
	}
}

func TestHTTPAuthAndCap(t *testing.T) {
	big := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
	})
	ctx := context.Background()
	sb := host.Sandbox{
		AllowedHosts:     []string{big.hostp},
		ResponseCapBytes: 1024,
		Secrets:          map[string]string{"token": "s3cr3t"},
		Auth:             []pdk.AuthTemplate{{Hosts: []string{"127.0.0.1"}, Header: "Authorization", Template: "Bearer {{token}}"}},
	}
	s := host.NewServices("t", sb, host.Deps{})
	_, err := s.HTTP(ctx, pdk.HTTPRequest{URL: big.URL, Headers: map[string][]string{"Authorization": {"Bearer forged"}}})
	if err == nil || !strings.Contains(err.Error(), "exceeds 1024 bytes") {
		t.Fatalf("err = %v, want the size cap", err)
	}
	if got := big.last(); got != "Bearer s3cr3t|" {
		t.Errorf("server saw %q, want the injected token replacing the plugin's", got)
	}

	sb.Auth[0].Template = "Bearer {{missing}}"
	s = host.NewServices("t", sb, host.Deps{})
	if _, err := s.HTTP(ctx, pdk.HTTPRequest{URL: big.URL}); err == nil || !strings.Contains(err.Error(), `secret "missing" is not set`) {
		t.Errorf("err = %v, want a missing secret error", err)
	}
}

func TestHMAC(t *testing.T) {
	s := host.NewServices("t", host.Sandbox{Secrets: map[string]string{"wh": "key"}}, host.Deps{})
	m := hmac.New(sha256.New, []byte("key"))
	m.Write([]byte("body"))
	want := hex.EncodeToString(m.Sum(nil))
	tests := []struct {
		req     pdk.HMACRequest
		want    string
		wantErr string
	}{
		{pdk.HMACRequest{Secret: "wh", Data: []byte("body")}, want, ""},
		{pdk.HMACRequest{Secret: "wh", Algorithm: "SHA256", Data: []byte("body")}, want, ""},
		{pdk.HMACRequest{Secret: "nope", Data: []byte("body")}, "", `secret "nope" is not set`},
		{pdk.HMACRequest{Secret: "wh", Algorithm: "md5"}, "", "unsupported algorithm"},
	}
	for _, tt := range tests {
		got, err := s.HMAC(context.Background(), tt.req)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: err = %v, want %q", tt.req, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Hex != tt.want {
			t.Errorf("%+v: got %v, %v", tt.req, got, err)
		}
	}
}

func TestKVAndCatalog(t *testing.T) {
	ctx := context.Background()
	kv := host.NewMemoryKV()
	a := host.NewServices("a", host.Sandbox{}, host.Deps{KV: kv, Catalog: catalog{}})
	b := host.NewServices("b", host.Sandbox{}, host.Deps{KV: kv})
	if err := a.KVSet(ctx, pdk.KVSetRequest{Key: "cursor", Value: "42"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.KVGet(ctx, pdk.KVGetRequest{Key: "cursor"}); !r.Found || r.Value != "42" {
		t.Errorf("a: %+v", r)
	}
	if r, _ := b.KVGet(ctx, pdk.KVGetRequest{Key: "cursor"}); r.Found {
		t.Error("installations share KV state")
	}
	if err := a.KVSet(ctx, pdk.KVSetRequest{Key: "big", Value: strings.Repeat("x", 65<<10)}); err == nil {
		t.Error("oversized value accepted")
	}
	_ = a.KVSet(ctx, pdk.KVSetRequest{Key: "cursor"})
	if r, _ := a.KVGet(ctx, pdk.KVGetRequest{Key: "cursor"}); r.Found {
		t.Error("empty value did not delete")
	}

	if e, err := a.CatalogGet(ctx, pdk.CatalogGetRequest{Blueprint: "service", Identifier: "x"}); err != nil || string(e) != `{"identifier":"x"}` {
		t.Errorf("catalog get: %s, %v", e, err)
	}
	if e, _ := a.CatalogGet(ctx, pdk.CatalogGetRequest{Blueprint: "service", Identifier: "missing"}); string(e) != "null" {
		t.Errorf("missing entity: %s", e)
	}
}

type catalog struct{}

func (catalog) GetEntity(_ context.Context, _, id string) (json.RawMessage, error) {
	if id == "missing" {
		return nil, nil
	}
	return json.RawMessage(`{"identifier":"` + id + `"}`), nil
}

// TestServeHostRoundTrip checks the wire encoding shared by both transports.
func TestServeHostRoundTrip(t *testing.T) {
	s := host.NewServices("t", host.Sandbox{Secrets: map[string]string{"wh": "key"}}, host.Deps{KV: host.NewMemoryKV()})
	client := pdk.NewHostClient(func(ctx context.Context, fn string, in []byte) ([]byte, error) {
		return pdk.ServeHost(ctx, s, fn, in)
	})
	ctx := context.Background()
	if _, err := client.HMAC(ctx, pdk.HMACRequest{Secret: "nope"}); err == nil {
		t.Fatal("want an error")
	} else if he := (*pdk.HostError)(nil); !errors.As(err, &he) || he.Function != pdk.FnHMAC {
		t.Errorf("err = %#v, want a *pdk.HostError from %s", err, pdk.FnHMAC)
	}
	if err := client.KVSet(ctx, pdk.KVSetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if r, err := client.KVGet(ctx, pdk.KVGetRequest{Key: "k"}); err != nil || r.Value != "v" {
		t.Errorf("kv: %v, %v", r, err)
	}
	if e, err := client.CatalogGet(ctx, pdk.CatalogGetRequest{}); err != nil || e != nil {
		t.Errorf("catalog: %s, %v", e, err)
	}
	if err := client.Log(ctx, pdk.LogRequest{Level: "warn", Message: "hi"}); err != nil {
		t.Error(err)
	}
	if _, err := pdk.ServeHost(ctx, s, "portico_exec", nil); !errors.Is(err, pdk.ErrUnknownFunction) {
		t.Errorf("unknown function: %v", err)
	}
}
