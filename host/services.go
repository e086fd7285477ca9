package host

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/portico-dev/portico/internal/egress"
	"github.com/portico-dev/portico/pdk"
)

// Limits of the small host functions.
const (
	maxKVKey      = 256
	maxKVValue    = 64 << 10
	maxLogMessage = 8 << 10
	maxRedirects  = 10
)

// Deps are the shared services host functions reach.
type Deps struct {
	KV      KVStore       // nil: KV calls fail
	Catalog CatalogReader // nil: every lookup returns null
	Logger  *slog.Logger  // nil: slog.Default()
}

// Services implements the host functions (pdk.Host) for one installation:
// HTTP through the allowlist with injected credentials, HMAC with named
// secrets, logging, KV state and catalog reads. It is transport independent
// and safe for concurrent use.
type Services struct {
	installation string
	sandbox      Sandbox
	deps         Deps
	allow        allowlist
	authHeaders  []string
	client       *http.Client
}

var (
	_ pdk.Host       = (*Services)(nil)
	_ pdk.SecretHost = (*Services)(nil)
)

// NewServices returns the host functions of installation id under sb.
func NewServices(id string, sb Sandbox, deps Deps) *Services {
	sb = sb.WithDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	s := &Services{installation: id, sandbox: sb, deps: deps, allow: parseAllowlist(sb.AllowedHosts)}
	seen := map[string]bool{}
	for _, a := range sb.Auth {
		if h := http.CanonicalHeaderKey(a.Header); !seen[h] {
			seen[h] = true
			s.authHeaders = append(s.authHeaders, h)
		}
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // never route through the host's proxy settings
			DialContext:           s.dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: sb.Timeout,
		},
		CheckRedirect: s.checkRedirect,
	}
	return s
}

// Close releases idle connections.
func (s *Services) Close() { s.client.CloseIdleConnections() }

// dial connects only to allowed hosts. The address is checked after DNS
// resolution, on every connection (so on every redirect hop): never a
// link-local, unspecified or multicast address, and a private or loopback
// one only when the installation opts in (Sandbox.AllowPrivateNetworks) or
// the allowlist names that IP literal exactly. A name whose DNS the plugin
// author controls cannot point the portal at 127.0.0.1 or 169.254.169.254.
func (s *Services) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	allowed, literal := s.allow.match(h, port)
	if !allowed {
		return nil, fmt.Errorf("%w: %s", ErrHostNotAllowed, addr)
	}
	guard := egress.Control(literal || s.sandbox.AllowPrivateNetworks)
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		if err := guard(network, address, c); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrHostNotAllowed, h, err)
		}
		return nil
	}}
	return d.DialContext(ctx, network, addr)
}

func (s *Services) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if err := s.allow.checkURL(req.URL); err != nil {
		return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
	}
	// Credentials are per host: drop those meant for the previous hop.
	for _, h := range s.authHeaders {
		req.Header.Del(h)
	}
	return s.injectAuth(req)
}

// injectAuth sets the headers of every auth template matching req's host.
func (s *Services) injectAuth(req *http.Request) error {
	h, port, err := hostPort(req.URL)
	if err != nil {
		return err
	}
	for _, a := range s.sandbox.Auth {
		if ok, _ := parseAllowlist(a.Hosts).match(h, port); !ok {
			continue
		}
		v, err := pdk.FillTemplate(a.Template, func(name string) (string, bool) {
			v, ok := s.sandbox.Secrets[name]
			return v, ok
		})
		if err != nil {
			return fmt.Errorf("auth for %s: %w", h, err)
		}
		req.Header.Set(a.Header, v)
	}
	return nil
}

// HTTP implements pdk.Host.
func (s *Services) HTTP(ctx context.Context, r pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	if err := s.allow.checkURL(u); err != nil {
		return nil, err
	}
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range r.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if err := s.injectAuth(req); err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known to the plugin; keep the cause
		}
		return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	limit := s.sandbox.ResponseCapBytes
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, u.Redacted(), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s: response body exceeds %d bytes", method, u.Redacted(), limit)
	}
	return &pdk.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: b}, nil
}

