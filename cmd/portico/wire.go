package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/access/redisaccess"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/automations/redisautomations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/definitions/redisdefinitions"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/core/initiatives/redisinitiatives"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/internal/lowpriority"
	"github.com/portico-dev/portico/internal/secretbox"
	"github.com/portico-dev/portico/workflows"
)

// portalConfig is what the object graph is built from; dev, serve and
// worker fill it from their flags.
type portalConfig struct {
	// store tunes the catalog's Redis store (dev: devStore).
	store  rediscatalog.Options
	access accessConfig
	// addr is the listen address (worker: none); publicURL the portal's
	// URL in run links (empty: http://<addr>, or relative links without
	// addr).
	addr, publicURL string
	// cacheDir holds the Wasm compilation cache (empty: a temp dir).
	cacheDir string
	// keys seal secrets at rest (nil: plain text).
	keys *secretbox.Keyring
	// engine (nil: none) runs action runs and keeps resync schedules.
	engine *engine
}

// linkBase is the base of run links: publicURL, else the listen address;
// a process without one (worker) makes relative links.
func (c portalConfig) linkBase() string {
	if c.addr == "" {
		return strings.TrimSuffix(c.publicURL, "/")
	}
	return linkBase(c.publicURL, c.addr)
}

// portal is every service of a process, wired once by newPortal. dev,
// serve and worker differ only in what they start on it (start): the
// API, the Temporal worker, or both.
type portal struct {
	log *slog.Logger

	catalogStore *rediscatalog.Store
	actionStore  *redisactions.Store

	catalog *catalog.Service
	access  *access.Service
	plugins *pluginHost
	actions *actions.Service
	// automations and automationStore serve automations; the dispatcher
	// runs where an engine is.
	automations     *automations.Service
	automationStore *redisautomations.Store
	// initiatives serves initiatives and scorecard histories, and
	// records their daily figures (runBackground).
	initiatives *initiatives.Service
	engine      *engine // nil: no Temporal (runs answer 503)
	srv         *http.Server
}

// newPortal checks cfg, opens the stored secrets with cfg.keys (sealing
// again what another key or none sealed) and builds the services over
// rdb. It starts nothing and writes nothing else. The portal owns
// cfg.engine once built: close stops it with the plugin host.
//
// The catalog and access depend on each other: access reads users and
// creates blueprints through the catalog, the catalog asks the access
// policy inside every read and write. The policy is access.Authorizer,
// stateless, so the catalog is built with it first and access.Service
// over the catalog after.
func newPortal(log *slog.Logger, rdb redis.UniversalClient, cfg portalConfig) (*portal, error) {
	if err := checkPublicURL(cfg.publicURL); err != nil {
		return nil, err
	}
	if err := cfg.access.checkTrustedProxies(); err != nil {
		return nil, err
	}
	hostStore := redishost.New(rdb, redishost.Options{Keyring: cfg.keys})
	actionStore := redisactions.New(rdb, redisactions.Options{Keyring: cfg.keys})
	if err := prepareSecrets(context.Background(), log, cfg.keys, hostStore, actionStore); err != nil {
		return nil, err
	}
	catalogStore := rediscatalog.New(rdb, cfg.store)
	cat := catalog.NewService(catalogStore, catalog.Options{Authorizer: access.Authorizer{}, Background: lowpriority.Run})
	acc := access.NewService(cat, redisaccess.New(rdb, redisaccess.Options{AuditRetention: cfg.access.auditRetention}),
		access.Options{AdminToken: cfg.access.adminToken, RateLimit: cfg.access.rateLimit, Logger: log})

	actOpts := actions.Options{LinkBase: cfg.linkBase()}
	autoOpts := automations.Options{}
	var sched integrations.Scheduler // nil: the integrations' Run ticks the schedules itself
	ready := map[string]func(context.Context) error{}
	if eng := cfg.engine; eng != nil {
		actOpts.Runner = eng.runner
		// Resync schedules are Temporal Schedules, kept through the
		// client (API included).
		sched = workflows.NewSchedules(eng.client, eng.taskQueue)
		autoOpts.Scheduler = workflows.NewAutomations(eng.client, eng.taskQueue)
		ready["temporal"] = eng.ready
	}
	ph, err := newPluginHost(log, hostStore, cat, cfg.cacheDir, sched)
	if err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	svc := actions.NewService(actionStore, cat, actOpts)
	autoStore := redisautomations.New(rdb, redisautomations.Options{Keyring: cfg.keys})
	autoSvc := automations.NewService(autoStore, cat, svc, autoOpts)
	inits := initiatives.NewService(redisinitiatives.New(rdb, redisinitiatives.Options{}), cat, initiatives.Options{})

	defs := definitions.NewService(redisdefinitions.New(rdb, redisdefinitions.Options{}),
		definitionReaders(cat, svc, ph.integrations, autoSvc, inits, acc))

	ac := cfg.access
	handler := api.New(api.Config{
		Catalog: cat, Access: acc, CORSOrigins: ac.corsOrigins, Logger: log,
		Plugins: ph.registry, Integrations: ph.integrations, Actions: svc, Automations: autoSvc, Initiatives: inits, Definitions: defs, Ready: ready,
		TrustedProxies: ac.trustedProxies, ClientRate: ac.clientRateLimit, BodyTimeout: ac.bodyTimeout,
	})
	return &portal{
		log:          log,
		catalogStore: catalogStore,
		actionStore:  actionStore,
		catalog:      cat,
		access:       acc,
		plugins:      ph,
		actions:      svc,
		automations:  autoSvc, automationStore: autoStore,
		initiatives: inits,
		engine:      cfg.engine,
		srv: &http.Server{
			Addr:              cfg.addr,
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			// Bodies are bounded by --body-timeout; no ReadTimeout or
			// WriteTimeout, which would end event and log streams.
			IdleTimeout: 2 * time.Minute,
		},
	}, nil
}

