package host

import (
	"net/netip"
	"testing"
)

func TestAllowlistMatch(t *testing.T) {
	a := parseAllowlist([]string{"api.example.com", "127.0.0.1:8080", "*.pagerduty.com", "[::1]:9000", " Localhost "})
	tests := []struct {
		host, port        string
		allowed, explicit bool
	}{
		{"api.example.com", "443", true, true},
		{"API.example.com", "8443", true, true}, // no port in the entry: any port
		{"example.com", "443", false, false},
		{"evil-api.example.com", "443", false, false},
		{"127.0.0.1", "8080", true, true},
		{"127.0.0.1", "8081", false, false}, // port named: only that one
		{"events.pagerduty.com", "443", true, false},
		{"pagerduty.com", "443", false, false}, // wildcard needs a subdomain
		{"x.pagerduty.com.evil.io", "443", false, false},
		{"::1", "9000", true, true},
		{"[::1]", "9000", true, true},
		{"::1", "9001", false, false},
		{"localhost", "1234", true, true},
	}
	for _, tt := range tests {
		allowed, explicit := a.match(tt.host, tt.port)
		if allowed != tt.allowed || explicit != tt.explicit {
			t.Errorf("match(%s, %s) = %v, %v; want %v, %v", tt.host, tt.port, allowed, explicit, tt.allowed, tt.explicit)
		}
	}
}

func TestIsNonPublic(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "0.0.0.0": true, "100.64.0.1": true, "::1": true, "fe80::1": true,
		"fc00::1": true, "::ffff:127.0.0.1": true, "224.0.0.1": true,
		"8.8.8.8": false, "1.1.1.1": false, "2606:4700::1111": false,
	}
	for ip, want := range tests {
		if got := isNonPublic(netip.MustParseAddr(ip)); got != want {
			t.Errorf("isNonPublic(%s) = %v, want %v", ip, got, want)
		}
	}
}
