package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/loader"
	"github.com/portico-dev/portico/host/redisstore"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/secretbox"
)

// pluginHost is the plugin registry, the installed integrations and what
// they run on.
type pluginHost struct {
	loader       *loader.Loader
	registry     *registry.Registry
	integrations *integrations.Manager
}

// newPluginHost wires the plugin host over rdb. cacheDir holds the Wasm
// compilation cache; empty means a directory under the system temp dir.
// keys seal the installations' secrets (nil: plain text).
func newPluginHost(log *slog.Logger, rdb redis.UniversalClient, cat *catalog.Service, cacheDir string, keys *secretbox.Keyring) (*pluginHost, error) {
	if cacheDir == "" {
		cacheDir = filepath.Join(os.TempDir(), "portico-wasm-cache")
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("wasm cache dir: %w", err)
	}
	ld, err := loader.New(cacheDir, log)
	if err != nil {
		return nil, err
	}
	store := redisstore.New(rdb, "").UseKeyring(keys)
	reg := registry.New(store, ld)
	mgr := integrations.New(integrations.Options{
		Catalog: cat, Registry: reg, Store: store, KV: store, Logger: log,
	})
	return &pluginHost{loader: ld, registry: reg, integrations: mgr}, nil
}

// close stops syncs and plugins, then the Wasm engine.
func (h *pluginHost) close(ctx context.Context) error {
	return errors.Join(h.integrations.Close(ctx), h.loader.Close(ctx))
}
