package host

import "testing"

func TestAllowlistMatch(t *testing.T) {
	a := parseAllowlist([]string{"api.example.com", "127.0.0.1:8080", "*.pagerduty.com", "[::1]:9000", " Localhost "})
	tests := []struct {
		host, port       string
		allowed, literal bool
	}{
		{"api.example.com", "443", true, false},  // a name: never literal
		{"API.example.com", "8443", true, false}, // no port in the entry: any port
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
		{"localhost", "1234", true, false}, // allowed, but a name: no private addresses
	}
	for _, tt := range tests {
		allowed, literal := a.match(tt.host, tt.port)
		if allowed != tt.allowed || literal != tt.literal {
			t.Errorf("match(%s, %s) = %v, %v; want %v, %v", tt.host, tt.port, allowed, literal, tt.allowed, tt.literal)
		}
	}
}
