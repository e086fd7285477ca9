package integrationtests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portico-dev/portico/core/catalog/redisstore/redistest"
)

var (
	bundleOnce sync.Once
	bundleDir  string
	bundleErr  error
)

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	if bundleDir != "" {
		os.RemoveAll(bundleDir)
	}
	os.Exit(code)
}

// bundle runs `make build OUT=<temp dir>` from the repository root once per
// test binary, as a user's first `make run` does, and returns the path of
// the portico binary built; the bundled plugins are in plugins/ beside it.
// GOFLAGS and the rest of the environment are kept (`make test` sets them).
func bundle(t testing.TB) string {
	t.Helper()
	bundleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portico-bundle-")
		if err != nil {
			bundleErr = err
			return
		}
		bundleDir = dir
		cmd := exec.Command("make", "build", "OUT="+dir)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			bundleErr = fmt.Errorf("make build: %v\n%s", err, out)
		}
	})
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	return filepath.Join(bundleDir, "portico")
}

// startBundled starts a real redis-server and `portico serve` from the
// bundle on it (admin token T), with args added, and waits for /healthz.
// p.redisURL lets a test restart the portal on the same data with
// serveBundled.
func startBundled(t testing.TB, args ...string) *proc {
	t.Helper()
	return serveBundled(t, "redis://"+redistest.Start(t)+"/0", args...)
}

// serveBundled starts `portico serve` from the bundle on redisURL, with args
// added, and waits for /healthz.
func serveBundled(t testing.TB, redisURL string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := spawnBin(t, bundle(t), append([]string{"serve", "--redis-url", redisURL, "--addr", addr}, args...)...)
	p.base, p.redisURL = "http://"+addr, redisURL
	p.waitHealthy()
	return p
}

// bundled lists the plugins `make build` bundles: name → Wasm or native.
var bundled = map[string]bool{"pagerduty": true, "github": true, "kubernetes": false}

// TestBundleHoldsBundledPlugins: `make build` puts every bundled plugin
// whose source exists into plugins/ beside the binary, Wasm ones as
// <name>.wasm modules and native ones as executables, and nothing else.
func TestBundleHoldsBundledPlugins(t *testing.T) {
	dir := filepath.Join(filepath.Dir(bundle(t)), "plugins")
	want := map[string]bool{}
	for name, wasm := range bundled {
		if _, err := os.Stat(filepath.Join("..", "plugins", name)); err != nil {
			continue // not written yet
		}
		file := name
		if wasm {
			file += ".wasm"
		}
		want[file] = true
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Errorf("plugin %s: %v", name, err)
			continue
		}
		if isWasm := bytes.HasPrefix(b, []byte("\x00asm")); isWasm != wasm {
			t.Errorf("%s: WebAssembly module %v, want %v", file, isWasm, wasm)
		}
		if fi, _ := os.Stat(filepath.Join(dir, file)); !wasm && fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", file, fi.Mode())
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("unexpected %s in the bundle", e.Name())
		}
	}
	p := startBundled(t)
	p.must("GET", "/api/v1/plugins", nil, 200)
}
