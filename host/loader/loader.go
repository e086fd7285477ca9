// Package loader runs registry plugins on their transport: Wasm modules with
// host/wasm (one shared engine and compilation cache) and go-plugin binaries
// with host/goplugin. It implements registry.Runtime.
package loader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/goplugin"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

// inspectTimeout bounds reading a plugin's info when it is published.
const inspectTimeout = 30 * time.Second

// Loader starts plugins.
type Loader struct {
	engine *wasm.Engine
	logger *slog.Logger
}

var _ registry.Runtime = (*Loader)(nil)

// New returns a Loader whose Wasm compilation cache lives in cacheDir (in
// memory only when empty). logger receives go-plugin process logs.
func New(cacheDir string, logger *slog.Logger) (*Loader, error) {
	e, err := wasm.NewEngine(cacheDir)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Loader{engine: e, logger: logger}, nil
}

// Close releases the compilation cache; close every loaded plugin first.
func (l *Loader) Close(ctx context.Context) error { return l.engine.Close(ctx) }

// inspectSandbox is what a plugin gets while its info is read: no network,
// no secrets, default limits.
func inspectSandbox() host.Sandbox {
	return host.Sandbox{Timeout: inspectTimeout, Concurrency: 1}
}

// InspectWasm implements registry.Runtime.
func (l *Loader) InspectWasm(ctx context.Context, module []byte) (*pdk.Info, error) {
	sb := inspectSandbox()
	p, err := l.engine.Load(ctx, module, sb, host.NewServices("registry", sb, host.Deps{Logger: l.logger}))
	if err != nil {
		return nil, err
	}
	defer p.Close(context.WithoutCancel(ctx))
	return p.Info(ctx)
}

// InspectGoPlugin implements registry.Runtime.
func (l *Loader) InspectGoPlugin(ctx context.Context, path, sha256 string) (*pdk.Info, error) {
	sb := inspectSandbox()
	p, err := goplugin.Start(ctx, goplugin.Config{
		Path: path, SHA256: sha256, Sandbox: sb, Logger: l.logger,
		Host: host.NewServices("registry", sb, host.Deps{Logger: l.logger}),
	})
	if err != nil {
		return nil, err
	}
	defer p.Close(context.WithoutCancel(ctx))
	return p.Info(ctx)
}

// Load implements registry.Runtime.
func (l *Loader) Load(ctx context.Context, p *registry.Plugin, module []byte, sb host.Sandbox, h pdk.Host, opts registry.LoadOptions) (host.Integration, error) {
	switch p.Type {
	case registry.TypeWasm:
		var wo []wasm.LoadOption
		if opts.Uninterruptible {
			wo = append(wo, wasm.Uninterruptible())
		}
		// An installation's pool is filled at once: its first webhook burst
		// does not wait for instantiations.
		wo = append(wo, wasm.Warm())
		return l.engine.Load(ctx, module, sb, h, wo...)
	case registry.TypeGoPlugin:
		return goplugin.Start(ctx, goplugin.Config{Path: p.Path, SHA256: p.SHA256, Sandbox: sb, Host: h, Logger: l.logger})
	}
	return nil, fmt.Errorf("unknown plugin type %q", p.Type)
}
