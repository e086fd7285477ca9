package wasm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/pdk"
)

// BenchmarkExampleResyncPage measures one resync call of the example plugin
// returning a page of 1,000 items (HTTP through the host, JSON both ways).
func BenchmarkExampleResyncPage(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			api := plugintest.NewAPI(b, 1000)
			sb := api.Sandbox()
			svc := host.NewServices("bench", sb, host.Deps{KV: host.NewMemoryKV()})
			p := load(b, examplePkg, sb, svc, m.opts...)
			ctx := context.Background()
			cfg := json.RawMessage(fmt.Sprintf(`{"baseUrl": %q, "pageSize": 1000}`, api.URL))
			plugintest.Time(b, func() error {
				page, err := p.Resync(ctx, pdk.ResyncRequest{Kind: "item", Config: cfg})
				if err == nil && len(page.Items) != 1000 {
					err = fmt.Errorf("%d items", len(page.Items))
				}
				return err
			})
		})
	}
}
