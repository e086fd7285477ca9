package integrations_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/internal/plugintest"
)

// TestPrivateNetworksOptIn installs the example plugin against an API known
// by a name that resolves to 127.0.0.1 ("localhost", as a name the plugin
// author's DNS points at the portal would): allowed exactly, it is still
// refused until the installation opts in to private networks.
func TestPrivateNetworksOptIn(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	api := newStandIn(t, 10)
	p.must(http.StatusCreated, "POST", "/api/v1/plugins", plugintest.Wasm(t, examplePkg), "Content-Type", "application/wasm")
	_, port, _ := strings.Cut(api.hostPort(), ":")
	byName := "localhost:" + port
	spec := map[string]any{
		"config":       map[string]any{"baseUrl": "http://" + byName, "pageSize": 7},
		"auth":         []map[string]any{{"hosts": []string{byName}, "header": "Authorization", "template": "Bearer {{apiToken}}"}},
		"allowedHosts": []string{byName},
	}

	st := p.install("named", "example", api, spec)
	if st.AllowPrivateNetworks {
		t.Fatal("allowPrivateNetworks defaults to true")
	}
	s := p.resync("named")
	if s.Status != integrations.SyncFailed || len(s.Errors) == 0 || !strings.Contains(s.Errors[0].Message, "is a loopback address") {
		t.Fatalf("resync through a name resolving to loopback: %+v", s)
	}
	api.mu.Lock()
	reached := api.requests
	api.mu.Unlock()
	if reached != 0 {
		t.Fatalf("the API was reached %d times", reached)
	}

	spec["allowPrivateNetworks"] = true
	if st := p.install("named", "example", api, spec); !st.AllowPrivateNetworks {
		t.Fatalf("status after opting in: %+v", st)
	}
	if s := p.resync("named"); s.Status != integrations.SyncSucceeded || s.Upserts != 10 {
		t.Fatalf("resync with the opt-in: %+v", s)
	}

	// An IP literal ("127.0.0.1:port") needs no opt-in: every other test
	// installs that way.
}
