// Package host is Portico's plugin host: it loads, sandboxes and calls
// integrations behind one interface, whatever the transport. host/wasm
// (Extism on wazero) and host/goplugin (hashicorp/go-plugin) implement
// Integration; this package holds the transport-independent parts: sandbox
// settings, errors and the host functions offered to plugins (Services).
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// Integration is a loaded plugin bound to one installation. It is the only
// view of a plugin the rest of Portico has. Implementations are safe for
// concurrent use and bound concurrent calls by Sandbox.Concurrency.
type Integration interface {
	Info(ctx context.Context) (*pdk.Info, error)
	Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error)
	Webhook(ctx context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error)
	Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error)
	// Watch waits for changes (plugins whose Info.Watch is set; others
	// fail with ErrUnsupported).
	Watch(ctx context.Context, req pdk.WatchRequest) (*pdk.WatchResult, error)
	Close(ctx context.Context) error
}

// Errors a call may fail with, besides *PluginError and context errors.
var (
	// ErrTimeout: the call ran past Sandbox.Timeout (or the caller's deadline).
	ErrTimeout = errors.New("plugin call timed out")
	// ErrCrashed: the plugin trapped, panicked, exhausted its memory or exited.
	ErrCrashed = errors.New("plugin crashed")
	// ErrClosed: the Integration was closed.
	ErrClosed = errors.New("plugin closed")
	// ErrUnsupported: the plugin does not export the called function.
	ErrUnsupported = errors.New("plugin does not export function")
)

// PluginError is an error the plugin itself returned (for a webhook: the
// delivery was not verified or was rejected).
type PluginError struct {
	Export  string
	Message string
}

func (e *PluginError) Error() string { return "plugin " + e.Export + ": " + e.Message }

// Caller calls a plugin export with JSON input and returns its JSON output.
// Transports implement it; Invoke does the encoding around it.
type Caller interface {
	Call(ctx context.Context, export string, input []byte) ([]byte, error)
}

// Invoke encodes req (nil: no input), calls export through c and decodes the
// output into a Resp.
func Invoke[Resp any](ctx context.Context, c Caller, export string, req any) (*Resp, error) {
	var in []byte
	if req != nil {
		var err error
		if in, err = json.Marshal(req); err != nil {
			return nil, fmt.Errorf("%s: encode input: %w", export, err)
		}
	}
	out, err := c.Call(ctx, export, in)
	if err != nil {
		return nil, err
	}
	var resp Resp
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("%s: decode output: %w", export, err)
	}
	return &resp, nil
}

// Calls implements Integration's four calls over a Caller; a transport
// embeds it and provides Call and Close.
type Calls struct{ Caller Caller }

// Info calls the plugin's info export.
func (e Calls) Info(ctx context.Context) (*pdk.Info, error) {
	return Invoke[pdk.Info](ctx, e.Caller, pdk.ExportInfo, nil)
}

// Resync calls the plugin's resync export. The page is split in one pass
// (pdk.SplitPage), not decoded with encoding/json: a page of a real API is
// megabytes, and the host decodes every item anyway when it maps it.
func (e Calls) Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode input: %w", pdk.ExportResync, err)
	}
	out, err := e.Caller.Call(ctx, pdk.ExportResync, in)
	if err != nil {
		return nil, err
	}
	items, fields, err := pdk.SplitPage(out, "items")
	if err != nil {
		return nil, fmt.Errorf("%s: decode output: %w", pdk.ExportResync, err)
	}
	page := &pdk.ResyncPage{Items: items}
	if raw := fields["cursor"]; len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &page.Cursor); err != nil {
			return nil, fmt.Errorf("%s: decode output: cursor: %w", pdk.ExportResync, err)
		}
	}
	return page, nil
}

// Webhook calls the plugin's webhook export.
func (e Calls) Webhook(ctx context.Context, req pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	return Invoke[pdk.WebhookResult](ctx, e.Caller, pdk.ExportWebhook, req)
}

// Act calls the plugin's act export.
func (e Calls) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	return Invoke[pdk.ActResult](ctx, e.Caller, pdk.ExportAct, req)
}

// Watch calls the plugin's watch export.
func (e Calls) Watch(ctx context.Context, req pdk.WatchRequest) (*pdk.WatchResult, error) {
	return Invoke[pdk.WatchResult](ctx, e.Caller, pdk.ExportWatch, req)
}

// Sandbox holds the limits and credentials of one installation.
type Sandbox struct {
	// MemoryMiB caps a Wasm instance's linear memory (Go guests need ≥ 7).
	MemoryMiB int
	// Timeout bounds every call.
	Timeout time.Duration
	// Concurrency bounds concurrent calls (and pooled Wasm instances).
	Concurrency int
	// AllowedHosts lists "host" (any port), "host:port", or "*.domain"
	// entries ("[::1]:8080" for IPv6). Checked on the resolved address of
	// every connection: private and loopback addresses are reachable only
	// through an entry naming that IP literal exactly ("127.0.0.1:8080") or
	// with AllowPrivateNetworks; link-local (169.254.0.0/16 with the cloud
	// metadata services, fe80::/10), unspecified and multicast ones never.
	AllowedHosts []string
	// AllowPrivateNetworks lets allowed hosts resolve to private and
	// loopback addresses (an internal service known by name).
	AllowPrivateNetworks bool
	// Secrets by name; used by Auth templates and HMAC, never sent to plugins.
	Secrets map[string]string
	// Auth templates to fill from Secrets and inject as request headers.
	Auth []pdk.AuthTemplate
	// ResponseCapBytes caps the body of each HTTP response a plugin receives.
	ResponseCapBytes int64
	// RevealSecrets hands Secrets to the plugin on request (portico_secret):
	// only for native go-plugin integrations, which are trusted code.
	RevealSecrets bool
}

// Defaults used by WithDefaults for zero fields.
const (
	DefaultMemoryMiB        = 128
	DefaultTimeout          = 30 * time.Second
	DefaultConcurrency      = 4
	DefaultResponseCapBytes = 16 << 20
)

// WithDefaults returns s with zero fields set to their defaults.
func (s Sandbox) WithDefaults() Sandbox {
	if s.MemoryMiB <= 0 {
		s.MemoryMiB = DefaultMemoryMiB
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Concurrency <= 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.ResponseCapBytes <= 0 {
		s.ResponseCapBytes = DefaultResponseCapBytes
	}
	return s
}
