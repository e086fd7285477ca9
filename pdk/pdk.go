// Package pdk is what Portico integration authors import: the wire types shared
// by the host and plugins, the Integration interface a plugin implements once,
// and the Host interface through which a plugin reaches the outside world.
//
// The same Integration builds as a Wasm module (see pdk/wasm) or as a go-plugin
// subprocess (see pdk/rpc). Inside a call, pdk.HostFrom(ctx) returns the host
// functions of the calling installation whatever the transport.
package pdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Integration is implemented once by a plugin author.
type Integration interface {
	// Info describes the plugin; it must not depend on configuration.
	Info(ctx context.Context) (*Info, error)
	// Resync returns one page of raw items of req.Kind.
	Resync(ctx context.Context, req ResyncRequest) (*ResyncPage, error)
	// Webhook verifies and interprets a webhook delivery; an error rejects it.
	Webhook(ctx context.Context, req WebhookRequest) (*WebhookResult, error)
	// Act runs one of the plugin's actions.
	Act(ctx context.Context, req ActRequest) (*ActResult, error)
}

// Watcher is implemented by plugins that push changes as they happen
// (Info.Watch). The host calls Watch in a loop, one call at a time per
// installation, while the installation exists; see WatchRequest.
type Watcher interface {
	Watch(ctx context.Context, req WatchRequest) (*WatchResult, error)
}

// Host is the set of host functions Portico offers to a plugin call. Secrets
// stay on the host side: HTTP injects credentials and HMAC signs with them.
type Host interface {
	HTTP(ctx context.Context, req HTTPRequest) (*HTTPResponse, error)
	HMAC(ctx context.Context, req HMACRequest) (*HMACResponse, error)
	Log(ctx context.Context, req LogRequest) error
	KVGet(ctx context.Context, req KVGetRequest) (*KVGetResponse, error)
	KVSet(ctx context.Context, req KVSetRequest) error
	CatalogGet(ctx context.Context, req CatalogGetRequest) (json.RawMessage, error)
}

// Exports of the plugin ABI.
const (
	ExportInfo    = "info"
	ExportResync  = "resync"
	ExportWebhook = "webhook"
	ExportAct     = "act"
	ExportWatch   = "watch" // optional: Watcher
)

// ErrNoHost is returned by host functions called outside a plugin call.
var ErrNoHost = errors.New("pdk: no host in context")

type hostKey struct{}

// WithHost returns a context carrying h; transports call it before invoking
// the Integration.
func WithHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

// HostFrom returns the host of the current call. Outside a call it returns a
// Host whose every function fails with ErrNoHost.
func HostFrom(ctx context.Context) Host {
	if h, ok := ctx.Value(hostKey{}).(Host); ok && h != nil {
		return h
	}
	return noHost{}
}

// HTTP performs req through the host (allowlist, credentials, size cap).
func HTTP(ctx context.Context, req HTTPRequest) (*HTTPResponse, error) {
	return HostFrom(ctx).HTTP(ctx, req)
}

// Logf logs a formatted message at level through the host.
func Logf(ctx context.Context, level, format string, args ...any) {
	_ = HostFrom(ctx).Log(ctx, LogRequest{Level: level, Message: fmt.Sprintf(format, args...)})
}

// SecretHost is implemented by the host functions of native (go-plugin)
// integrations, which are trusted with their installation's secrets.
type SecretHost interface {
	Secret(ctx context.Context, req SecretRequest) (*SecretResponse, error)
}

// ErrNoSecrets is returned by Secret when the host does not hand secrets to
// this plugin: Wasm plugins never see them (use Info.Auth and portico_hmac).
var ErrNoSecrets = errors.New("pdk: secrets are given only to native (go-plugin) integrations")

// Secret returns the named secret of the installation being served. Only
// native go-plugin integrations get secrets (portico_secret); for others
// it fails with ErrNoSecrets.
func Secret(ctx context.Context, name string) (string, error) {
	h, ok := HostFrom(ctx).(SecretHost)
	if !ok {
		return "", ErrNoSecrets
	}
	resp, err := h.Secret(ctx, SecretRequest{Name: name})
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return resp.Value, nil
}

// DecodeConfig decodes an installation's config into a T.
func DecodeConfig[T any](raw json.RawMessage) (T, error) {
	var v T
	if len(raw) == 0 || string(raw) == "null" {
		return v, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode config: %w", err)
	}
	return v, nil
}

type noHost struct{}

func (noHost) HTTP(context.Context, HTTPRequest) (*HTTPResponse, error) { return nil, ErrNoHost }
func (noHost) HMAC(context.Context, HMACRequest) (*HMACResponse, error) { return nil, ErrNoHost }
func (noHost) Log(context.Context, LogRequest) error                    { return ErrNoHost }
func (noHost) KVGet(context.Context, KVGetRequest) (*KVGetResponse, error) {
	return nil, ErrNoHost
}
func (noHost) KVSet(context.Context, KVSetRequest) error { return ErrNoHost }
func (noHost) CatalogGet(context.Context, CatalogGetRequest) (json.RawMessage, error) {
	return nil, ErrNoHost
}
