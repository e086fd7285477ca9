// Package api is Portico's HTTP surface: gin routes, thin handlers over the
// services, one error-mapping middleware and one authentication middleware.
// It is the only package that imports gin.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/automations"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/core/definitions"
	"github.com/portico-dev/portico/core/initiatives"
	"github.com/portico-dev/portico/internal/errkind"
)

// Config is what the HTTP layer needs.
type Config struct {
	Catalog *catalog.Service
	Auth    Authenticator
	Logger  *slog.Logger
	// Ready lists extra readiness checks (Temporal, …) beside the catalog.
	Ready map[string]func(context.Context) error
	// Registry receives the HTTP metrics; nil means a fresh registry.
	Registry *prometheus.Registry
	// Plugins and Integrations serve /api/v1/plugins and
	// /api/v1/integrations; nil leaves those routes out.
	Plugins      Plugins
	Integrations Integrations
	// Access serves tokens, /me and the audit log, rate-limits tokens,
	// checks scopes and audits writes; nil leaves all that out (Auth alone
	// authenticates). Auth defaults to it.
	Access *access.Service
	// CORSOrigins are the origins allowed cross-origin requests ("*":
	// any); empty means no CORS headers at all.
	CORSOrigins []string
	// Actions serves actions, composed workflows and runs; nil leaves
	// those routes out.
	Actions *actions.Service
	// Automations serves /api/v1/automations; nil leaves those routes out.
	Automations *automations.Service
	// Initiatives serves initiatives and the scorecard histories; nil
	// leaves those routes out.
	Initiatives *initiatives.Service
	// Definitions serves portal-as-code's ledger and drift under
	// /api/v1/definitions; nil leaves those routes out.
	Definitions *definitions.Service
	// TrustedProxies are the reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For names the client; none: the TCP peer is the client.
	TrustedProxies []string
	// ClientRate and ClientBurst budget, per client address, the requests
	// no valid token vouches for (zero: DefaultClientRate and
	// DefaultClientBurst; a negative rate: no limit).
	ClientRate  float64
	ClientBurst int
	// BodyTimeout bounds how long a request body takes to arrive (zero:
	// DefaultBodyTimeout; negative: unbounded).
	BodyTimeout time.Duration
}

