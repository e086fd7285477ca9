package integrationtests

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/portico-dev/portico/core/catalog/redisstore/redistest"
)

// pagerdutyPortal starts `portico serve` (built from source, with args
// added) on a real redis-server and publishes plugins/pagerduty built as
// Wasm, as `make build` bundles it.
//
// Stop-gap until the bundle harness (startBundled, --plugin-dir) is on
// main: then this becomes startBundled(t) with no publish step.
func pagerdutyPortal(t testing.TB, args ...string) *proc {
	t.Helper()
	wasm := filepath.Join(t.TempDir(), "pagerduty.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "./plugins/pagerduty")
	cmd.Dir, cmd.Env = "..", append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pagerduty.wasm: %v\n%s", err, out)
	}
	p := start(t, freeAddr(t), append([]string{"serve", "--redis-url", "redis://" + redistest.Start(t) + "/0"}, args...)...)
	module, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", p.base+"/api/v1/plugins", bytes.NewReader(module))
	req.Header.Set("Authorization", "Bearer T")
	req.Header.Set("Content-Type", "application/wasm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish pagerduty.wasm: status %d", resp.StatusCode)
	}
	return p
}
