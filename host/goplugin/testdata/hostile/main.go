// Command hostile is a go-plugin integration that misbehaves on purpose.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/rpc"
)

type hostile struct{}

func (hostile) Info(context.Context) (*pdk.Info, error) {
	return &pdk.Info{Name: "hostile", Version: "0.0.1", Kinds: []pdk.Kind{{Kind: "x"}}}, nil
}

func (hostile) Resync(context.Context, pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	return nil, errors.New("no")
}

func (hostile) Webhook(context.Context, pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	return nil, errors.New("no")
}

var sink int

func (hostile) Act(_ context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	switch req.Action {
	case "noop":
		return &pdk.ActResult{Message: fmt.Sprintf("ok from %d", os.Getpid())}, nil
	case "loop": // ignores its context
		for i := 0; ; i++ {
			sink = i
		}
	case "panic":
		panic("hostile panic")
	case "crash":
		go panic("hostile panic in a goroutine")
		time.Sleep(time.Second)
	case "exit":
		os.Exit(3)
	case "env":
		if v, ok := os.LookupEnv("PORTICO_HOSTILE_SECRET"); ok {
			return &pdk.ActResult{Message: v}, nil
		}
		return nil, errors.New("env PORTICO_HOSTILE_SECRET: not set")
	case "environ": // what a plugin can learn of its surroundings
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(map[string]any{"env": os.Environ(), "cwd": wd})
		return &pdk.ActResult{Outputs: out}, err
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

func main() { rpc.Serve(hostile{}) }
