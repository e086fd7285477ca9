//go:build wasip1

// Command badschema declares a config schema and an action inputs schema
// that are not valid JSON Schemas: publishing it must fail.
package main

import (
	"context"
	"encoding/json"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

func info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{
		Name: "badschema", Version: "0.1.0", Kinds: []pdk.Kind{{Kind: "item"}},
		Config:  json.RawMessage(`{"type": "objekt", "properties": {"baseUrl": {"type": "string"}}}`),
		Actions: []pdk.Action{{Name: "go", Inputs: json.RawMessage(`{"properties": {"n": {"minimum": "one"}}}`)}},
	}, nil
}

//go:wasmexport info
func infoExport() int32 { return wasm.Respond(info) }

func main() {}
