package registry_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/portico-dev/portico/host/internal/plugintest"
	"github.com/portico-dev/portico/host/loader"
	"github.com/portico-dev/portico/host/redishost"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/pdk"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

// inspections counts the plugins a Runtime starts or compiles.
type inspections struct {
	*loader.Loader
	n atomic.Int32
}

func (c *inspections) InspectWasm(ctx context.Context, module []byte) (*pdk.Info, error) {
	c.n.Add(1)
	return c.Loader.InspectWasm(ctx, module)
}

func (c *inspections) InspectGoPlugin(ctx context.Context, path, sum string) (*pdk.Info, error) {
	c.n.Add(1)
	return c.Loader.InspectGoPlugin(ctx, path, sum)
}

// newRegistry returns a registry over a fresh store and its runtime.
func newRegistry(t *testing.T) (*registry.Registry, *inspections) {
	t.Helper()
	ld, err := loader.New(plugintest.CacheDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ld.Close(context.Background()) })
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	rt := &inspections{Loader: ld}
	return registry.New(redishost.New(rdb, redishost.Options{}), rt), rt
}

// pluginDir returns a directory holding files: name → contents, copied
// from a built plugin when contents is "build:wasm" or "build:native";
// mode 0o755 unless the name ends in ".txt".
func pluginDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, contents := range files {
		data := []byte(contents)
		switch contents {
		case "build:wasm":
			data = plugintest.Wasm(t, "./plugins/example")
		case "build:native":
			b, err := os.ReadFile(plugintest.Native(t, "./plugins/example"))
			if err != nil {
				t.Fatal(err)
			}
			data = b
		}
		mode := os.FileMode(0o755)
		if strings.HasSuffix(name, ".txt") {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// outcome renders a Registered for comparison: "file type name@version
// created" or "file error".
func outcome(r registry.Registered) string {
	file := filepath.Base(r.File)
	if r.Err != nil {
		return file + " error"
	}
	state := "unchanged"
	if r.Created {
		state = "created"
	}
	return file + " " + r.Plugin.Type + " " + r.Plugin.Ref() + " " + state
}

// TestRegisterDir: every module in a plugin directory is registered, Wasm
// by extension, go-plugins as executables; other files are ignored; a file
// that does not register is reported while the others still register; a
// second pass over the same files is a no-op that starts no plugin.
func TestRegisterDir(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		first []string // outcomes of the first pass, in file order
	}{
		{
			name:  "wasm",
			files: map[string]string{"example.wasm": "build:wasm", "README.txt": "not a plugin"},
			first: []string{"example.wasm wasm example@0.1.0 created"},
		},
		{
			name:  "native",
			files: map[string]string{"example": "build:native", "notes.txt": "not executable"},
			first: []string{"example goplugin example@0.1.0 created"},
		},
		{
			name:  "broken module beside a good one",
			files: map[string]string{"a-broken.wasm": "\x00asm\x01\x00\x00\x00garbage", "example.wasm": "build:wasm"},
			first: []string{"a-broken.wasm error", "example.wasm wasm example@0.1.0 created"},
		},
		{
			name:  "executable that is no plugin",
			files: map[string]string{"a-script": "#!/bin/sh\nexit 1\n", "example": "build:native"},
			first: []string{"a-script error", "example goplugin example@0.1.0 created"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			reg, rt := newRegistry(t)
			dir := pluginDir(t, tt.files)
			got := registerDir(t, reg, dir)
			if strings.Join(got, "\n") != strings.Join(tt.first, "\n") {
				t.Fatalf("first pass:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.first, "\n"))
			}
			before := rt.n.Load()
			again := registerDir(t, reg, dir)
			for i, o := range tt.first {
				want := strings.Replace(o, " created", " unchanged", 1)
				if again[i] != want {
					t.Errorf("second pass: %q, want %q", again[i], want)
				}
			}
			if rt.n.Load() != before+int32(countErrors(tt.first)) {
				t.Errorf("second pass inspected %d plugins, want only the %d that failed", rt.n.Load()-before, countErrors(tt.first))
			}
			ps, err := reg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 {
				t.Fatalf("%d plugins recorded, want 1", len(ps))
			}
			if ps[0].Type == registry.TypeGoPlugin && !filepath.IsAbs(ps[0].Path) {
				t.Errorf("go-plugin recorded at %q, want an absolute path", ps[0].Path)
			}
		})
	}
}

func registerDir(t *testing.T, reg *registry.Registry, dir string) []string {
	t.Helper()
	rs, err := reg.RegisterDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if !filepath.IsAbs(r.File) {
			t.Errorf("file %q is not absolute", r.File)
		}
		out = append(out, outcome(r))
	}
	return out
}

func countErrors(outcomes []string) int {
	n := 0
	for _, o := range outcomes {
		if strings.HasSuffix(o, " error") {
			n++
		}
	}
	return n
}

// TestRegisterDirVersionConflict: other bytes under a registered
// name@version are refused with ErrVersionConflict, naming the fix, and
// the registered record stays.
func TestRegisterDirVersionConflict(t *testing.T) {
	reg, _ := newRegistry(t)
	registerDir(t, reg, pluginDir(t, map[string]string{"example": "build:native"}))
	rs, err := reg.RegisterDir(context.Background(), pluginDir(t, map[string]string{"example.wasm": "build:wasm"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || !errors.Is(rs[0].Err, registry.ErrVersionConflict) || !strings.Contains(rs[0].Err.Error(), "bump the plugin's version") {
		t.Fatalf("got %+v, want a version conflict telling to bump the version", rs)
	}
	p, err := reg.Get(context.Background(), "example", "0.1.0")
	if err != nil || p.Type != registry.TypeGoPlugin {
		t.Fatalf("example@0.1.0 is now %+v (%v), want the go-plugin registered first", p, err)
	}
}

// TestRegisterDirMissing: a directory that does not exist is an error
// wrapping fs.ErrNotExist (callers decide whether that matters).
func TestRegisterDirMissing(t *testing.T) {
	reg, _ := newRegistry(t)
	_, err := reg.RegisterDir(context.Background(), filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

// TestRegisterDirMovedGoPlugin: the same go-plugin binary found in another
// directory keeps the record where it was while that copy is intact, and
// moves the record when it is gone (a checkout moved, a bundle rebuilt
// elsewhere), so installations do not point at a missing binary.
func TestRegisterDirMovedGoPlugin(t *testing.T) {
	reg, _ := newRegistry(t)
	ctx := context.Background()
	first := pluginDir(t, map[string]string{"example": "build:native"})
	registerDir(t, reg, first)
	second := pluginDir(t, map[string]string{"example": "build:native"})
	registerDir(t, reg, second)
	path := func() string {
		p, err := reg.Get(ctx, "example", "0.1.0")
		if err != nil {
			t.Fatal(err)
		}
		return p.Path
	}
	if got := path(); got != filepath.Join(first, "example") {
		t.Fatalf("with the first copy intact the record moved to %s", got)
	}
	if err := os.Remove(filepath.Join(first, "example")); err != nil {
		t.Fatal(err)
	}
	registerDir(t, reg, second)
	if got := path(); got != filepath.Join(second, "example") {
		t.Fatalf("with the first copy gone the record is at %s, want the second", got)
	}
}
