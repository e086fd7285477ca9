package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/workflows/devserver"
)

// temporalCmd runs the embedded Temporal server on its own: the external
// Temporal of a `serve` + `worker` deployment on one machine, in
// development and in tests (production uses a Temporal cluster).
func temporalCmd() *cobra.Command {
	var dataDir, namespace, logLevel string
	var port int
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run only the embedded Temporal server (SQLite under --data-dir) for serve + worker on one machine",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			log := newLogger()
			srv, err := devserver.Start(devserver.Options{DataDir: dataDir, FrontendPort: port, Namespace: namespace, LogLevel: logLevel})
			if err != nil {
				return err
			}
			log.Info("temporal server running", "address", srv.HostPort(), "namespace", srv.Namespace(), "dataDir", dataDir)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			log.Info("shutting down")
			return srv.Stop()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".portico-temporal", "where temporal.db and temporal-visibility.db live")
	cmd.Flags().IntVar(&port, "port", 7233, "gRPC port of the frontend on 127.0.0.1")
	cmd.Flags().StringVar(&namespace, "namespace", "default", "namespace registered on start")
	cmd.Flags().StringVar(&logLevel, "log-level", "error", "the server's own log level: debug, info, warn, error")
	return cmd
}
