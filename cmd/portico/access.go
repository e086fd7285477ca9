package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/pflag"

	"github.com/portico-dev/portico/core/api"
)

// accessConfig is the identity-and-access configuration of dev and serve.
type accessConfig struct {
	adminToken     string
	rateLimit      float64
	auditRetention int64
	corsOrigins    []string
	// trustedProxies, clientRateLimit and bodyTimeout bound what
	// unauthenticated and slow clients can hold (see api.Config).
	trustedProxies  []string
	clientRateLimit float64
	bodyTimeout     time.Duration
}

// register adds the access flags (their PORTICO_* twins come from bindEnv).
func (a *accessConfig) register(fs *pflag.FlagSet) {
	fs.Float64Var(&a.rateLimit, "rate-limit", 1000, "requests per second per API token, bursts of twice that (0: unlimited; the bootstrap admin token is never limited)")
	fs.Int64Var(&a.auditRetention, "audit-retention", 1_000_000, "audit log entries kept (approximately)")
	fs.StringSliceVar(&a.corsOrigins, "cors-origin", nil, "origins allowed cross-origin API calls (\"*\": any; none: CORS off)")
	fs.StringSliceVar(&a.trustedProxies, "trusted-proxies", nil, "reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client (none: the TCP peer is the client)")
	fs.Float64Var(&a.clientRateLimit, "client-rate-limit", api.DefaultClientRate, fmt.Sprintf("unauthenticated requests (webhooks, missing or bad tokens, unknown routes) per second per client address, bursts of %d (negative: unlimited)", api.DefaultClientBurst))
	fs.DurationVar(&a.bodyTimeout, "body-timeout", api.DefaultBodyTimeout, "how long a request body may take to arrive (negative: unbounded; event and log streams have no body)")
}

// checkTrustedProxies refuses a --trusted-proxies entry that is neither an
// IP address nor a CIDR.
func (a *accessConfig) checkTrustedProxies() error {
	for _, p := range a.trustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return fmt.Errorf("--trusted-proxies %q: want an IP address or CIDR", p)
			}
		}
	}
	return nil
}
