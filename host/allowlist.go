package host

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrHostNotAllowed is returned when a plugin's request (or one of its
// redirects) targets a host outside the installation's allowlist, or a
// non-public address the allowlist does not name explicitly.
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

// match reports whether host:port is allowed, and whether an entry names the
// host exactly (explicit), which is required to reach non-public addresses.
func (a allowlist) match(host, port string) (allowed, explicit bool) {
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, p := range a {
		if p.port != "" && p.port != port {
			continue
		}
		switch {
		case !p.wildcard && host == p.host:
			return true, true
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

// checkURL returns an error unless u is allowed.
func (a allowlist) checkURL(u *url.URL) error {
	h, port, err := hostPort(u)
	if err != nil {
		return err
	}
	if ok, _ := a.match(h, port); !ok {
		return fmt.Errorf("%w: %s", ErrHostNotAllowed, net.JoinHostPort(h, port))
	}
	return nil
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 may reach private IPv4
}

// isNonPublic reports whether ip is loopback, private, link-local, unspecified,
// multicast or otherwise not a public unicast address.
func isNonPublic(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
