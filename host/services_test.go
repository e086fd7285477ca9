package host_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

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
		name      string
		allowed   []string
		private   bool // Sandbox.AllowPrivateNetworks
		url       string
		wantErr   string
		reachable bool // the server may be hit (the refusal is an answer's)
	}{
		{name: "exact host:port", allowed: []string{target.hostp}, url: target.URL},
		{name: "host without port matches any port", allowed: []string{"127.0.0.1"}, url: target.URL},
		{name: "other port", allowed: []string{"127.0.0.1:1"}, url: target.URL, wantErr: "host not allowed"},
		{name: "empty allowlist", allowed: nil, url: target.URL, wantErr: "host not allowed"},
		{name: "wildcard does not reach loopback", allowed: []string{"*.0.0.1"}, url: target.URL, wantErr: "127.0.0.1 is a loopback address"},
		{name: "scheme", allowed: []string{target.hostp}, url: "file:///etc/passwd", wantErr: "scheme"},
		// A name the plugin author's DNS points at 127.0.0.1, allowed
		// exactly: the resolved address decides, not the entry.
		{name: "exact name resolving to loopback", allowed: []string{"localhost:" + port}, url: "http://localhost:" + port, wantErr: "loopback address"},
		{name: "exact name with the private opt-in", allowed: []string{"localhost:" + port}, private: true, url: "http://localhost:" + port},
		{name: "wildcard with the private opt-in", allowed: []string{"*.0.0.1"}, private: true, url: target.URL},
		// Link-local (cloud metadata) is never reached, whatever the allowlist.
		{name: "metadata literal", allowed: []string{"169.254.169.254"}, private: true, url: "http://169.254.169.254/latest/meta-data/", wantErr: "169.254.169.254 is a link-local address"},
		{name: "metadata literal, mapped", allowed: []string{"::ffff:169.254.169.254"}, private: true, url: "http://[::ffff:169.254.169.254]/", wantErr: "link-local address"},
		{name: "IPv6 link-local", allowed: []string{"fe80::1"}, private: true, url: "http://[fe80::1]:" + port, wantErr: "fe80::1 is a link-local address"},
		{name: "unspecified", allowed: []string{"0.0.0.0"}, private: true, url: "http://0.0.0.0:" + port, wantErr: "unspecified address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := target.hits.Load()
			s := host.NewServices("t", host.Sandbox{AllowedHosts: tt.allowed, AllowPrivateNetworks: tt.private}, host.Deps{})
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
			if target.hits.Load() != before {
				t.Error("a refused request reached the server")
			}
		})
	}
}

// TestHTTPResolvedAddressChecked dials through a name server the plugin
// author controls: a name allowed exactly is refused when it resolves to
// loopback (unless the installation opts in) or to link-local (always).
func TestHTTPResolvedAddressChecked(t *testing.T) {
	target := newServer(t, nil)
	_, port, _ := strings.Cut(target.hostp, ":")
	url := "http://api.attacker.example:" + port + "/"
	tests := []struct {
		name     string
		resolves string
		private  bool
		wantErr  string
	}{
		{"loopback", "127.0.0.1", false, "api.attacker.example: address refused: 127.0.0.1 is a loopback address"},
		{"loopback with the opt-in", "127.0.0.1", true, ""},
		{"metadata with the opt-in", "169.254.169.254", true, "api.attacker.example: address refused: 169.254.169.254 is a link-local address"},
	}
	orig := net.DefaultResolver
	t.Cleanup(func() { net.DefaultResolver = orig })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			net.DefaultResolver = hostileDNS(t, tt.resolves)
			before := target.hits.Load()
			sb := host.Sandbox{AllowedHosts: []string{"api.attacker.example"}, AllowPrivateNetworks: tt.private}
			resp, err := host.NewServices("t", sb, host.Deps{}).HTTP(context.Background(), pdk.HTTPRequest{URL: url})
			if tt.wantErr == "" {
				if err != nil || resp.Status != 200 {
					t.Fatalf("got %v, %v; want 200", resp, err)
				}
				return
			}
			if !errors.Is(err, host.ErrHostNotAllowed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if target.hits.Load() != before {
				t.Fatal("the name reached the server")
			}
		})
	}
}

// hostileDNS is a resolver answering every A query with ip, as a plugin
// author's name server would.
func hostileDNS(t *testing.T, ip string) *net.Resolver {
	t.Helper()
	a := netip.MustParseAddr(ip).As4()
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, a)
		return client, nil
	}}
}

// serveDNS answers the queries on stream c (2-byte length prefixes) with
// one A record for a, and no record for other types.
func serveDNS(c net.Conn, a [4]byte) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return
		}
		question, err := p.Question()
		if err != nil {
			return
		}
		b := dnsmessage.NewBuilder([]byte{0, 0}, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		_ = b.StartQuestions()
		_ = b.Question(question)
		_ = b.StartAnswers()
		if question.Type == dnsmessage.TypeA {
			_ = b.AResource(dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a})
		}
		out, err := b.Finish()
		if err != nil {
			return
		}
		out[0], out[1] = byte((len(out)-2)>>8), byte(len(out)-2)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func TestHTTPRedirects(t *testing.T) {
	final := newServer(t, nil)
	forbidden := newServer(t, nil)
	_, forbiddenPort, _ := strings.Cut(forbidden.hostp, ":")
	hop := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		to := map[string]string{
			"":          final.URL,
			"forbidden": forbidden.URL,
			"metadata":  "http://169.254.169.254/latest/meta-data/",
			"localhost": "http://localhost:" + forbiddenPort + "/",
		}[r.URL.Query().Get("to")]
		http.Redirect(w, r, to, http.StatusFound)
	})
	sb := host.Sandbox{
		// Entries the attacks below would need: none of them helps.
		AllowedHosts: []string{hop.hostp, final.hostp, "169.254.169.254", "localhost"},
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

	tests := []struct {
		to, wantErr string
	}{
		{"forbidden", "redirect to " + forbidden.URL + ": host not allowed"},
		{"metadata", "redirect to http://169.254.169.254/latest/meta-data/: host not allowed: address refused: 169.254.169.254 is a link-local address"},
		{"localhost", "host not allowed: localhost: address refused"}, // a name, even allowed exactly: refused at dial
	}
	for _, tt := range tests {
		_, err = s.HTTP(ctx, pdk.HTTPRequest{URL: hop.URL + "?to=" + tt.to})
		if !errors.Is(err, host.ErrHostNotAllowed) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("redirect to %s: err = %v, want %q", tt.to, err, tt.wantErr)
		}
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
