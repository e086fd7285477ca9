package main

import "testing"

func TestLinkBase(t *testing.T) {
	tests := []struct{ publicURL, addr, want string }{
		{"", "127.0.0.1:7070", "http://127.0.0.1:7070"},
		{"", ":7070", "http://127.0.0.1:7070"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"", "[::]:8080", "http://127.0.0.1:8080"},
		{"", "portal.internal:80", "http://portal.internal:80"},
		{"https://portal.example.com/", ":7070", "https://portal.example.com"},
	}
	for _, tt := range tests {
		if got := linkBase(tt.publicURL, tt.addr); got != tt.want {
			t.Errorf("linkBase(%q, %q) = %q, want %q", tt.publicURL, tt.addr, got, tt.want)
		}
	}
}

func TestCheckPublicURL(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"", true}, {"https://portal.example.com", true}, {"http://127.0.0.1:7070/", true},
		{"portal.example.com", false}, {"ftp://portal.example.com", false}, {"https://", false},
	} {
		if err := checkPublicURL(tt.in); (err == nil) != tt.ok {
			t.Errorf("checkPublicURL(%q) = %v", tt.in, err)
		}
	}
}
