package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/workflows"
)

func workerCmd() *cobra.Command {
	var redisURL, cacheDir, publicURL, pluginDir string
	var tc temporalConfig
	var sc secretsConfig
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker, the TTL timer scheduler and the plugin host (no HTTP API)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			if err := checkPublicURL(publicURL); err != nil {
				return err
			}
			if tc.address == "" {
				return errors.New("worker needs --temporal-address (or PORTICO_TEMPORAL_ADDRESS)")
			}
			log := newLogger()
			opts, err := redis.ParseURL(redisURL)
			if err != nil {
				return fmt.Errorf("--redis-url: %w", err)
			}
			opts.PoolSize = 64
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			keys, err := sc.keyring("")
			if err != nil {
				return err
			}
			if err := prepareSecrets(context.Background(), log, keys, secretStores(rdb, keys)...); err != nil {
				return err
			}
			cat := catalog.NewService(rediscatalog.New(rdb, rediscatalog.Options{}), catalog.Options{Authorizer: access.Authorizer{}})
			eng, err := connect(log, tc)
			if err != nil {
				return err
			}
			ph, err := newPluginHost(log, rdb, cat, cacheDir, keys, workflows.NewSchedules(eng.client, eng.taskQueue))
			if err != nil {
				return fmt.Errorf("plugin host: %w", err)
			}
			if err := registerPluginDir(log, ph.registry, pluginDir); err != nil {
				return errors.Join(err, ph.close(context.Background()))
			}
			svc := actions.NewService(redisactions.New(rdb, redisactions.Options{Keyring: keys}), cat, actions.Options{
				Runner: eng.runner, LinkBase: strings.TrimSuffix(publicURL, "/"), // runs the worker starts (timer expiry actions)
			})
			if err := eng.startWorker(rdb, cat, svc, ph.integrations, keys); err != nil {
				return errors.Join(err, eng.stop())
			}
			log.Info("portico worker running", "temporal", tc.address, "namespace", tc.namespace, "taskQueue", tc.taskQueue)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go ph.integrations.Run(ctx) // reconcile the resync schedules
			<-ctx.Done()
			log.Info("shutting down")
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return errors.Join(eng.stop(), ph.close(shutdown))
		},
	}
	cmd.Flags().StringVar(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis 7 URL")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "Wasm compilation cache directory (a temp dir when empty)")
	addPluginDirFlag(cmd.Flags(), &pluginDir)
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the portal's URL in links of runs the worker starts (empty: relative links)")
	tc.register(cmd.Flags(), "Temporal frontend host:port")
	sc.register(cmd.Flags(), "")
	return cmd
}
