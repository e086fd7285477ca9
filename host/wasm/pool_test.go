package wasm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

func TestPool(t *testing.T) {
	sb := host.Sandbox{Concurrency: 2, Timeout: 300 * time.Millisecond}
	p := load(t, hostilePkg, sb, host.NewServices("pool", sb, host.Deps{}))
	ctx := context.Background()

	// Concurrent calls share at most two instances.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := p.Instances(); n < 1 || n > 2 {
		t.Errorf("%d idle instances, want 1..2", n)
	}

	// While both slots loop, a caller waits for a slot only as long as its context allows.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = p.Act(ctx, pdk.ActRequest{Action: "loop"})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := p.Act(short, pdk.ActRequest{Action: "noop"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a slot: err = %v, want DeadlineExceeded", err)
	}
	wg.Wait()
	// The looping instances were discarded; new ones serve.
	if _, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); err != nil {
		t.Errorf("after timeouts: %v", err)
	}

	// A caller's cancellation stops the call and discards the instance too.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := p.Act(cctx, pdk.ActRequest{Action: "loop"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: err = %v, want Canceled", err)
	}

	if _, err := p.Resync(ctx, pdk.ResyncRequest{}); !errors.Is(err, host.ErrUnsupported) {
		t.Errorf("missing export: err = %v, want ErrUnsupported", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); !errors.Is(err, host.ErrClosed) {
		t.Errorf("after close: err = %v, want ErrClosed", err)
	}
}

func TestLoadErrors(t *testing.T) {
	e := sharedEngine(t)
	ctx := context.Background()
	if _, err := e.Load(ctx, []byte("not wasm"), host.Sandbox{}, nil); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := e.Load(ctx, nil, host.Sandbox{MemoryMiB: 4}, nil); err == nil {
		t.Error("4 MiB accepted")
	}
}

// TestUninterruptible: without termination checks a late call still fails at
// its timeout, and the still-running guest keeps its slot until it returns.
func TestUninterruptible(t *testing.T) {
	sb := host.Sandbox{Concurrency: 1, Timeout: 200 * time.Millisecond}
	p := load(t, hostilePkg, sb, host.NewServices("u", sb, host.Deps{}), wasm.Uninterruptible())
	ctx := context.Background()

	start := time.Now()
	_, err := p.Act(ctx, pdk.ActRequest{Action: "spin"})
	if !errors.Is(err, host.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("timeout took %s", d)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Act(short, pdk.ActRequest{Action: "noop"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("while the guest spins: err = %v, want to wait for the slot", err)
	}
	long, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if r, err := p.Act(long, pdk.ActRequest{Action: "noop"}); err != nil || r.Message != "ok" {
		t.Errorf("after the guest returned: %v, %v", r, err)
	}
}
