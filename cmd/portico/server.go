package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/catalog/rediscatalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/internal/secretbox"
	"github.com/portico-dev/portico/workflows"
)

// portal is the assembled process: one HTTP server over the catalog and
// the plugin host.
type portal struct {
	log     *slog.Logger
	rdb     *redis.Client
	catalog *catalog.Service
	plugins *pluginHost
	engine  *engine // nil: no Temporal (runs answer 503)
	srv     *http.Server
}

// portalOptions configure newPortal.
type portalOptions struct {
	store  rediscatalog.Options
	access accessConfig
	// addr is the listen address; publicURL the portal's URL in run
	// links (empty: http://<addr>).
	addr, publicURL string
	// cacheDir holds the Wasm compilation cache (empty: a temp dir).
	cacheDir string
	// engine (nil: none) runs action runs; with runWorker the process
	// also runs the Temporal worker.
	engine    *engine
	runWorker bool
	// keys seal secrets at rest (nil: plain text).
	keys *secretbox.Keyring
	// pluginDir holds plugins registered at start (empty: plugins/
	// beside the binary, if any).
	pluginDir string
}

// newPortal assembles the process.
func newPortal(log *slog.Logger, rdb *redis.Client, o portalOptions) (*portal, error) {
	if err := checkPublicURL(o.publicURL); err != nil {
		return nil, err
	}
	if err := o.access.checkTrustedProxies(); err != nil {
		return nil, err
	}
	ac, addr, cacheDir, eng := o.access, o.addr, o.cacheDir, o.engine
	if err := prepareSecrets(context.Background(), log, o.keys, secretStores(rdb, o.keys)...); err != nil {
		return nil, err
	}
	store := rediscatalog.New(rdb, o.store)
	start := time.Now()
	n, err := store.UpgradeIndexes(context.Background())
	if err != nil {
		return nil, fmt.Errorf("upgrade catalog indexes: %w", err)
	}
	if n > 0 {
		log.Info("rebuilt the catalog's secondary indexes for the current layout", "entities", n, "took", time.Since(start).Round(time.Millisecond))
	}
	cat := catalog.NewService(store, catalog.Options{Authorizer: access.Authorizer{}})
	acc, err := newAccess(log, rdb, cat, ac)
	if err != nil {
		return nil, err
	}
	var sched integrations.Scheduler
	if eng != nil {
		// Resync schedules are Temporal Schedules, kept through the client
		// (API included); without Temporal, run() ticks them itself.
		sched = workflows.NewSchedules(eng.client, eng.taskQueue)
	}
	ph, err := newPluginHost(log, rdb, cat, cacheDir, o.keys, sched)
	if err != nil {
		return nil, fmt.Errorf("plugin host: %w", err)
	}
	if err := registerPluginDir(log, ph.registry, o.pluginDir); err != nil {
		return nil, errors.Join(err, ph.close(context.Background()))
	}
	actOpts := actions.Options{LinkBase: linkBase(o.publicURL, addr)}
	ready := map[string]func(context.Context) error{}
	if eng != nil {
		actOpts.Runner = eng.runner
		ready["temporal"] = eng.ready
	}
	svc := actions.NewService(redisactions.New(rdb, redisactions.Options{Keyring: o.keys}), cat, actOpts)
	if eng != nil {
		if o.runWorker {
			if err := eng.startWorker(rdb, cat, svc, ph.integrations, o.keys); err != nil {
				return nil, err
			}
		}
	}
	handler := api.New(api.Config{
		Catalog: cat, Access: acc, CORSOrigins: ac.corsOrigins, Logger: log,
		Plugins: ph.registry, Integrations: ph.integrations, Actions: svc, Ready: ready,
		TrustedProxies: ac.trustedProxies, ClientRate: ac.clientRateLimit, BodyTimeout: ac.bodyTimeout,
	})
	return &portal{
		log:     log,
		rdb:     rdb,
		catalog: cat,
		plugins: ph,
		engine:  eng,
		srv: &http.Server{
			Addr:              addr,
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			// Bodies are bounded by --body-timeout; no ReadTimeout or
			// WriteTimeout, which would end event and log streams.
			IdleTimeout: 2 * time.Minute,
		},
	}, nil
}

// checkPublicURL refuses a --public-url that is not an absolute http(s) URL.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--public-url %q: want an absolute http:// or https:// URL", s)
	}
	return nil
}

// linkBase is the base URL of run links: publicURL when set, else the
// listen address (an empty or unspecified host reads as 127.0.0.1).
func linkBase(publicURL, addr string) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// servePprof exposes Go's profiler on its own listener, only when asked
// for (--pprof-addr); it is never mounted on the API.
func servePprof(log *slog.Logger, addr string) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info("pprof listening", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error("pprof", "err", err)
		}
	}()
}

// streamDrain is how long a shutdown lets requests finish before it ends
// the streams still open.
const streamDrain = 2 * time.Second

// run serves until SIGINT/SIGTERM, then drains in-flight requests.
func (p *portal) run() error {
	ln, err := net.Listen("tcp", p.srv.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", p.srv.Addr, err)
	}
	p.log.Info("portico listening", "addr", "http://"+ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Requests live under base: a shutdown gives them streamDrain to
	// finish, then cancels it, which ends long-lived streams (change
	// events, run logs) that would otherwise hold Shutdown for its whole
	// timeout; their clients reconnect to another replica and resume.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	p.srv.BaseContext = func(net.Listener) context.Context { return base }
	p.srv.RegisterOnShutdown(func() { time.AfterFunc(streamDrain, cancelBase) })
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(ln) }()
	go p.plugins.integrations.Run(ctx) // reconcile resync schedules (no Temporal: run them)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	p.log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serveErr == nil {
		if err := p.srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := p.engine.stop(); err != nil {
		p.log.Warn("stop temporal", "err", err)
	}
	if err := p.plugins.close(shutdown); err != nil {
		p.log.Warn("stop plugin host", "err", err)
	}
	return serveErr
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
