package api

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-dev/portico/internal/ratelimit"

	"github.com/portico-dev/portico/internal/errkind"
)

// Per-address budget of unauthenticated requests (see limitClients).
const (
	DefaultClientRate  = 20  // requests per second
	DefaultClientBurst = 200 // requests
)

// errAddressLimited is a request from an address that spent its budget of
// unauthenticated requests (429).
var errAddressLimited = errkind.New(errkind.RateLimited, "too many unauthenticated requests from this address, retry later")

// authFailureKey is where authenticate says why it refused a request.
const authFailureKey = "portico.authFailure"

// Reasons of portico_http_unauthenticated_total.
const (
	reasonMissingToken = "missing_token"
	reasonInvalidToken = "invalid_token"
	reasonNoRoute      = "no_route"
	reasonAddressLimit = "address_limit"
)

// unlimitedRoutes are the probes: they carry no body and write nothing.
var unlimitedRoutes = map[string]bool{"/healthz": true, "/readyz": true}

// webhookRoute receives signed deliveries: the plugin's verification
// vouches for them as a token does for other routes.
const webhookRoute = "/api/v1/integrations/:id/webhook"

// clientLimiter budgets, per client address, the requests no valid token
// vouches for: webhook deliveries, unrouted paths, missing and bad tokens.
type clientLimiter struct {
	limiter *ratelimit.Limiter // nil: no limit
	refused *prometheus.CounterVec
}

func newClientLimiter(cfg Config, reg *prometheus.Registry) *clientLimiter {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_http_unauthenticated_total",
		Help: "Requests refused without an authenticated caller, by reason (missing_token, invalid_token, no_route, address_limit).",
	}, []string{"reason"})
	reg.MustRegister(refused)
	cl := &clientLimiter{refused: refused}
	rate, burst := cfg.ClientRate, cfg.ClientBurst
	if rate == 0 {
		rate = DefaultClientRate
	}
	if burst <= 0 {
		burst = DefaultClientBurst
	}
	if rate > 0 {
		cl.limiter = ratelimit.New(rate, burst)
	}
	return cl
}

// handle refuses (429 with Retry-After) a request from an address whose
// budget is spent, before any work. A request without a bearer token takes
// from the budget up front; one with a token is charged only if it ends
// unauthenticated, so valid tokens never spend an address's budget, and
// a flood of bad tokens is refused without looking them up. Webhook
// deliveries are charged like tokens: only when refused (unknown
// installation, bad signature), so a busy sender of verified deliveries
// (GitHub, PagerDuty) is limited by its installation's webhook rate alone.
func (cl *clientLimiter) handle(c *gin.Context) {
	if unlimitedRoutes[c.FullPath()] {
		c.Next()
		return
	}
	key := clientKey(c.ClientIP())
	_, hasToken := bearerToken(c.GetHeader("Authorization"))
	webhook := c.FullPath() == webhookRoute
	if cl.limiter != nil {
		now := time.Now()
		wait := time.Duration(0)
		if hasToken || webhook {
			wait = cl.limiter.Wait(key, now)
		} else if ok, w := cl.limiter.Allow(key, now); !ok {
			wait = w
		}
		if wait > 0 {
			cl.refused.WithLabelValues(reasonAddressLimit).Inc()
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
			fail(c, errAddressLimited)
			return
		}
	}
	c.Next()
	if webhook {
		if cl.limiter != nil && refused(c) {
			cl.limiter.Spend(key, time.Now())
		}
		return
	}
	if _, ok := c.Get(actorKey); ok {
		return
	}
	if hasToken && cl.limiter != nil {
		cl.limiter.Spend(key, time.Now())
	}
	switch reason := c.GetString(authFailureKey); {
	case reason != "":
		cl.refused.WithLabelValues(reason).Inc()
	case c.FullPath() == "":
		cl.refused.WithLabelValues(reasonNoRoute).Inc()
	}
}

// refused reports whether a handler answered with a client error other
// than its own rate limit (errors are rendered later, by renderErrors).
func refused(c *gin.Context) bool {
	status := c.Writer.Status()
	if len(c.Errors) > 0 {
		status, _ = errorResponse(c.Errors[0].Err)
	}
	return status >= 400 && status != http.StatusTooManyRequests
}

// clientKey is the budget an address draws from: itself for IPv4, its
// /64 for IPv6 (one host commonly holds a whole /64).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// DefaultBodyTimeout is how long a request body may take to arrive.
const DefaultBodyTimeout = time.Minute

// errBodyTimeout is a body that did not arrive in time (408).
var errBodyTimeout = errkind.New(errkind.Timeout, "request body not received in time")

// bodyDeadline gives a request's body d to arrive (a read deadline on the
// connection, cleared once the body is read): a client trickling its body
// cannot hold a handler, or a bulk slot, longer. Requests without a body
// (the event and run log streams) get none and live as long as they like.
func bodyDeadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if d <= 0 || r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		rc := http.NewResponseController(c.Writer)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			c.Next() // not a real connection (tests' recorders)
			return
		}
		r.Body = &deadlineBody{Body: r.Body, rc: rc}
		c.Next()
	}
}

// deadlineBody clears the read deadline at the end of the body, so the
// handler's own work is not bounded by it, and reports a passed deadline
// as errBodyTimeout.
type deadlineBody struct {
	Body io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.Body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout
	case !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.Body.Close() }
