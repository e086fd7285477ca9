package goplugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/goplugin"
	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/wasm"
	"github.com/portico-dev/portico/pdk"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

func start(t testing.TB, pkg string, sb host.Sandbox) *goplugin.Plugin {
	t.Helper()
	path := plugintest.Native(t, pkg)
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logger *slog.Logger // default: the test binary's stderr
	if _, ok := t.(*testing.B); ok {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := goplugin.Start(context.Background(), goplugin.Config{
		Path: path, SHA256: goplugin.Checksum(bin), Sandbox: sb, Logger: logger,
		Host: host.NewServices("test", sb, host.Deps{KV: host.NewMemoryKV()}),
	})
	if err != nil {
		t.Fatalf("start %s: %v", pkg, err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// TestSameAsWasm runs the same script on the example plugin built as Wasm and
// as a go-plugin: the rest of Portico cannot tell them apart.
func TestSameAsWasm(t *testing.T) {
	api := plugintest.NewAPI(t, 20)
	ctx := context.Background()

	engine, err := wasm.NewEngine(plugintest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	sb := api.Sandbox()
	wp, err := engine.Load(ctx, plugintest.Wasm(t, "./plugins/example"), sb,
		host.NewServices("test", sb, host.Deps{KV: host.NewMemoryKV()}))
	if err != nil {
		t.Fatal(err)
	}
	defer wp.Close(ctx)
	gp := start(t, "./plugins/example", sb)

	for name, it := range map[string]host.Integration{"wasm": wp, "goplugin": gp} {
		if _, ok := it.(host.Caller); !ok {
			t.Errorf("%s: not a host.Caller", name)
		}
	}
	viaWasm := plugintest.Script(ctx, wp, api.Config())
	viaGo := plugintest.Script(ctx, gp, api.Config())
	if len(viaWasm) != len(viaGo) {
		t.Fatalf("transcripts differ in length: wasm %d, goplugin %d", len(viaWasm), len(viaGo))
	}
	for i := range viaWasm {
		if viaWasm[i] != viaGo[i] {
			t.Errorf("call %d differs:\nwasm:     %s\ngoplugin: %s", i, viaWasm[i], viaGo[i])
		}
	}
	for _, l := range viaGo {
		if strings.Contains(l, plugintest.APIToken) || strings.Contains(l, plugintest.WebhookSecret) {
			t.Errorf("a secret reached the plugin: %s", l)
		}
	}
}

func TestHostile(t *testing.T) {
	t.Setenv("PORTICO_HOSTILE_SECRET", "leaked")
	// Only the loop must reach its timeout: it runs on an integration of
	// its own with a short one, every other call (and each noop after a
	// hostile call) has the default, which no call reaches on a loaded machine.
	const short = 5 * time.Second
	looping := start(t, "./host/goplugin/testdata/hostile", host.Sandbox{Timeout: short, Concurrency: 2})
	others := start(t, "./host/goplugin/testdata/hostile", host.Sandbox{Concurrency: 2})
	ctx := context.Background()
	tests := []struct {
		action string
		p      *goplugin.Plugin
		want   error // errors.Is target, or nil for a *host.PluginError
		text   string
	}{
		{"loop", looping, host.ErrTimeout, "timed out after " + short.String()},
		{"panic", others, nil, "panic: hostile panic"},
		{"crash", others, host.ErrCrashed, "crashed"},
		{"exit", others, host.ErrCrashed, "crashed"},
		{"env", others, nil, "env PORTICO_HOSTILE_SECRET: not set"},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			p := tt.p
			_, err := p.Act(ctx, pdk.ActRequest{Action: tt.action})
			if err == nil {
				t.Fatal("hostile call succeeded")
			}
			t.Logf("error: %v", err)
			var pe *host.PluginError
			if tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && !errors.As(err, &pe) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
			// The integration keeps serving (a killed process is restarted).
			if r, err := p.Act(ctx, pdk.ActRequest{Action: "noop"}); err != nil {
				t.Errorf("noop after %s: %v", tt.action, err)
			} else {
				t.Log(r.Message)
			}
		})
	}
}

// TestProcessSurroundings asks a native plugin what it can see of the
// portal: none of its environment (a secret in the test process's stands
// for the Redis URL, PORTICO_* settings and the secrets key), and not its
// working directory.
func TestProcessSurroundings(t *testing.T) {
	t.Setenv("PORTICO_TEST_SECRET", "leaked")
	t.Setenv("PORTICO_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/0")
	p := start(t, "./host/goplugin/testdata/hostile", host.Sandbox{})
	r, err := p.Act(context.Background(), pdk.ActRequest{Action: "environ"})
	if err != nil {
		t.Fatal(err)
	}
	var seen struct {
		Env []string `json:"env"`
		Cwd string   `json:"cwd"`
	}
	if err := json.Unmarshal(r.Outputs, &seen); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range seen.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
		if strings.Contains(v, "leaked") || strings.Contains(v, "hunter2") {
			t.Errorf("the plugin sees %s", kv)
		}
		ours, inherited := os.LookupEnv(k)
		if inherited && ours == v && k != "PATH" {
			t.Errorf("the plugin inherited %s", k)
		}
	}
	for _, k := range []string{"PORTICO_TEST_SECRET", "PORTICO_REDIS_URL"} {
		if _, ok := env[k]; ok {
			t.Errorf("the plugin sees %s", k)
		}
	}
	wd, _ := os.Getwd()
	if seen.Cwd == wd || env["HOME"] != seen.Cwd || env["TMPDIR"] != seen.Cwd {
		t.Errorf("cwd %q, HOME %q, TMPDIR %q; want one private directory, not %q", seen.Cwd, env["HOME"], env["TMPDIR"], wd)
	}
	if fi, err := os.Stat(seen.Cwd); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("plugin directory: %v, %v", fi, err)
	}
	_ = p.Close(context.Background())
	if _, err := os.Stat(seen.Cwd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plugin directory left behind: %v", err)
	}
}

func TestChecksumMismatch(t *testing.T) {
	path := plugintest.Native(t, "./host/goplugin/testdata/hostile")
	_, err := goplugin.Start(context.Background(), goplugin.Config{Path: path, SHA256: goplugin.Checksum([]byte("other"))})
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("err = %v, want a checksum error", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	api := plugintest.NewAPI(t, 30)
	sb := api.Sandbox()
	sb.Concurrency = 3
	p := start(t, "./plugins/example", sb)
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			page, err := p.Resync(context.Background(), pdk.ResyncRequest{Kind: "item", Config: api.Config()})
			if err != nil || len(page.Items) != 7 {
				t.Errorf("resync: %v, %v", page, err)
			}
		}()
	}
	wg.Wait()
}

// TestHostFunctionsAfterIdleStart: go-plugin forgets a broker offer the
// plugin does not dial within ~5 s; a plugin whose first host-function call
// comes later (an installation that waits for its schedule) must still
// reach the host.
func TestHostFunctionsAfterIdleStart(t *testing.T) {
	api := plugintest.NewAPI(t, 5)
	p := start(t, "./plugins/example", api.Sandbox())
	time.Sleep(6 * time.Second)
	page, err := p.Resync(context.Background(), pdk.ResyncRequest{Kind: "item", Config: api.Config()})
	if err != nil {
		t.Fatalf("first host-function call after 6 s idle: %v", err)
	}
	items, err := page.RawItems()
	if err != nil || len(items) == 0 {
		t.Fatalf("page items: %v, %v", items, err)
	}
}
