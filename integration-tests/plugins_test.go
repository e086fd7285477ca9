package integrationtests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/internal/redistest"
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
// The database is emptied first: the tests share one redis-server, and an
// earlier test's installations (watched, scheduled, pointing at stand-ins
// that are gone) must not run in this test's portal.
func startBundled(t testing.TB, args ...string) *proc {
	t.Helper()
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("empty the test database: %v", err)
	}
	return serveBundled(t, "redis://"+addr+"/0", args...)
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

// plugin is one row of GET /api/v1/plugins.
type plugin struct {
	Name, Version, Type, Path string
}

// plugins lists the plugins p has registered.
func plugins(p *proc) []plugin {
	p.t.Helper()
	var res struct{ Plugins []plugin }
	if err := json.Unmarshal(p.must("GET", "/api/v1/plugins", nil, 200), &res); err != nil {
		p.t.Fatal(err)
	}
	return res.Plugins
}

// buildExample builds plugins/example into dir/file, as Wasm or native.
func buildExample(t testing.TB, dir, file string, wasm bool) {
	t.Helper()
	args := []string{"build", "-o", filepath.Join(dir, file)}
	env := os.Environ()
	if wasm {
		args = append(args, "-buildmode=c-shared")
		env = append(env, "GOOS=wasip1", "GOARCH=wasm")
	}
	cmd := exec.Command("go", append(args, "./plugins/example")...)
	cmd.Dir, cmd.Env = "..", env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", file, err, out)
	}
}

// TestBundledPluginsRegisteredAtStart: `portico serve` registers every
// plugin of plugins/ beside its binary at start, and those of --plugin-dir
// (or PORTICO_PLUGIN_DIR) instead when given, Wasm modules and go-plugin
// executables alike; a restart on the same bundle changes nothing; a
// --plugin-dir that does not exist stops the start.
func TestBundledPluginsRegisteredAtStart(t *testing.T) {
	// The bundle: one plugin per file of the bundle's plugins/.
	p := startBundled(t)
	entries, err := os.ReadDir(filepath.Join(filepath.Dir(bundle(t)), "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		name, wasm := strings.CutSuffix(e.Name(), ".wasm")
		want[name] = map[bool]string{true: "wasm", false: "goplugin"}[wasm]
	}
	got := map[string]string{}
	for _, pl := range plugins(p) {
		got[pl.Name] = pl.Type
	}
	if !maps.Equal(got, want) {
		t.Errorf("registered %v, want the bundle's %v\n%s", got, want, p.output())
	}

	// plugins/example built both ways, each in its own plugin dir and
	// Redis database: both name themselves example@0.1.0.
	redisAddr := strings.TrimSuffix(strings.TrimPrefix(p.redisURL, "redis://"), "/0")
	wasmDir, nativeDir := t.TempDir(), t.TempDir()
	buildExample(t, wasmDir, "example.wasm", true)
	buildExample(t, nativeDir, "example", false)
	for _, tt := range []struct {
		name, db, dir, typ string
		env                bool
	}{
		{name: "wasm", db: "/1", dir: wasmDir, typ: "wasm"},
		{name: "native", db: "/2", dir: nativeDir, typ: "goplugin", env: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.env {
				t.Setenv("PORTICO_PLUGIN_DIR", tt.dir)
			} else {
				args = []string{"--plugin-dir", tt.dir}
			}
			url := "redis://" + redisAddr + tt.db
			p := serveBundled(t, url, args...)
			ps := plugins(p)
			if len(ps) != 1 || ps[0].Name != "example" || ps[0].Version != "0.1.0" || ps[0].Type != tt.typ {
				t.Fatalf("registered %+v, want example@0.1.0 of type %s\n%s", ps, tt.typ, p.output())
			}
			if tt.typ == "goplugin" && ps[0].Path != filepath.Join(tt.dir, "example") {
				t.Errorf("go-plugin registered at %q, want %q", ps[0].Path, filepath.Join(tt.dir, "example"))
			}
			if !strings.Contains(p.output(), `msg="plugin registered" plugin=example@0.1.0`) {
				t.Errorf("no log line for the registration:\n%s", p.output())
			}
			p.stop(syscall.SIGTERM)

			p = serveBundled(t, url, args...)
			if again := plugins(p); !slices.Equal(again, ps) {
				t.Errorf("after a restart: %+v, want %+v", again, ps)
			}
			if !strings.Contains(p.output(), `msg="plugin already registered" plugin=example@0.1.0`) {
				t.Errorf("the restart did not report the plugin unchanged:\n%s", p.output())
			}
		})
	}

	// A --plugin-dir that does not exist is a mistake: the start fails.
	missing := filepath.Join(t.TempDir(), "nope")
	q := spawnBin(t, bundle(t), "serve", "--redis-url", p.redisURL, "--addr", freeAddr(t), "--plugin-dir", missing)
	done := make(chan error, 1)
	go func() { done <- q.cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(q.output(), "--plugin-dir") {
			t.Errorf("exit %v with output %q, want a failed start naming --plugin-dir", err, q.output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve with a missing --plugin-dir still runs:\n%s", q.output())
	}
}

// syncRecord is the part of an integration's sync record the tests read.
type syncRecord struct {
	ID, Status, Trigger                             string
	Items, Pages, Upserts, Unchanged, Kept, Deletes int
	Errors                                          []struct{ Kind, Message string }
	DeletionSkipped                                 string
	StartedAt                                       time.Time
	EndedAt                                         *time.Time
}

// took is how long the sync ran, by its own record.
func (s syncRecord) took() time.Duration { return s.EndedAt.Sub(s.StartedAt) }

// resync starts a resync of integration id and waits for its end.
func resync(p *proc, id string) syncRecord {
	p.t.Helper()
	// A 409 says another resync holds the installation's lock: wait for it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out := p.call("POST", "/api/v1/integrations/"+id+"/resync", nil)
		if code == 409 && time.Now().Before(deadline) {
			p.t.Logf("POST resync of %s: 409 %s; retrying", id, out)
			continue
		}
		if code != 202 {
			p.t.Fatalf("POST resync of %s: %d %s", id, code, out)
		}
		var s syncRecord
		if err := json.Unmarshal(out, &s); err != nil {
			p.t.Fatal(err)
		}
		return waitSync(p, id, s)
	}
}

// waitSync waits for the end of sync s of integration id.
func waitSync(p *proc, id string, s syncRecord) syncRecord {
	p.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for s.Status == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if err := json.Unmarshal(p.must("GET", "/api/v1/integrations/"+id+"/syncs/"+s.ID, nil, 200), &s); err != nil {
			p.t.Fatal(err)
		}
	}
	if s.Status == "running" {
		p.t.Fatalf("resync %s still running after 3 minutes", s.ID)
	}
	return s
}
