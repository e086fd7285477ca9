package host

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/portico-dev/portico/internal/egress"
)

// ErrHostNotAllowed is returned when a plugin's request (or one of its
// redirects) targets a host outside the installation's allowlist, or an
// address the installation may not reach (see Sandbox.AllowedHosts).
var ErrHostNotAllowed = errors.New("host not allowed")

// hostPattern is one allowlist entry.
type hostPattern struct {
	host     string // lowercase, no brackets; for wildcards the suffix without "*."
	port     string // "" matches any port
	wildcard bool
}

// allowlist matches hosts against AllowedHosts entries.
type allowlist []hostPattern

func parseAllowlist(entries []string) allowlist {
	var a allowlist
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		var p hostPattern
		if h, port, err := net.SplitHostPort(e); err == nil {
			p.host, p.port = h, port
		} else {
			p.host = strings.Trim(e, "[]")
		}
		if rest, ok := strings.CutPrefix(p.host, "*."); ok {
			p.host, p.wildcard = rest, true
		}
		a = append(a, p)
	}
	return a
}

// match reports whether host:port is allowed, and whether host is an IP
// literal that an entry names exactly (literal): only those may reach
// private addresses without the installation's opt-in.
func (a allowlist) match(host, port string) (allowed, literal bool) {
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, p := range a {
		if p.port != "" && p.port != port {
			continue
		}
		switch {
		case !p.wildcard && host == p.host:
			_, err := netip.ParseAddr(host)
			return true, err == nil
		case p.wildcard && strings.HasSuffix(host, "."+p.host):
			allowed = true
		}
	}
	return allowed, false
}

// hostPort returns the host and the port (explicit or the scheme's default)
// of an http(s) URL.
func hostPort(u *url.URL) (string, string, error) {
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return "", "", fmt.Errorf("%w: scheme %q", ErrHostNotAllowed, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", "", fmt.Errorf("%w: empty host", ErrHostNotAllowed)
	}
	return u.Hostname(), port, nil
}

// checkURL returns an error unless u is allowed. An IP literal that is
// never dialed (link-local, unspecified, multicast…) is refused here with a
// clear reason, whatever the allowlist says; names are checked at dial time.
func (a allowlist) checkURL(u *url.URL) error {
	h, port, err := hostPort(u)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if err := egress.Check(ip, true); err != nil {
			return fmt.Errorf("%w: %w", ErrHostNotAllowed, err)
		}
	}
	if ok, _ := a.match(h, port); !ok {
		return fmt.Errorf("%w: %s", ErrHostNotAllowed, net.JoinHostPort(h, port))
	}
	return nil
}
