package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/loader"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/host/registry"
)

// pluginHost is the plugin registry, the installed integrations and what
// they run on.
type pluginHost struct {
	loader       *loader.Loader
	registry     *registry.Registry
	integrations *integrations.Manager
}

// newPluginHost builds the plugin host over store. cacheDir holds the
// Wasm compilation cache; empty means a directory under the system temp
// dir. sched keeps the resync schedules (nil: integrations.Manager.Run
// ticks them).
func newPluginHost(log *slog.Logger, store *redishost.Store, cat *catalog.Service, cacheDir string, sched integrations.Scheduler) (*pluginHost, error) {
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
	reg := registry.New(store, ld)
	mgr := integrations.New(integrations.Options{
		Catalog: cat, Registry: reg, Store: store, KV: store, Logger: log, Scheduler: sched,
	})
	return &pluginHost{loader: ld, registry: reg, integrations: mgr}, nil
}

// close stops syncs and plugins, then the Wasm engine.
func (h *pluginHost) close(ctx context.Context) error {
	return errors.Join(h.integrations.Close(ctx), h.loader.Close(ctx))
}

// addPluginDirFlag registers --plugin-dir on fs.
func addPluginDirFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "plugin-dir", "", "register every plugin in this directory at start: *.wasm modules and go-plugin executables (default: plugins/ beside the portico binary, when it exists)")
}

// registerPluginDir registers every plugin in dir, or when dir is empty in
// plugins/ beside the running binary (`make build` puts the bundled
// plugins there). A missing default directory is fine; a missing explicit
// one is an error. A plugin that does not register is logged and skipped.
func registerPluginDir(log *slog.Logger, reg *registry.Registry, dir string) error {
	explicit := dir != ""
	if !explicit {
		d, err := defaultPluginDir()
		if err != nil {
			log.Debug("no default plugin directory", "err", err)
			return nil
		}
		dir = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := reg.RegisterDir(ctx, dir)
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		log.Debug("no bundled plugins", "dir", dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("--plugin-dir: %w", err)
	}
	for _, r := range rs {
		switch {
		case r.Err != nil:
			log.Error("plugin not registered", "file", r.File, "err", r.Err)
		case r.Created:
			log.Info("plugin registered", "plugin", r.Plugin.Ref(), "type", r.Plugin.Type, "file", r.File)
		default:
			log.Info("plugin already registered", "plugin", r.Plugin.Ref(), "type", r.Plugin.Type, "file", r.File)
		}
	}
	return nil
}

// defaultPluginDir returns plugins/ beside the running binary, symbolic
// links resolved.
func defaultPluginDir() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(exe), "plugins"), nil
}
