package integrations_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portico-dev/portico/core/api"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/internal/plugintest"
)

// TestWebhookFloodHoldsNoBuckets delivers webhooks to 2,000 made-up
// installation ids over the API (its per-address limit off, so every one
// reaches the manager) and asserts each is a 404 and no rate-limit bucket
// was allocated; a real installation's bucket is freed when it is deleted.
func TestWebhookFloodHoldsNoBuckets(t *testing.T) {
	p := newPortal(t, nil, integrations.Options{})
	stand := newStandIn(t, 3)
	p.publish(examplePkg)
	p.install("items", "example", stand, nil)
	srv := httptest.NewServer(api.New(api.Config{Catalog: p.cat, Auth: api.AdminToken(token), Integrations: p.mgr, ClientRate: -1}))
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 8

	const n = 2_000 // one leaked bucket fails the test; more requests prove no more
	var next, wrong atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				res, err := client.Post(fmt.Sprintf("%s/api/v1/integrations/random-%d/webhook", srv.URL, i), "application/json", bytes.NewReader([]byte(`{"event": "item.created"}`)))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() > 0 {
		t.Errorf("%d of %d deliveries to unknown ids were not answered 404", wrong.Load(), n)
	}
	if b := p.mgr.WebhookBuckets(); b != 0 {
		t.Fatalf("%d rate-limit buckets after %d deliveries to unknown ids", b, n)
	}

	body := []byte(`{"event": "item.created", "item": {"id": "hooked", "name": "Hooked", "status": "new", "size": 1}}`)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/integrations/items/webhook", bytes.NewReader(body))
	req.Header.Set("X-Example-Signature", "sha256="+plugintest.Sign(body, plugintest.WebhookSecret))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || p.mgr.WebhookBuckets() != 1 {
		t.Fatalf("signed delivery: %d, %d buckets", res.StatusCode, p.mgr.WebhookBuckets())
	}
	p.must(http.StatusOK, "DELETE", "/api/v1/integrations/items", nil)
	if b := p.mgr.WebhookBuckets(); b != 0 {
		t.Errorf("%d buckets after the installation was deleted", b)
	}
}

// TestVerifiedWebhooksSpendNoAddressBudget sends many signed deliveries
// from one address with a tiny per-address budget: every one is served
// (the signature vouches for them), while unsigned ones from the same
// address are refused with 429 once the budget is spent.
func TestVerifiedWebhooksSpendNoAddressBudget(t *testing.T) {
	const burst = 5
	p := newPortal(t, nil, integrations.Options{WebhookRate: 1000, WebhookBurst: 1000})
	stand := newStandIn(t, 3)
	p.publish(examplePkg)
	p.install("items", "example", stand, nil)
	srv := httptest.NewServer(api.New(api.Config{Catalog: p.cat, Auth: api.AdminToken(token), Integrations: p.mgr, ClientRate: 0.001, ClientBurst: burst}))
	t.Cleanup(srv.Close)
	deliver := func(i int, signed bool) int {
		body := fmt.Appendf(nil, `{"event": "item.created", "item": {"id": "hooked-%d", "name": "Hooked", "status": "new", "size": 1}}`, i)
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/integrations/items/webhook", bytes.NewReader(body))
		if signed {
			req.Header.Set("X-Example-Signature", "sha256="+plugintest.Sign(body, plugintest.WebhookSecret))
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 4 * burst {
		if status := deliver(i, true); status != http.StatusOK {
			t.Fatalf("signed delivery %d: %d", i, status)
		}
	}
	refused := 0
	for i := range 2 * burst {
		switch status := deliver(i, false); status {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("unsigned delivery %d: %d", i, status)
		}
	}
	if refused == 0 || refused > burst+1 {
		t.Errorf("%d of %d unsigned deliveries refused with a budget of %d", refused, 2*burst, burst)
	}
}