// changesPoll is how often a process looks for blueprint changes in
// progress that another process started (or left behind when it died).
const changesPoll = 2 * time.Second

// derivePoll is how often RunDerive looks for marks when idle: the delay
// before a change reaches the entities whose derived values read it.
const derivePoll = 100 * time.Millisecond

// runBackground starts, until ctx ends, what every serving process runs
// beside its requests: the integrations' resync schedules (run by the
// integrations themselves when there is no Temporal), the blueprint
// changes in progress (index backfills), the derived values (aggregation
// properties, scorecards) to recompute, the daily figures of scorecards
// and initiatives and, with Temporal, the automations' dispatcher (every
// replica runs one: deliveries have deterministic ids, so concurrent
// dispatchers start each once).
func (p *portal) runBackground(ctx context.Context) {
	go p.plugins.integrations.Run(ctx)
	go p.catalog.RunChanges(ctx, changesPoll, p.log)
	go p.catalog.RunDerive(ctx, derivePoll, p.log)
	go p.initiatives.Run(ctx, p.log)
	if p.engine != nil {
		d := &automations.Dispatcher{
			Store: p.automationStore, Catalog: p.catalog, Service: p.automations, Logger: p.log,
			Starter: workflows.NewAutomations(p.engine.client, p.engine.taskQueue),
		}
		go func() { _ = d.Run(ctx) }()
	}
}

// startOptions say what a process starts on the portal.
type startOptions struct {
	// api: the stores are readied for the HTTP API (see startAPI); the
	// caller then serves it.
	api bool
	// worker: the Temporal worker and the TTL timer scheduler run (the
	// portal needs an engine).
	worker bool
	// pluginDir holds the plugins registered at start (empty: plugins/
	// beside the binary, if any).
	pluginDir string
}

// start readies the API's stores, registers the plugins, then starts the
// worker, as o says; when a step fails it closes the portal.
func (p *portal) start(o startOptions) error {
	var steps []func() error
	if o.api {
		steps = append(steps, p.startAPI)
	}
	steps = append(steps, func() error { return registerPluginDir(p.log, p.plugins.registry, o.pluginDir) })
	if o.worker {
		steps = append(steps, p.startWorker)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return errors.Join(err, p.close(ctx))
		}
	}
	return nil
}

// startAPI rebuilds the catalog's secondary indexes written in an older
// layout and creates the built-in _user and _team blueprints.
func (p *portal) startAPI() error {
	start := time.Now()
	n, err := p.catalogStore.UpgradeIndexes(context.Background())
	if err != nil {
		return fmt.Errorf("upgrade catalog indexes: %w", err)
	}
	if n > 0 {
		p.log.Info("rebuilt the catalog's secondary indexes for the current layout", "entities", n, "took", time.Since(start).Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.access.Bootstrap(ctx); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	return nil
}

// startWorker starts the Temporal worker and the TTL timer scheduler.
func (p *portal) startWorker() error {
	if p.engine == nil {
		return errors.New("the worker needs Temporal")
	}
	return p.engine.startWorker(p.actionStore, p.catalog, p.actions, p.automations, p.plugins.integrations)
}

// close stops the engine and the plugin host.
func (p *portal) close(ctx context.Context) error {
	return errors.Join(p.engine.stop(), p.plugins.close(ctx))
}
