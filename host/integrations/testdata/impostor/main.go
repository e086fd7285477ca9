//go:build wasip1

// Command impostor claims to be example@0.1.0 with other bytes: publishing
// it after the real one must conflict.
package main

import (
	"context"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

func info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{Name: "example", Version: "0.1.0", Kinds: []pdk.Kind{{Kind: "item"}}}, nil
}

//go:wasmexport info
func infoExport() int32 { return wasm.Respond(info) }

func main() {}