// HMAC implements pdk.Host.
func (s *Services) HMAC(_ context.Context, r pdk.HMACRequest) (*pdk.HMACResponse, error) {
	secret, ok := s.sandbox.Secrets[r.Secret]
	if !ok {
		return nil, fmt.Errorf("secret %q is not set", r.Secret)
	}
	var h func() hash.Hash
	switch strings.ToLower(r.Algorithm) {
	case "", "sha256":
		h = sha256.New
	case "sha1":
		h = sha1.New
	case "sha512":
		h = sha512.New
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", r.Algorithm)
	}
	m := hmac.New(h, []byte(secret))
	m.Write(r.Data)
	return &pdk.HMACResponse{Hex: hex.EncodeToString(m.Sum(nil))}, nil
}

// Secret implements pdk.SecretHost for native integrations
// (Sandbox.RevealSecrets); every other plugin is refused.
func (s *Services) Secret(_ context.Context, r pdk.SecretRequest) (*pdk.SecretResponse, error) {
	if !s.sandbox.RevealSecrets {
		return nil, pdk.ErrNoSecrets
	}
	v, ok := s.sandbox.Secrets[r.Name]
	if !ok {
		return nil, fmt.Errorf("secret %q is not set", r.Name)
	}
	return &pdk.SecretResponse{Value: v}, nil
}

// Log implements pdk.Host.
func (s *Services) Log(ctx context.Context, r pdk.LogRequest) error {
	level := slog.LevelInfo
	switch strings.ToLower(r.Level) {
	case pdk.LevelDebug:
		level = slog.LevelDebug
	case pdk.LevelWarn, "warning":
		level = slog.LevelWarn
	case pdk.LevelError:
		level = slog.LevelError
	}
	msg := r.Message
	if len(msg) > maxLogMessage {
		msg = msg[:maxLogMessage] + "…"
	}
	s.deps.Logger.Log(ctx, level, msg, "integration", s.installation, "source", "plugin")
	return nil
}

// KVGet implements pdk.Host.
func (s *Services) KVGet(ctx context.Context, r pdk.KVGetRequest) (*pdk.KVGetResponse, error) {
	if s.deps.KV == nil {
		return nil, errors.New("no kv store")
	}
	v, ok, err := s.deps.KV.Get(ctx, s.installation, r.Key)
	if err != nil {
		return nil, fmt.Errorf("kv get %q: %w", r.Key, err)
	}
	return &pdk.KVGetResponse{Value: v, Found: ok}, nil
}

// KVSet implements pdk.Host.
func (s *Services) KVSet(ctx context.Context, r pdk.KVSetRequest) error {
	if s.deps.KV == nil {
		return errors.New("no kv store")
	}
	if r.Key == "" || len(r.Key) > maxKVKey {
		return fmt.Errorf("kv key must be 1..%d bytes", maxKVKey)
	}
	if len(r.Value) > maxKVValue {
		return fmt.Errorf("kv value exceeds %d bytes", maxKVValue)
	}
	if err := s.deps.KV.Set(ctx, s.installation, r.Key, r.Value); err != nil {
		return fmt.Errorf("kv set %q: %w", r.Key, err)
	}
	return nil
}

// CatalogGet implements pdk.Host.
func (s *Services) CatalogGet(ctx context.Context, r pdk.CatalogGetRequest) (json.RawMessage, error) {
	if s.deps.Catalog == nil {
		return json.RawMessage("null"), nil
	}
	e, err := s.deps.Catalog.GetEntity(ctx, r.Blueprint, r.Identifier)
	if err != nil {
		return nil, fmt.Errorf("catalog get %s/%s: %w", r.Blueprint, r.Identifier, err)
	}
	if e == nil {
		return json.RawMessage("null"), nil
	}
	return e, nil
}
