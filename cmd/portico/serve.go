package main

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

func serveCmd() *cobra.Command {
	var pprofAddr, addr, publicURL, redisURL, adminToken, cacheDir, pluginDir string
	var ac accessConfig
	var tc temporalConfig
	var sc secretsConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the stateless API against a real Redis (run N replicas behind a load balancer)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			servePprof(newLogger(), pprofAddr)
			tuneGC()
			if adminToken == "" {
				return errors.New("serve needs --admin-token (or PORTICO_ADMIN_TOKEN)")
			}
			opts, err := redis.ParseURL(redisURL)
			if err != nil {
				return fmt.Errorf("--redis-url: %w", err)
			}
			opts.PoolSize = 64
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			ac.adminToken = adminToken
			log := newLogger()
			keys, err := sc.keyring("")
			if err != nil {
				return err
			}
			eng, err := connect(log, tc)
			if err != nil {
				return err
			}
			if eng == nil {
				log.Warn("no --temporal-address: action runs answer 503")
			}
			p, err := newPortal(log, rdb, portalConfig{access: ac, addr: addr, publicURL: publicURL, cacheDir: cacheDir, keys: keys, engine: eng})
			if err != nil {
				return errors.Join(err, eng.stop())
			}
			if err := p.start(startOptions{api: true, pluginDir: pluginDir}); err != nil {
				return err
			}
			return p.serve()
		},
	}
	cmd.Flags().StringVar(&pprofAddr, "pprof-addr", "", "serve Go's profiler on this address (off when empty)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7070", "listen address")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the portal's URL in run links (empty: http://<addr>)")
	cmd.Flags().StringVar(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis 7 URL")
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "bootstrap admin token")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "Wasm compilation cache directory (a temp dir when empty)")
	addPluginDirFlag(cmd.Flags(), &pluginDir)
	ac.register(cmd.Flags())
	sc.register(cmd.Flags(), "")
	tc.register(cmd.Flags(), "Temporal frontend host:port (empty: no action runs; /readyz then leaves Temporal out)")
	return cmd
}
