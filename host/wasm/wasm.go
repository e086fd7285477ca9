// Package wasm runs Portico integrations compiled to WebAssembly with Extism
// on wazero. A module is compiled once per installation (through a shared,
// optionally on-disk compilation cache) and called through a bounded pool of
// instances; an instance that timed out, trapped or exited is discarded and
// replaced. Instances get real clocks and randomness but no filesystem, no
// environment and no network except Portico's own host functions.
package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/pdk"
)

// Engine compiles modules; all modules share its compilation cache.
type Engine struct {
	cache wazero.CompilationCache
}

// NewEngine returns an Engine caching compiled code in memory and, when
// cacheDir is not empty, on disk (which survives restarts).
func NewEngine(cacheDir string) (*Engine, error) {
	if cacheDir == "" {
		return &Engine{cache: wazero.NewCompilationCache()}, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("wasm: compilation cache: %w", err)
	}
	return &Engine{cache: c}, nil
}

// Close releases the compilation cache; close every Plugin first.
func (e *Engine) Close(ctx context.Context) error { return e.cache.Close(ctx) }

// pluginConfig is how every module runs: WASI, the engine's cache, calls
// interrupted by their context unless uninterruptible, memory capped at
// pages.
func (e *Engine) pluginConfig(pages uint32, uninterruptible bool) extism.PluginConfig {
	return extism.PluginConfig{
		EnableWasi: true,
		RuntimeConfig: wazero.NewRuntimeConfig().
			WithCompilationCache(e.cache).
			WithCloseOnContextDone(!uninterruptible).
			WithMemoryLimitPages(pages),
	}
}

// Precompile compiles module into the engine's compilation cache, in both
// its interruptible and its uninterruptible form, without instantiating
// it: a later Load of the same bytes, by this process or another sharing
// the cache directory, skips the compiler. (The cache is keyed by the
// module's bytes and that form, not by the memory limit.)
func (e *Engine) Precompile(ctx context.Context, module []byte) error {
	manifest := extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: module}}}
	for _, uninterruptible := range []bool{false, true} {
		compiled, err := extism.NewCompiledPlugin(ctx, manifest, e.pluginConfig(minMemoryMiB*16, uninterruptible), hostFunctions(nil))
		if err != nil {
			return fmt.Errorf("wasm: compile: %w", err)
		}
		if err := compiled.Close(ctx); err != nil {
			return fmt.Errorf("wasm: compile: %w", err)
		}
	}
	return nil
}

// minMemoryMiB is what a standard Go guest needs to start (94 pages).
const minMemoryMiB = 7

// maxVarBytes caps Extism's built-in per-instance variables (unused by the ABI).
const maxVarBytes = 64 << 10

// Plugin is a compiled module bound to one installation: its sandbox and its
// host functions. It implements host.Integration.
type Plugin struct {
	host.Calls // Info, Resync, Webhook, Act over Call

	compiled *extism.CompiledPlugin
	sandbox  host.Sandbox
	slots    chan struct{} // one token per concurrent call
	exports  map[string]bool
	// uninterruptible: compiled without termination checks (see Uninterruptible).
	uninterruptible bool

	mu     sync.Mutex
	idle   []*instance
	closed bool
}

var _ host.Integration = (*Plugin)(nil)

// LoadOption changes how Load compiles a module.
type LoadOption func(*loadOptions)

type loadOptions struct{ uninterruptible, warm bool }

// Warm fills the instance pool up to the concurrency limit in the
// background after Load, so that the first burst of calls (a webhook
// flood) does not wait for instantiations.
func Warm() LoadOption { return func(o *loadOptions) { o.warm = true } }

// Uninterruptible compiles the module without wazero's termination checks.
// Those checks exit from compiled code to Go at every loop iteration, which
// makes Go guests 3–5× slower. Without them a call that runs past its
// timeout still fails with host.ErrTimeout at once, but the guest keeps
// running until it returns on its own, holding its concurrency slot; a guest
// that never returns keeps a CPU busy until the process exits. Use it only
// for first-party plugins.
func Uninterruptible() LoadOption { return func(o *loadOptions) { o.uninterruptible = true } }

