package wasm_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

func TestPool(t *testing.T) {
	// A generous timeout: a no-op call never reaches it, however loaded the
	// machine; loops are ended by their callers here (TestHostile covers
	// the timeout).
	sb := host.Sandbox{Concurrency: 2, Timeout: time.Minute}
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

	// While both slots loop, a caller waits for a slot only as long as its
	// context allows.
	loopCtx, stopLoops := context.WithCancel(ctx)
	loopErrs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := p.Act(loopCtx, pdk.ActRequest{Action: "loop"})
			loopErrs <- err
		}()
	}
	waitFor(t, "both slots to loop", func() bool { return p.Busy() == 2 })
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := p.Act(short, pdk.ActRequest{Action: "noop"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a slot: err = %v, want DeadlineExceeded", err)
	}

	// The callers' cancellation stops the loops and discards their
	// instances; new ones serve.
	stopLoops()
	for range 2 {
		if err := <-loopErrs; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled loop: err = %v, want Canceled", err)
		}
	}
	if n := p.Instances(); n != 0 {
		t.Errorf("%d idle instances after both were cancelled mid-call, want 0", n)
	}
	if _, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); err != nil {
		t.Errorf("after cancellations: %v", err)
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

// waitFor polls cond until it holds, failing t after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
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
// The timeout also bounds the no-op call that follows (and the start of its
// new instance), so it is generous for a loaded machine; the guest outlasts
// it by 10 s, ample time to look at the slot it holds.
func TestUninterruptible(t *testing.T) {
	sb := host.Sandbox{Concurrency: 1, Timeout: 5 * time.Second}
	p := load(t, hostilePkg, sb, host.NewServices("u", sb, host.Deps{}), wasm.Uninterruptible())
	ctx := context.Background()

	_, err := p.Act(ctx, pdk.ActRequest{Action: "spin", Inputs: json.RawMessage(`{"for":"15s"}`)})
	if !errors.Is(err, host.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if p.Busy() != 1 {
		t.Fatalf("the call returned at its timeout but the guest holds no slot (busy %d)", p.Busy())
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Act(short, pdk.ActRequest{Action: "noop"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("while the guest spins: err = %v, want to wait for the slot", err)
	}
	long, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if r, err := p.Act(long, pdk.ActRequest{Action: "noop"}); err != nil || r.Message != "ok" {
		t.Errorf("after the guest returned: %v, %v", r, err)
	}
}
