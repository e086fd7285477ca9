//go:build wasip1

package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	extism "github.com/extism/go-pdk"

	"github.com/portico-dev/portico/pdk"
)

//go:wasmimport extism:host/user portico_http
func porticoHTTP(uint64) uint64

//go:wasmimport extism:host/user portico_hmac
func porticoHMAC(uint64) uint64

//go:wasmimport extism:host/user portico_log
func porticoLog(uint64) uint64

//go:wasmimport extism:host/user portico_kv_get
func porticoKVGet(uint64) uint64

//go:wasmimport extism:host/user portico_kv_set
func porticoKVSet(uint64) uint64

//go:wasmimport extism:host/user portico_catalog_get
func porticoCatalogGet(uint64) uint64

var (
	host    = pdk.NewHostClient(callHost)
	callCtx = pdk.WithHost(context.Background(), host)
)

// Host returns Portico's host functions for the current plugin.
func Host() pdk.Host { return host }

// Context returns the context handed to Integration methods: it carries Host.
func Context() context.Context { return callCtx }

func callHost(_ context.Context, fn string, input []byte) ([]byte, error) {
	in := extism.AllocateBytes(toBulk(input))
	defer in.Free()
	var off uint64
	switch fn {
	case pdk.FnHTTP:
		off = porticoHTTP(in.Offset())
	case pdk.FnHMAC:
		off = porticoHMAC(in.Offset())
	case pdk.FnLog:
		off = porticoLog(in.Offset())
	case pdk.FnKVGet:
		off = porticoKVGet(in.Offset())
	case pdk.FnKVSet:
		off = porticoKVSet(in.Offset())
	case pdk.FnCatalogGet:
		off = porticoCatalogGet(in.Offset())
	case pdk.FnSecret:
		return nil, pdk.ErrNoSecrets // Wasm modules never see secrets
	default:
		return nil, fmt.Errorf("%w: %q", pdk.ErrUnknownFunction, fn)
	}
	if off == 0 {
		return nil, errors.New("host returned no output")
	}
	out := extism.FindMemory(off)
	defer out.Free()
	return fromBulk(out.ReadBytes())
}

// Handle runs fn as the body of an export: it decodes the JSON input into a
// Req (an empty input leaves it zero), calls fn with Context() and writes the
// JSON of its result as output. An error or a panic is reported with
// Extism's error mechanism and the export returns 1.
func Handle[Req, Resp any](fn func(context.Context, Req) (Resp, error)) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			extism.SetErrorString(fmt.Sprintf("panic: %v", r))
			rc = 1
		}
	}()
	var req Req
	in, err := fromBulk(extism.Input())
	if err != nil {
		extism.SetError(err)
		return 1
	}
	if len(in) > 0 {
		if err := pdk.DecodeInput(in, &req); err != nil {
			extism.SetError(fmt.Errorf("decode input: %w", err))
			return 1
		}
	}
	resp, err := fn(Context(), req)
	if err != nil {
		extism.SetError(err)
		return 1
	}
	out, err := pdk.EncodeOutput(resp)
	if err != nil {
		extism.SetError(fmt.Errorf("encode output: %w", err))
		return 1
	}
	extism.Output(toBulk(out))
	return 0
}

// Respond is Handle for exports without input, such as info:
//
//	//go:wasmexport info
//	func info() int32 { return wasm.Respond(impl.Info) }
func Respond[Resp any](fn func(context.Context) (Resp, error)) int32 {
	return Handle(func(ctx context.Context, _ json.RawMessage) (Resp, error) { return fn(ctx) })
}
