//go:build wasip1

// Command noop is a minimal Portico Wasm plugin for measuring call overhead:
// noop echoes its input with go-pdk alone; handle runs a no-op action through
// pdk/wasm.Handle (JSON both ways).
package main

import (
	"context"

	extism "github.com/extism/go-pdk"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

//go:wasmexport noop
func noop() int32 {
	extism.Output(extism.Input())
	return 0
}

//go:wasmexport act
func act() int32 {
	return wasm.Handle(func(context.Context, pdk.ActRequest) (*pdk.ActResult, error) {
		return &pdk.ActResult{}, nil
	})
}

func main() {}