// Load compiles module and returns a Plugin for an installation with sandbox
// sb whose host functions are h. It instantiates one instance eagerly, so a
// module that cannot start under sb fails here.
func (e *Engine) Load(ctx context.Context, module []byte, sb host.Sandbox, h pdk.Host, opts ...LoadOption) (*Plugin, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	sb = sb.WithDefaults()
	if sb.MemoryMiB < minMemoryMiB {
		return nil, fmt.Errorf("wasm: memory limit %d MiB is below the %d MiB a Go guest needs", sb.MemoryMiB, minMemoryMiB)
	}
	pages := uint32(sb.MemoryMiB) * 16 // 64 KiB pages
	manifest := extism.Manifest{
		Wasm:   []extism.Wasm{extism.WasmData{Data: module}},
		Memory: &extism.ManifestMemory{MaxPages: pages, MaxVarBytes: maxVarBytes},
	}
	compiled, err := extism.NewCompiledPlugin(ctx, manifest, e.pluginConfig(pages, o.uninterruptible), hostFunctions(h))
	if err != nil {
		return nil, fmt.Errorf("wasm: compile: %w", err)
	}
	p := &Plugin{compiled: compiled, sandbox: sb, slots: make(chan struct{}, sb.Concurrency), uninterruptible: o.uninterruptible}
	p.Calls = host.Calls{Caller: p}
	inst, err := p.newInstance(ctx)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	p.exports = map[string]bool{}
	for name := range inst.plugin.Module().ExportedFunctions() {
		p.exports[name] = true
	}
	p.idle = append(p.idle, inst)
	if o.warm {
		go p.warm()
	}
	return p, nil
}

// warm instantiates idle instances until the pool could serve as many
// calls at once as the sandbox allows, or the plugin is closed. It holds a
// slot while it instantiates, so Close waits for it.
func (p *Plugin) warm() {
	for {
		select {
		case p.slots <- struct{}{}:
		default:
			return // every slot serves a call (or Close holds them all)
		}
		p.mu.Lock()
		full := p.closed || len(p.idle)+len(p.slots) > cap(p.slots)
		p.mu.Unlock()
		var err error
		if !full {
			var inst *instance
			if inst, err = p.newInstance(context.Background()); err == nil {
				p.release(inst)
			}
		}
		<-p.slots
		if full || err != nil {
			return // on an error the next call tries again, and reports why
		}
	}
}

// Call calls export with a raw input on a pooled instance, waiting for a free
// slot as long as ctx allows. It implements host.Caller.
func (p *Plugin) Call(ctx context.Context, export string, input []byte) ([]byte, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wasm: %s: wait for an instance: %w", export, ctx.Err())
	}
	slotHeld := true
	defer func() {
		if slotHeld {
			<-p.slots
		}
	}()

	if !p.exports[export] {
		return nil, fmt.Errorf("wasm: %w: %s", host.ErrUnsupported, export)
	}
	inst, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(context.WithValue(ctx, instanceKey{}, inst), p.sandbox.Timeout)
	defer cancel()
	inst.stderr.Reset()
	if inst.bulk != nil {
		inst.bulk.reset()
		input = inst.bulk.give(input)
	}
	var out []byte
	if p.uninterruptible {
		res := make(chan callResult, 1)
		go func() {
			_, out, err := inst.plugin.CallWithContext(callCtx, export, input)
			res <- callResult{out, err}
		}()
		select {
		case r := <-res:
			out, err = r.out, r.err
		case <-callCtx.Done():
			// The guest cannot be stopped: let it finish in the background,
			// still holding its slot, then drop its instance.
			slotHeld = false
			go func() {
				<-res
				inst.close()
				<-p.slots
			}()
			return nil, p.crashError(ctx, export, inst, callCtx.Err())
		}
	} else {
		_, out, err = inst.plugin.CallWithContext(callCtx, export, input)
	}
	if err == nil && inst.bulk != nil {
		if out, err = inst.bulk.receive(out); err != nil {
			inst.close()
			return nil, p.crashError(ctx, export, inst, err)
		}
	}
	if err == nil {
		p.release(inst)
		return out, nil
	}
	if cause := broken(callCtx, err); cause != nil {
		inst.close()
		return nil, p.crashError(ctx, export, inst, cause)
	}
	p.release(inst)
	return nil, &host.PluginError{Export: export, Message: err.Error()}
}

