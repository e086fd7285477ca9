package wasm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

const (
	examplePkg = "./plugins/example"
	hostilePkg = "./host/wasm/testdata/hostile"
	noopPkg    = "./host/wasm/testdata/noop"
)

var (
	engineOnce sync.Once
	engine     *wasm.Engine
)

// sharedEngine returns one Engine (and compilation cache) per test binary.
func sharedEngine(t testing.TB) *wasm.Engine {
	engineOnce.Do(func() {
		var err error
		if engine, err = wasm.NewEngine(plugintest.CacheDir()); err != nil {
			t.Fatal(err)
		}
	})
	return engine
}

func load(t testing.TB, pkg string, sb host.Sandbox, h pdk.Host, opts ...wasm.LoadOption) *wasm.Plugin {
	t.Helper()
	p, err := sharedEngine(t).Load(context.Background(), plugintest.Wasm(t, pkg), sb, h, opts...)
	if err != nil {
		t.Fatalf("load %s: %v", pkg, err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func loadExample(t testing.TB, api *plugintest.API) (*wasm.Plugin, *host.Services) {
	t.Helper()
	sb := api.Sandbox()
	svc := host.NewServices("example-test", sb, host.Deps{KV: host.NewMemoryKV()})
	return load(t, examplePkg, sb, svc), svc
}

func TestExample(t *testing.T) {
	api := plugintest.NewAPI(t, 20)
	p, _ := loadExample(t, api)
	ctx := context.Background()
	got := plugintest.Script(ctx, p, api.Config())
	for _, l := range got {
		t.Log(l)
	}
	want := map[string]string{ // prefix of a transcript line → substring it must contain
		"info":                  `"name":"example"`,
		"resync-unknown-kind":   `plugin error: unknown kind "nope"`,
		"webhook":               `"upserts":[{"kind":"item"`,
		"webhook-bad-signature": "plugin error: signature mismatch",
		"act-rename":            `"name":"Shiny"`,
		"act-check-connection":  `\"authenticated\":true`,
		"act-explode":           `plugin error: unknown action "explode"`,
	}
	for prefix, sub := range want {
		found := false
		for _, l := range got {
			if strings.HasPrefix(l, prefix+" ") && strings.Contains(l, sub) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %q line containing %q", prefix, sub)
		}
	}
	var items int
	for _, l := range got {
		if strings.HasPrefix(l, "resync {") {
			var page pdk.ResyncPage
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "resync ")), &page); err != nil {
				t.Fatal(err)
			}
			items += len(page.Items)
		}
	}
	if items != 20 {
		t.Errorf("resync returned %d items over all pages, want 20", items)
	}
	for _, l := range got {
		if strings.Contains(l, plugintest.APIToken) || strings.Contains(l, plugintest.WebhookSecret) {
			t.Errorf("a secret reached the plugin: %s", l)
		}
	}
	for _, a := range api.Auths() {
		if a != "Bearer "+plugintest.APIToken {
			t.Errorf("API got Authorization %q, want the injected token", a)
		}
	}
}

