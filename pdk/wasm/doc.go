// Package wasm turns a pdk.Integration into a Wasm plugin built with standard
// Go (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared). Each export is one
// line:
//
//	//go:wasmexport resync
//	func resync() int32 { return wasm.Handle(impl.Resync) }
//
// and Host returns Portico's host functions (imported from extism:host/user).
// The package only has content when built for wasip1.
package wasm
