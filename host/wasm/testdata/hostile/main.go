//go:build wasip1

// Command hostile is a Wasm plugin that misbehaves on purpose; the host tests
// call its act export with one of the actions below and expect that one call,
// and only it, to fail.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	extism "github.com/extism/go-pdk"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/wasm"
)

var sink int

//go:wasmexport info
func info() int32 {
	return wasm.Respond(func(context.Context) (*pdk.Info, error) {
		return &pdk.Info{Name: "hostile", Version: "0.0.1", Kinds: []pdk.Kind{{Kind: "x"}}}, nil
	})
}

// act is written without wasm.Handle so that panics are not recovered.
//
//go:wasmexport act
func act() int32 {
	var req pdk.ActRequest
	if err := extism.InputJSON(&req); err != nil {
		extism.SetError(err)
		return 1
	}
	out, err := run(req)
	if err != nil {
		extism.SetError(err)
		return 1
	}
	b, _ := json.Marshal(out)
	extism.Output(b)
	return 0
}

func run(req pdk.ActRequest) (*pdk.ActResult, error) {
	var in struct {
		URL string `json:"url"`
		For string `json:"for"` // how long "spin" lasts
	}
	_ = json.Unmarshal(req.Inputs, &in)
	switch req.Action {
	case "noop":
		return &pdk.ActResult{Message: "ok"}, nil
	case "loop":
		for i := 0; ; i++ {
			sink = i
		}
	case "spin": // runs for in.For without any termination check: short busy
		// loops between 10 ms naps (WASI sleeps, which nothing interrupts
		// either), so that it outlasts its timeout without taking a core
		d, err := time.ParseDuration(in.For)
		if err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for i := range 100_000 {
				sink = i
			}
		}
		return &pdk.ActResult{Message: "done"}, nil
	case "alloc":
		b := make([]byte, 1<<30) // 1 GiB
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = int(b[len(b)-1])
		return &pdk.ActResult{Message: "allocated 1 GiB"}, nil
	case "panic":
		panic("hostile panic")
	case "exit":
		os.Exit(3)
	case "http":
		resp, err := wasm.Host().HTTP(wasm.Context(), pdk.HTTPRequest{URL: in.URL})
		if err != nil {
			return nil, err
		}
		return &pdk.ActResult{Message: fmt.Sprintf("status %d: %s", resp.Status, resp.Body)}, nil
	case "extism-http": // Extism's own HTTP function, which Portico leaves without an allowlist
		resp := extism.NewHTTPRequest(extism.MethodGet, in.URL).Send()
		return &pdk.ActResult{Message: fmt.Sprintf("status %d: %s", resp.Status(), resp.Body())}, nil
	case "readfile":
		for _, path := range []string{"/etc/passwd", "/etc/hostname", "go.mod"} {
			if b, err := os.ReadFile(path); err == nil {
				return &pdk.ActResult{Message: string(b)}, nil
			}
		}
		_, err := os.ReadFile("/etc/passwd")
		return nil, err
	case "env":
		if v, ok := os.LookupEnv(in.URL); ok {
			return &pdk.ActResult{Message: v}, nil
		}
		if env := os.Environ(); len(env) > 0 {
			return &pdk.ActResult{Message: fmt.Sprint(env)}, nil
		}
		return nil, errors.New("env " + in.URL + ": not set")
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

func main() {}
