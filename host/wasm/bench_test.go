package wasm_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

// modes are the two ways a module can be compiled.
var modes = []struct {
	name string
	opts []wasm.LoadOption
}{{"checked", nil}, {"uninterruptible", []wasm.LoadOption{wasm.Uninterruptible()}}}

// BenchmarkNoopCall measures a call of a no-op export (go-pdk only) through
// the pool.
func BenchmarkNoopCall(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			p := load(b, noopPkg, host.Sandbox{}, host.NewServices("bench", host.Sandbox{}, host.Deps{}), m.opts...)
			ctx := context.Background()
			in := []byte(`{}`)
			plugintest.Time(b, func() error {
				_, err := p.Call(ctx, "noop", in)
				return err
			})
		})
	}
}

// BenchmarkExampleActNoop measures a full host.Integration call (JSON both
// ways, pdk/wasm.Handle) of the example's no-op action.
func BenchmarkExampleActNoop(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			p := load(b, examplePkg, host.Sandbox{}, host.NewServices("bench", host.Sandbox{}, host.Deps{}), m.opts...)
			ctx := context.Background()
			plugintest.Time(b, func() error {
				_, err := p.Act(ctx, pdk.ActRequest{Action: "noop"})
				return err
			})
		})
	}
}

// BenchmarkLoad10MB loads a 10 MB module with a warm on-disk cache, as a
// restarted portal would: a new Engine on the same cache directory, compile,
// first instance and a first info call.
func BenchmarkLoad10MB(b *testing.B) {
	module := padTo(plugintest.Wasm(b, examplePkg), 10<<20)
	dir := b.TempDir()
	ctx := context.Background()
	loadOnce := func() error {
		e, err := wasm.NewEngine(dir)
		if err != nil {
			return err
		}
		p, err := e.Load(ctx, module, host.Sandbox{}, host.NewServices("bench", host.Sandbox{}, host.Deps{}))
		if err != nil {
			return err
		}
		if _, err := p.Info(ctx); err != nil {
			return err
		}
		if err := p.Close(ctx); err != nil {
			return err
		}
		return e.Close(ctx)
	}
	start := time.Now()
	if err := loadOnce(); err != nil { // cold: fills the cache
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "cold-ms")
	b.ReportMetric(float64(len(module))/(1<<20), "MiB")
	plugintest.Time(b, loadOnce)
}

// padTo appends a custom section so that module is n bytes long (custom
// sections are ignored by the runtime but hashed, read and decoded).
func padTo(module []byte, n int) []byte {
	name := []byte("portico.padding")
	payload := n - len(module) - 1 - 5 - 1 - len(name)
	if payload < 0 {
		return module
	}
	blob := make([]byte, payload)
	_, _ = rand.Read(blob)
	size := 1 + len(name) + payload
	out := append([]byte{}, module...)
	out = append(out, 0)
	out = append(out, byte(size)|0x80, byte(size>>7)|0x80, byte(size>>14)|0x80, byte(size>>21)|0x80, byte(size>>28))
	out = append(out, byte(len(name)))
	out = append(out, name...)
	return append(out, blob...)
}

// BenchmarkHandleActNoop measures a no-op act through pdk/wasm.Handle in the
// smallest module.
func BenchmarkHandleActNoop(b *testing.B) {
	p := load(b, noopPkg, host.Sandbox{}, host.NewServices("bench", host.Sandbox{}, host.Deps{}))
	ctx := context.Background()
	plugintest.Time(b, func() error {
		_, err := p.Act(ctx, pdk.ActRequest{Action: "noop"})
		return err
	})
}
