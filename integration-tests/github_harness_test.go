package integrationtests

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portico-dev/portico/core/catalog/redisstore/redistest"
)

// A minimal harness for the GitHub integration test until the bundled
// one (make build → bin/plugins, --plugin-dir) is on main: `portico serve`
// on a real redis-server, with plugins/github built as Wasm and published
// through the API as a plugin author would.

var (
	githubWasmOnce sync.Once
	githubWasm     []byte
	githubWasmErr  error
)

// githubModule builds plugins/github as a Wasm module once per test binary.
func githubModule(t testing.TB) []byte {
	t.Helper()
	githubWasmOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portico-github-")
		if err != nil {
			githubWasmErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "github.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./plugins/github")
		cmd.Dir, cmd.Env = "..", append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			githubWasmErr = err
			githubWasm = b
			return
		}
		githubWasm, githubWasmErr = os.ReadFile(out)
	})
	if githubWasmErr != nil {
		t.Fatalf("build plugins/github: %v\n%s", githubWasmErr, githubWasm)
	}
	return githubWasm
}

// startGitHubPortal starts `portico serve` on a real redis-server with the
// github plugin published.
func startGitHubPortal(t testing.TB) *proc {
	t.Helper()
	p := start(t, freeAddr(t), "serve", "--redis-url", "redis://"+redistest.Start(t)+"/0")
	if code, out := p.send("POST", "/api/v1/plugins", "application/wasm", nil, githubModule(t)); code != 201 {
		t.Fatalf("publish github.wasm: %d %s", code, out)
	}
	return p
}

// send makes a request with a raw body and extra headers (the admin token
// unless headers set Authorization to "", which leaves it out).
func (p *proc) send(method, path, contentType string, headers map[string]string, body []byte) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer T")
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
