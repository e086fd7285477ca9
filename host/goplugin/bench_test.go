package goplugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

// BenchmarkExampleActNoop measures a host.Integration call of the example's
// no-op action over go-plugin (gRPC over a Unix socket with mTLS).
func BenchmarkExampleActNoop(b *testing.B) {
	p := start(b, "./plugins/example", host.Sandbox{})
	ctx := context.Background()
	plugintest.Time(b, func() error {
		_, err := p.Act(ctx, pdk.ActRequest{Action: "noop"})
		return err
	})
}

// BenchmarkResync100 measures one resync page of 100 items (≈ 7 KB of JSON,
// fetched through portico_http from a local API) through each transport.
func BenchmarkResync100(b *testing.B) {
	api := plugintest.NewAPI(b, 100)
	cfg := json.RawMessage(fmt.Sprintf(`{"baseUrl": %q, "pageSize": 100}`, api.URL))
	ctx := context.Background()
	engine, err := wasm.NewEngine(plugintest.CacheDir())
	if err != nil {
		b.Fatal(err)
	}
	sb := api.Sandbox()
	wp, err := engine.Load(ctx, plugintest.Wasm(b, "./plugins/example"), sb,
		host.NewServices("bench", sb, host.Deps{KV: host.NewMemoryKV()}))
	if err != nil {
		b.Fatal(err)
	}
	defer wp.Close(ctx)
	fast, err := engine.Load(ctx, plugintest.Wasm(b, "./plugins/example"), sb,
		host.NewServices("bench", sb, host.Deps{KV: host.NewMemoryKV()}), wasm.Uninterruptible())
	if err != nil {
		b.Fatal(err)
	}
	defer fast.Close(ctx)
	for name, it := range map[string]host.Integration{
		"wasm": wp, "wasm-uninterruptible": fast, "goplugin": start(b, "./plugins/example", sb),
	} {
		b.Run(name, func(b *testing.B) {
			plugintest.Time(b, func() error {
				page, err := it.Resync(ctx, pdk.ResyncRequest{Kind: "item", Config: cfg})
				if err == nil && len(page.Items) != 100 {
					err = fmt.Errorf("%d items", len(page.Items))
				}
				return err
			})
		})
	}
}