// New builds the HTTP handler.
func New(cfg Config) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Identifiers may contain "/" (octo/repo), sent as %2F: routes match
	// the escaped path so %2F stays inside its segment, and unescapePath
	// decodes the parameters (gin's own unescaping would turn "+" into a
	// space). A trailing-slash redirect would be built from the decoded
	// path, sending .../a%2Fhistory/ to the history of "a": none is made.
	r.UseEscapedPath = true
	r.UnescapePathValues = false
	r.RedirectTrailingSlash = false
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		cfg.Logger.Error("trusted proxies ignored: the TCP peer is the client", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	if cfg.Auth == nil && cfg.Access != nil {
		cfg.Auth = cfg.Access
	}
	clients := newClientLimiter(cfg, cfg.Registry)
	r.Use(gin.Recovery(), unescapePath, observe(cfg.Registry), securityHeaders(cfg.CORSOrigins), audit(cfg.Access), renderErrors(cfg.Logger),
		clients.handle, bodyDeadline(cfg.BodyTimeout))
	r.NoRoute(func(c *gin.Context) {
		fail(c, &routeError{kind: errkind.NotFound, msg: "no route " + c.Request.Method + " " + c.Request.URL.Path})
	})
	r.NoMethod(func(c *gin.Context) {
		fail(c, &routeError{kind: errkind.NotAllowed, msg: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})

	h := &handlers{cat: cfg.Catalog, ready: cfg.Ready, hub: newEventHub(cfg.Catalog), bulkSlots: make(chan struct{}, MaxConcurrentBulk)}
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	r.GET("/api/v1/openapi.json", openAPI)

	v1 := r.Group("/api/v1", authenticate(cfg.Auth))
	if cfg.Access != nil {
		v1.Use(guard(cfg.Access))
	}
	v1.GET("/blueprints", h.listBlueprints)
	v1.POST("/blueprints", h.createBlueprint)
	v1.GET("/blueprints/:bp", h.getBlueprint)
	v1.PUT("/blueprints/:bp", h.putBlueprint)
	v1.DELETE("/blueprints/:bp", h.deleteBlueprint)

	v1.GET("/blueprints/:bp/entities", h.listEntities)
	v1.POST("/blueprints/:bp/entities", h.createEntity)
	v1.GET("/blueprints/:bp/entities/:id", h.getEntity)
	v1.PUT("/blueprints/:bp/entities/:id", h.putEntity)
	v1.PATCH("/blueprints/:bp/entities/:id", h.patchEntity)
	v1.DELETE("/blueprints/:bp/entities/:id", h.deleteEntity)
	v1.GET("/blueprints/:bp/entities/:id/history", h.history)
	v1.GET("/blueprints/:bp/entities/:id/related", h.related)

	mountScorecards(v1, h)

	v1.POST("/entities/bulk", h.bulk)
	v1.POST("/entities/search", h.search)
	v1.POST("/entities/aggregate", h.aggregate)
	v1.GET("/events", h.events)
	mountPlugins(r, v1, cfg.Plugins, cfg.Integrations)
	mountAccess(v1, cfg.Access, cfg.Catalog)
	mountActions(v1, cfg.Actions)
	mountAutomations(v1, cfg.Automations)
	mountInitiatives(v1, cfg.Initiatives)
	mountDefinitions(v1, cfg.Definitions)
	return r
}

type handlers struct {
	cat   *catalog.Service
	ready map[string]func(context.Context) error
	hub   *eventHub
	// bulkSlots bounds the bulk writes in progress (see bulk).
	bulkSlots chan struct{}

	readyMu     sync.Mutex // guards the last readiness answer (see readyz)
	readyAt     time.Time
	readyStatus int
	readyBody   gin.H
}

// MaxConcurrentBulk is how many bulk writes decode and write at once; more
// wait for a slot once their bodies have arrived (a slow upload holds no
// slot). Each holds a chunk of decoded entities: beyond a few, they only
// make the garbage collector work harder (8 concurrent requests ingested
// half as fast as 4 under serve's memory limit) without keeping Redis
// busier.
const MaxConcurrentBulk = 4

func (h *handlers) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyTTL is how long a readiness answer is reused: probes are exempt
// from the per-address limit, so a flood of them runs the checks at most
// once per readyTTL.
const readyTTL = time.Second

func (h *handlers) readyz(c *gin.Context) {
	h.readyMu.Lock()
	defer h.readyMu.Unlock()
	if time.Since(h.readyAt) >= readyTTL {
		h.readyStatus, h.readyBody = h.checkReady(context.WithoutCancel(c.Request.Context())) // shared: not ended by one caller leaving
		h.readyAt = time.Now()
	}
	c.JSON(h.readyStatus, h.readyBody)
}

func (h *handlers) checkReady(ctx context.Context) (int, gin.H) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := gin.H{}
	status := http.StatusOK
	record := func(name string, err error) {
		if err != nil {
			checks[name] = err.Error()
			status = http.StatusServiceUnavailable
			return
		}
		checks[name] = "ok"
	}
	record("redis", h.cat.Ping(ctx))
	for name, check := range h.ready {
		record(name, check(ctx))
	}
	return status, gin.H{"status": map[bool]string{true: "ready", false: "not ready"}[status == http.StatusOK], "checks": checks}
}

// unescapePath decodes the path parameters, which the router leaves
// escaped (see New): a%2Fb%2Fc is the identifier a/b/c. It runs before
// any other middleware reads them. A parameter that is not a valid escape
// is kept as it is (the server only passes valid ones).
func unescapePath(c *gin.Context) {
	for i, p := range c.Params {
		if v, err := url.PathUnescape(p.Value); err == nil {
			c.Params[i].Value = v
		}
	}
}

// observe records request counts and latencies per route.
func observe(reg *prometheus.Registry) gin.HandlerFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"method", "route", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portico_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method", "route"})
	reg.MustRegister(requests, latency)
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		requests.WithLabelValues(c.Request.Method, route, http.StatusText(c.Writer.Status())).Inc()
		latency.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
	}
}
