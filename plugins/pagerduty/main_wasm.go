//go:build wasip1

package main

import "github.com/portico-dev/portico/pdk/wasm"

var impl PagerDuty

//go:wasmexport info
func info() int32 { return wasm.Respond(impl.Info) }

//go:wasmexport resync
func resync() int32 { return wasm.Handle(impl.Resync) }

//go:wasmexport webhook
func webhook() int32 { return wasm.Handle(impl.Webhook) }

//go:wasmexport act
func act() int32 { return wasm.Handle(impl.Act) }

func main() {}
