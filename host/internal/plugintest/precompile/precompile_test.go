// Package precompile compiles Wasm modules into a wazero compilation cache
// directory, the way host/wasm loads them. Race-detector test binaries run
// it on the plugins they build (see plugintest.WasmPath): wazero's compiler
// instrumented by the race detector is several times slower, and the code
// it writes to the cache is the same.
//
// It is a test binary (go test -c), run with PORTICO_PRECOMPILE set to the
// cache directory and the modules, one per line, because wazero names its
// cache after its own version as the binary's build information states it,
// and a test binary's says "dev": an ordinary command's entries would be
// invisible to the tests. Without PORTICO_PRECOMPILE it runs no test.
package precompile

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/portico-dev/portico/host/wasm"
)

func TestMain(m *testing.M) {
	args := strings.FieldsFunc(os.Getenv("PORTICO_PRECOMPILE"), func(r rune) bool { return r == '\n' })
	if len(args) == 0 {
		os.Exit(m.Run())
	}
	if err := precompile(args[0], args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func precompile(cacheDir string, modules []string) error {
	ctx := context.Background()
	engine, err := wasm.NewEngine(cacheDir)
	if err != nil {
		return err
	}
	defer engine.Close(ctx)
	for _, path := range modules {
		module, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := engine.Precompile(ctx, module); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}
