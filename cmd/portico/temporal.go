package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/workflows"
	"github.com/portico-dev/portico/workflows/devserver"
)

// temporalConfig is how a process reaches Temporal.
type temporalConfig struct {
	address   string
	namespace string
	taskQueue string
	port      int // dev: the embedded frontend's port (0: free)
}

// register adds --temporal-address, --temporal-namespace and
// --temporal-task-queue (their PORTICO_* twins come from bindEnv).
func (t *temporalConfig) register(fs *pflag.FlagSet, addressHelp string) {
	fs.StringVar(&t.address, "temporal-address", "", addressHelp)
	fs.StringVar(&t.namespace, "temporal-namespace", "default", "Temporal namespace")
	fs.StringVar(&t.taskQueue, "temporal-task-queue", workflows.TaskQueue, "task queue of action runs and timers")
}

// engine is the Temporal side of a process: a client, optionally a worker
// (with the TTL timer scheduler) and, in dev, the embedded server.
type engine struct {
	log       *slog.Logger
	client    client.Client
	runner    *workflows.Runner
	taskQueue string
	embedded  *devserver.Server
	worker    worker.Worker
	cancel    context.CancelFunc
	done      chan struct{}
}

func sdkLogger(log *slog.Logger) sdklog.Logger {
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	return sdklog.NewStructuredLogger(slog.New(h).With("component", "temporal-sdk"))
}

// startEmbedded starts dev mode's Temporal server under dataDir and
// connects to it.
func startEmbedded(log *slog.Logger, dataDir string, cfg temporalConfig) (*engine, error) {
	t0 := time.Now()
	srv, err := devserver.Start(devserver.Options{DataDir: dataDir, FrontendPort: cfg.port, Namespace: cfg.namespace})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := srv.Dial(ctx, client.Options{Logger: sdkLogger(log)})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("dial embedded temporal: %w", err), srv.Stop())
	}
	log.Info("embedded temporal started", "address", srv.HostPort(), "took", time.Since(t0).Round(time.Millisecond))
	return &engine{log: log, client: c, runner: workflows.NewRunner(c, cfg.taskQueue), taskQueue: cfg.taskQueue, embedded: srv}, nil
}

// connect makes a lazy client of an external Temporal (nil when no
// address is configured).
func connect(log *slog.Logger, cfg temporalConfig) (*engine, error) {
	if cfg.address == "" {
		return nil, nil
	}
	c, err := client.NewLazyClient(client.Options{HostPort: cfg.address, Namespace: cfg.namespace, Logger: sdkLogger(log)})
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	return &engine{log: log, client: c, runner: workflows.NewRunner(c, cfg.taskQueue), taskQueue: cfg.taskQueue}, nil
}

// startWorker runs the workflows and activities and the TTL timer
// scheduler until stop. store opens the signing secrets and webhook
// headers the worker sends.
func (e *engine) startWorker(store *redisactions.Store, cat *catalog.Service, svc *actions.Service, autos *automations.Service, plugins workflows.PluginHost) error {
	acts := &workflows.Activities{
		Store: store, Catalog: cat, Plugins: plugins, Resyncs: plugins, Actions: svc,
	}
	w := worker.New(e.client, e.taskQueue, worker.Options{})
	workflows.Register(w, acts)
	workflows.RegisterAutomations(w, &workflows.AutomationActivities{
		Service: autos.WithDelivery(workflows.AutomationWebhooks{Activities: acts}, workflows.AutomationPlugins(plugins)),
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start temporal worker: %w", err)
	}
	e.worker = w
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	sched := &workflows.TimerScheduler{Catalog: cat, Client: e.client, Cursors: store, TaskQueue: e.taskQueue, Logger: e.log}
	go func() {
		defer close(e.done)
		if err := sched.Run(ctx); err != nil {
			e.log.Error("timer scheduler stopped", "err", err)
		}
	}()
	return nil
}

// ready is the /readyz check of Temporal.
func (e *engine) ready(ctx context.Context) error { return e.runner.Ping(ctx) }

// stop stops the scheduler, the worker, the client and the embedded server.
func (e *engine) stop() error {
	if e == nil {
		return nil
	}
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	if e.worker != nil {
		e.worker.Stop()
	}
	e.client.Close()
	if e.embedded != nil {
		return e.embedded.Stop()
	}
	return nil
}
