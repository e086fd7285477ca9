package egress

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		ip   string
		want Class
		what string
	}{
		{"8.8.8.8", Public, ""},
		{"2606:4700::1111", Public, ""},
		{"64:ff9b::808:808", Private, "NAT64"}, // the NAT64 gateway is on our network
		{"127.0.0.1", Private, "loopback"},
		{"::1", Private, "loopback"},
		{"::ffff:127.0.0.1", Private, "loopback"},
		{"10.1.2.3", Private, "private"},
		{"172.16.0.1", Private, "private"},
		{"192.168.1.1", Private, "private"},
		{"fc00::1", Private, "private"},
		{"100.64.0.1", Private, "private"},
		{"198.18.0.1", Private, "private"},
		{"169.254.169.254", Forbidden, "link-local"},
		{"::ffff:169.254.169.254", Forbidden, "link-local"},
		{"64:ff9b::a9fe:a9fe", Forbidden, "link-local"}, // NAT64 of the metadata address
		{"fe80::1", Forbidden, "link-local"},
		{"fe80::1%eth0", Forbidden, "link-local"},
		{"0.0.0.0", Forbidden, "unspecified"},
		{"0.1.2.3", Forbidden, "unspecified"},
		{"::", Forbidden, "unspecified"},
		{"224.0.0.1", Forbidden, "multicast"},
		{"ff02::1", Forbidden, "multicast"},
		{"255.255.255.255", Forbidden, "reserved"},
		{"240.0.0.1", Forbidden, "reserved"},
	}
	for _, tt := range tests {
		c, what := Classify(netip.MustParseAddr(tt.ip))
		if c != tt.want || what != tt.what {
			t.Errorf("Classify(%s) = %v %q, want %v %q", tt.ip, c, what, tt.want, tt.what)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		ip           string
		allowPrivate bool
		wantErr      string
	}{
		{"1.1.1.1", false, ""},
		{"127.0.0.1", true, ""},
		{"127.0.0.1", false, "127.0.0.1 is a loopback address"},
		{"169.254.169.254", true, "169.254.169.254 is a link-local address"},
		{"fe80::1", true, "fe80::1 is a link-local address"},
	}
	for _, tt := range tests {
		err := Check(netip.MustParseAddr(tt.ip), tt.allowPrivate)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Check(%s, %v) = %v", tt.ip, tt.allowPrivate, err)
			}
			continue
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Check(%s, %v) = %v, want %q", tt.ip, tt.allowPrivate, err, tt.wantErr)
		}
	}
}

// TestControlRefusesBeforeConnecting dials the metadata address through a
// guarded dialer: the refusal comes from Control, not from the network.
func TestControlRefusesBeforeConnecting(t *testing.T) {
	d := net.Dialer{Control: Control(true)}
	_, err := d.Dial("tcp", "169.254.169.254:80")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("dial metadata: %v, want a link-local refusal", err)
	}
}
