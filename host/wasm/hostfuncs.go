package wasm

import (
	"context"
	"fmt"

	extism "github.com/extism/go-sdk"

	"github.com/portico-dev/portico/pdk"
)

// hostFunctions exposes h to the guest as extism:host/user portico_* functions:
// each takes the offset of a JSON input and returns the offset of its output.
// A nil h yields functions that all fail with pdk.ErrNoHost.
func hostFunctions(h pdk.Host) []extism.HostFunction {
	if h == nil {
		h = pdk.HostFrom(context.Background())
	}
	fns := make([]extism.HostFunction, 0, len(pdk.HostFunctions))
	for _, name := range pdk.HostFunctions {
		fn := extism.NewHostFunctionWithStack(name, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			in, err := p.ReadBytes(stack[0])
			if err != nil {
				panic(fmt.Errorf("%s: read input: %w", name, err))
			}
			inst, _ := ctx.Value(instanceKey{}).(*instance)
			if inst != nil && inst.bulk != nil {
				if in, err = inst.bulk.receive(in); err != nil {
					panic(fmt.Errorf("%s: %w", name, err))
				}
			}
			out, err := pdk.ServeHost(ctx, h, name, in)
			if err != nil {
				panic(fmt.Errorf("%s: %w", name, err))
			}
			if inst != nil && inst.bulk != nil {
				out = inst.bulk.give(out)
			}
			off, err := p.WriteBytes(out)
			if err != nil {
				panic(fmt.Errorf("%s: write output: %w", name, err))
			}
			stack[0] = off
		}, []extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		fn.SetNamespace("extism:host/user")
		fns = append(fns, fn)
	}
	return fns
}
