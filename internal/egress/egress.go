// Package egress classifies the addresses Portico's outbound requests
// (plugin HTTP, action webhooks) may dial. The check belongs in a
// net.Dialer's Control function, which sees every resolved address the
// dialer is about to connect to, so a name resolving to an internal address
// is caught as well as a literal.
package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("address refused")

// Class is what an address is to outbound requests.
type Class int

// Address classes, from harmless to never dialed.
const (
	// Public unicast addresses.
	Public Class = iota
	// Private addresses reach the portal's own machine or network: loopback,
	// RFC 1918 and unique-local, carrier-grade NAT, benchmarking, NAT64 of a
	// private IPv4. Callers decide when they may be dialed.
	Private
	// Forbidden addresses are never useful destinations and never dialed:
	// link-local (169.254.0.0/16 with the cloud metadata services, fe80::/10),
	// unspecified, "this network" 0.0.0.0/8, multicast, reserved 240.0.0.0/4
	// and broadcast.
	Forbidden
)

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved    = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	private     = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
		netip.MustParsePrefix("fec0::/10"),     // deprecated site-local
	}
)

// Classify returns ip's class and, unless Public, a short description of it
// ("loopback", "link-local", …).
func Classify(ip netip.Addr) (Class, string) {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return Forbidden, "invalid"
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return Forbidden, "unspecified"
	case ip.IsLinkLocalUnicast():
		return Forbidden, "link-local"
	case ip.IsMulticast():
		return Forbidden, "multicast"
	case reserved.Contains(ip):
		return Forbidden, "reserved"
	case ip.IsLoopback():
		return Private, "loopback"
	case ip.IsPrivate():
		return Private, "private"
	case nat64.Contains(ip):
		// NAT64 reaches the IPv4 address in the last 32 bits.
		b := ip.As16()
		c, what := Classify(netip.AddrFrom4([4]byte(b[12:])))
		if c == Public {
			c, what = Private, "NAT64"
		}
		return c, what
	}
	for _, p := range private {
		if p.Contains(ip) {
			return Private, "private"
		}
	}
	return Public, ""
}

// Check returns an error wrapping ErrRefused when ip is Forbidden, or
// Private and allowPrivate is false.
func Check(ip netip.Addr, allowPrivate bool) error {
	c, what := Classify(ip)
	if c == Forbidden || c == Private && !allowPrivate {
		return fmt.Errorf("%w: %s is a %s address", ErrRefused, ip, what)
	}
	return nil
}

// Control returns a net.Dialer Control function that applies Check to
// every address the dialer connects to.
func Control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrRefused, address, err)
		}
		return Check(ap.Addr(), allowPrivate)
	}
}
