package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
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
			eng, err := connect(log, tc)
			if err != nil {
				return err
			}
			// No listen address: links of the runs it starts (timer
			// expiry actions) are relative unless --public-url is set.
			p, err := newPortal(log, rdb, portalConfig{publicURL: publicURL, cacheDir: cacheDir, keys: keys, engine: eng})
			if err != nil {
				return errors.Join(err, eng.stop())
			}
			if err := p.start(startOptions{worker: true, pluginDir: pluginDir}); err != nil {
				return err
			}
			log.Info("portico worker running", "temporal", tc.address, "namespace", tc.namespace, "taskQueue", tc.taskQueue)
			return p.work()
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

// work runs the worker's side until SIGINT/SIGTERM, then closes the
// portal.
func (p *portal) work() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p.runBackground(ctx)
	<-ctx.Done()
	p.log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.close(shutdown)
}