type callResult struct {
	out []byte
	err error
}

// broken returns why an instance can no longer be used after a failed call,
// or nil when the failure was an error the plugin reported itself.
func broken(callCtx context.Context, err error) error {
	var exit *sys.ExitError
	switch {
	case callCtx.Err() != nil:
		return callCtx.Err()
	case errors.As(err, &exit):
		return err
	case strings.Contains(err.Error(), "wasm stack trace"): // traps and host panics
		return err
	}
	return nil
}

func (p *Plugin) crashError(ctx context.Context, export string, inst *instance, cause error) error {
	switch {
	case ctx.Err() != nil: // the caller gave up: report that
		return fmt.Errorf("wasm: %s: %w", export, ctx.Err())
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("wasm: %s: %w after %s", export, host.ErrTimeout, p.sandbox.Timeout)
	}
	msg := firstLine(cause.Error())
	var exit *sys.ExitError
	if errors.As(cause, &exit) {
		msg = fmt.Sprintf("exit code %d", exit.ExitCode())
	}
	if tail := inst.stderr.Summary(); tail != "" {
		msg += ": " + tail
	}
	return fmt.Errorf("wasm: %s: %w: %s", export, host.ErrCrashed, msg)
}

// Close implements host.Integration: it waits for running calls, then
// releases every instance and the compiled module.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	// Take every slot: no call is running afterwards. Give them back at the
	// end so that later callers get ErrClosed instead of waiting.
	taken := 0
	defer func() {
		for ; taken > 0; taken-- {
			<-p.slots
		}
	}()
	for ; taken < cap(p.slots); taken++ {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("wasm: close: %w", ctx.Err())
		}
	}
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range idle {
		inst.close()
	}
	return p.compiled.Close(ctx)
}

func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("wasm: %w", host.ErrClosed)
	}
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	return p.newInstance(ctx)
}

func (p *Plugin) release(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		inst.close()
		return
	}
	p.idle = append(p.idle, inst)
}

// Exports reports whether the module exports name.
func (p *Plugin) Exports(name string) bool { return p.exports[name] }

// Instances reports how many instances sit idle in the pool.
func (p *Plugin) Instances() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Busy reports how many calls hold a slot: running, or (a guest that
// cannot be interrupted) finishing after their caller gave up.
func (p *Plugin) Busy() int { return len(p.slots) }

// instance is one Extism plugin instance; it serves one call at a time.
type instance struct {
	plugin *extism.Plugin
	stderr *tailBuffer
	bulk   *bulk // nil: the guest does not offer the bulk channel
}

// instanceKey carries the calling instance to the host functions.
type instanceKey struct{}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	stderr := newTailBuffer(4 << 10)
	mc := wazero.NewModuleConfig().
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStderr(stderr)
	b := &bulk{}
	mc = mc.WithStdin(&b.in).WithStdout(&b.out)
	// No WithFS, WithEnv or WithArgs: no filesystem, environment or arguments.
	ip, err := p.compiled.Instance(ctx, extism.PluginInstanceConfig{ModuleConfig: mc})
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiate: %w", err)
	}
	ip.SetLogger(func(extism.LogLevel, string) {}) // plugins log through portico_log
	inst := &instance{plugin: ip, stderr: stderr}
	if ip.FunctionExists(bulkExport) {
		// The first call also starts the guest's runtime: let it finish
		// even when the caller gives up meanwhile (the instance is pooled).
		initCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.sandbox.Timeout)
		_, _, err := ip.CallWithContext(initCtx, bulkExport, nil)
		cancel()
		if err != nil {
			inst.close()
			return nil, fmt.Errorf("wasm: %s: %w", bulkExport, err)
		}
		inst.bulk = b
	}
	return inst, nil
}

func (i *instance) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = i.plugin.Close(ctx)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
