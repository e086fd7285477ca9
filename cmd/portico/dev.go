package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/catalog/rediscatalog"

	"github.com/portico-dev/portico/devredis"
)

// devStore tunes the catalog store for the embedded miniredis, which
// scans a stream linearly on every read: blocking reads poll (see
// rediscatalog.Options.PollEvents) and the change stream keeps the last
// 20,000 events instead of 500,000.
var devStore = rediscatalog.Options{PollEvents: 200 * time.Millisecond, EventRetention: 20_000}

func devCmd() *cobra.Command {
	var pprofAddr, addr, publicURL, dataDir, adminToken, pluginDir string
	var ac accessConfig
	var tc temporalConfig
	var sc secretsConfig
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole portal in one process with embedded Redis and Temporal, persisted under --data-dir",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			servePprof(newLogger(), pprofAddr)
			log := newLogger()
			token, err := devAdminToken(dataDir, adminToken)
			if err != nil {
				return err
			}
			keys, err := sc.keyring(dataDir)
			if err != nil {
				return err
			}
			db, err := devredis.Start(dataDir, log)
			if err != nil {
				return fmt.Errorf("start embedded redis: %w", err)
			}
			rdb := redis.NewClient(&redis.Options{Addr: db.Addr(), PoolSize: 64})
			rdb.AddHook(db.Hook())
			ac.adminToken = token
			eng, err := startEmbedded(log, dataDir, tc)
			if err != nil {
				_ = rdb.Close()
				return errors.Join(err, db.Close())
			}
			p, err := newPortal(log, rdb, portalConfig{store: devStore, access: ac, addr: addr, publicURL: publicURL,
				cacheDir: filepath.Join(dataDir, "wasm-cache"), keys: keys, engine: eng})
			if err != nil {
				_ = eng.stop()
				_ = rdb.Close()
				return errors.Join(err, db.Close())
			}
			if err := p.start(startOptions{api: true, worker: true, pluginDir: pluginDir}); err != nil {
				_ = rdb.Close()
				return errors.Join(err, db.Close())
			}
			runErr := p.serve()
			_ = rdb.Close()
			if err := db.Close(); err != nil {
				return errors.Join(runErr, fmt.Errorf("persist embedded redis: %w", err))
			}
			return runErr
		},
	}
	cmd.Flags().StringVar(&pprofAddr, "pprof-addr", "", "serve Go's profiler on this address (off when empty)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7070", "listen address")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the portal's URL in run links (empty: http://<addr>)")
	cmd.Flags().StringVar(&dataDir, "data-dir", ".portico", "where the embedded catalog is persisted")
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "bootstrap admin token (generated and written to <data-dir>/admin-token when empty)")
	addPluginDirFlag(cmd.Flags(), &pluginDir)
	ac.register(cmd.Flags())
	sc.register(cmd.Flags(), " (default: <data-dir>/secrets.key, generated when absent)")
	cmd.Flags().IntVar(&tc.port, "temporal-port", 0, "gRPC port of the embedded Temporal server on 127.0.0.1 (0: a free port)")
	cmd.Flags().StringVar(&tc.namespace, "temporal-namespace", "default", "Temporal namespace registered in the embedded server")
	cmd.Flags().StringVar(&tc.taskQueue, "temporal-task-queue", "portico", "task queue of action runs and timers")
	return cmd
}

// devAdminToken returns the configured token, else the one remembered in
// the data dir, else a new random one that it prints and remembers.
func devAdminToken(dataDir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(dataDir, "admin-token")
	if raw, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(raw)) != "" {
		fmt.Fprintf(os.Stderr, "admin token: read from %s\n", path)
		return strings.TrimSpace(string(raw)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	token := "pt_" + hex.EncodeToString(buf)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "admin token (also in %s): %s\n", path, token)
	return token, nil
}