func TestHostile(t *testing.T) {
	forbidden := plugintest.NewAPI(t, 1) // must never be reached
	api := plugintest.NewAPI(t, 50)
	redirector := plugintest.NewRedirector(t, forbidden.URL+"/items")
	toMetadata := plugintest.NewRedirector(t, "http://169.254.169.254/latest/meta-data/")
	_, forbiddenPort, _ := strings.Cut(forbidden.HostPort(), ":")
	toLocalhost := plugintest.NewRedirector(t, "http://localhost:"+forbiddenPort+"/items")
	// Even entries naming them, and the private-networks opt-in, do not
	// open link-local addresses; a name is not a loopback literal.
	lenient := func(hosts ...string) host.Sandbox {
		return host.Sandbox{AllowedHosts: append(hosts, "169.254.169.254", "localhost"), AllowPrivateNetworks: true}
	}
	good, _ := loadExample(t, api)

	tests := []struct {
		action string
		input  string
		sb     host.Sandbox
		want   error  // errors.Is target, or nil for a *host.PluginError
		text   string // substring of the error
	}{
		// The timeout also bounds each new instance's start (Load's, and the
		// noop's after the loop): short enough to be reached soon, long
		// enough for a start on a loaded machine (1 s was not).
		{action: "loop", sb: host.Sandbox{Timeout: 5 * time.Second}, want: host.ErrTimeout, text: "timed out"},
		{action: "alloc", sb: host.Sandbox{MemoryMiB: 64}, want: host.ErrCrashed, text: "out of memory"},
		{action: "panic", want: host.ErrCrashed, text: "panic: hostile panic"},
		{action: "exit", want: host.ErrCrashed, text: "exit code 3"},
		{action: "http", input: redirector.URL, sb: host.Sandbox{AllowedHosts: []string{redirector.HostPort()}},
			text: "redirect to " + forbidden.URL + "/items: host not allowed"},
		{action: "http", input: forbidden.URL, sb: host.Sandbox{AllowedHosts: []string{"*.example.com"}},
			text: "host not allowed: " + forbidden.HostPort()},
		{action: "extism-http", input: forbidden.URL, sb: host.Sandbox{AllowedHosts: []string{forbidden.HostPort()}},
			want: host.ErrCrashed, text: "is not allowed"},
		{action: "http", input: "http://169.254.169.254/latest/meta-data/", sb: lenient(),
			text: "169.254.169.254 is a link-local address"},
		{action: "http", input: toMetadata.URL, sb: lenient(toMetadata.HostPort()),
			text: "redirect to http://169.254.169.254/latest/meta-data/: host not allowed: address refused: 169.254.169.254 is a link-local address"},
		{action: "http", input: toLocalhost.URL, sb: host.Sandbox{AllowedHosts: []string{toLocalhost.HostPort(), "localhost"}},
			text: "localhost: address refused"},
		{action: "readfile", text: "open /etc/passwd"},
		{action: "env", input: "PORTICO_HOSTILE_SECRET", text: "env PORTICO_HOSTILE_SECRET: not set"},
	}
	t.Setenv("PORTICO_HOSTILE_SECRET", "leaked")
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.input, func(t *testing.T) {
			sb := tt.sb
			sb.Concurrency = 1
			p := load(t, hostilePkg, sb, host.NewServices("hostile", sb, host.Deps{}))
			ctx := context.Background()

			// Good calls keep succeeding on another integration meanwhile.
			stop := make(chan struct{})
			var goodCalls, goodErrs atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := good.Resync(ctx, pdk.ResyncRequest{Kind: "item", Config: api.Config()}); err != nil {
						t.Errorf("good call failed: %v", err)
						goodErrs.Add(1)
					}
					goodCalls.Add(1)
				}
			}()
			_, err := p.Act(ctx, pdk.ActRequest{Action: tt.action, Inputs: input(tt.input)})
			// A hostile call that fails at once may beat the first good
			// one: the other integration must still serve after it.
			waitFor(t, "a good call", func() bool { return goodCalls.Load() > 0 })
			close(stop)
			wg.Wait()

			if err == nil {
				t.Fatalf("hostile %s succeeded", tt.action)
			}
			t.Logf("error: %v (meanwhile %d good calls)", err, goodCalls.Load())
			var pe *host.PluginError
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("error %v, want %v", err, tt.want)
			case tt.want == nil && !errors.As(err, &pe):
				t.Errorf("error %T %v, want a *host.PluginError", err, err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
			// The same integration still serves: a broken instance was replaced.
			if r, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); err != nil || r.Message != "ok" {
				t.Errorf("noop after %s: %v, %v", tt.action, r, err)
			}
		})
	}
	if n := len(forbidden.Auths()); n != 0 {
		t.Errorf("forbidden host got %d requests", n)
	}
}

func input(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(map[string]string{"url": s})
	return b
}

// TestPrecompileFillsTheCache proves what the race-detector tests rely on
// (plugintest precompiles in a process without the race detector): after
// Precompile, loading the module in either form, with any memory limit,
// from an engine over the same directory compiles nothing new.
func TestPrecompileFillsTheCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := plugintest.WasmPath(t, noopPkg)
	entries := func() int {
		var n int
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	plugintest.Precompile(t, dir, path)
	precompiled := entries()
	if precompiled < 2 {
		t.Fatalf("precompile left %d cache entries, want the module in both forms", precompiled)
	}
	e, err := wasm.NewEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	module, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]wasm.LoadOption{nil, {wasm.Uninterruptible()}} {
		p, err := e.Load(ctx, module, host.Sandbox{MemoryMiB: 48}, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_ = p.Close(ctx)
	}
	if n := entries(); n != precompiled {
		t.Errorf("loading compiled again: %d cache entries, %d after precompiling", n, precompiled)
	}
}
