// Package integrationtests drives real processes end to end: the portico
// binary built from source, a real redis-server, real signals.
package integrationtests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-dev/portico/internal/logbuf"
	"github.com/portico-dev/portico/internal/redistest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// portico builds cmd/portico once per test binary.
func portico(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portico-it-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portico")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/portico").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running portico process.
type proc struct {
	t        testing.TB
	cmd      *exec.Cmd
	base     string
	log      *logbuf.Buffer
	redisURL string // the Redis it runs on, when the test started one
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs portico with args plus --addr and waits for /healthz.
func start(t testing.TB, addr string, args ...string) *proc {
	t.Helper()
	p := spawn(t, append(args, "--addr", addr)...)
	p.base = "http://" + addr
	p.waitHealthy()
	return p
}

// waitHealthy waits until p answers /healthz.
func (p *proc) waitHealthy() {
	p.t.Helper()
	// Generous: a start registers the bundled plugins first.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("portico did not become healthy:\n%s", p.output())
}

// spawn runs portico with args (a process without an HTTP API, such as
// `portico worker`, or the base of start).
func spawn(t testing.TB, args ...string) *proc {
	t.Helper()
	return spawnBin(t, portico(t), args...)
}

// spawnBin runs the portico binary bin with args.
func spawnBin(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PORTICO_ADMIN_TOKEN=T")
	p := &proc{t: t, cmd: cmd, log: &logbuf.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start portico %s: %v", args[0], err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return p
}

// waitLog waits until the process has logged want.
func (p *proc) waitLog(want string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.output(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("portico did not log %q within %s:\n%s", want, timeout, p.output())
}

func (p *proc) output() string { return p.log.String() }

// stop sends sig and waits for the process to exit.
func (p *proc) stop(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("portico did not exit after %v:\n%s", sig, p.output())
	}
}

func (p *proc) call(method, path string, body any) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Authorization", "Bearer T")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (p *proc) must(method, path string, body any, want int) []byte {
	p.t.Helper()
	code, out := p.call(method, path, body)
	if code != want {
		p.t.Fatalf("%s %s: got %d want %d: %s", method, path, code, want, out)
	}
	return out
}

func setupCatalog(p *proc) {
	p.must("PUT", "/api/v1/blueprints/team", map[string]any{"schema": map[string]any{
		"properties": map[string]any{"slack": map[string]any{"type": "string"}}}}, 201)
	p.must("PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{
		"properties": map[string]any{"n": map[string]any{"type": "integer"}, "lang": map[string]any{"type": "string"}}},
		"relations": map[string]any{"owner": map[string]any{"target": "team", "required": true}}}, 201)
	p.must("PUT", "/api/v1/blueprints/team/entities/core", map[string]any{"properties": map[string]any{"slack": "#core"}}, 201)
}

func countServices(p *proc, lang string) int {
	out := p.must("POST", "/api/v1/entities/search", map[string]any{"query": map[string]any{"combinator": "and", "rules": []any{
		map[string]any{"property": "$blueprint", "operator": "=", "value": "service"},
		map[string]any{"property": "lang", "operator": "=", "value": lang},
	}}, "limit": 1}, 200)
	var res struct{ Total int }
	if err := json.Unmarshal(out, &res); err != nil {
		p.t.Fatal(err)
	}
	return res.Total
}

// TestDevSurvivesGracefulStopAndKill9: `portico dev` keeps every
// acknowledged write across a graceful stop and across kill -9, indexes
// and change stream included.
func TestDevSurvivesGracefulStopAndKill9(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := start(t, addr, "dev", "--data-dir", dir)
	setupCatalog(p)
	var batch []any
	for i := 0; i < 500; i++ {
		batch = append(batch, map[string]any{"blueprint": "service", "identifier": fmt.Sprintf("s%d", i),
			"properties": map[string]any{"n": i, "lang": "go"}, "relations": map[string]any{"owner": "core"}})
	}
	p.must("POST", "/api/v1/entities/bulk", map[string]any{"entities": batch}, 200)
	p.stop(syscall.SIGTERM)

	p = start(t, addr, "dev", "--data-dir", dir)
	if n := countServices(p, "go"); n != 500 {
		t.Fatalf("after graceful restart: %d go services, want 500\n%s", n, p.log.String())
	}
	// Required relation still enforced after restore: the reverse index survived.
	p.must("DELETE", "/api/v1/blueprints/team/entities/core", nil, 409)

	// Write continuously from a goroutine, remember what was acknowledged,
	// and kill -9 the process in the middle.
	acked := make(chan int, 100000)
	var nAcked atomic.Int64
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			code, _ := p.call("PUT", fmt.Sprintf("/api/v1/blueprints/service/entities/k%d", i), map[string]any{
				"properties": map[string]any{"n": i, "lang": "rust"}, "relations": map[string]any{"owner": "core"}})
			if code != 201 {
				return
			}
			acked <- i
			nAcked.Add(1)
		}
	}()
	// Kill once enough writes were acknowledged (a fixed wait may see too
	// few on a loaded machine), and keep writing until the kill.
	for deadline := time.Now().Add(60 * time.Second); nAcked.Load() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 60 s", nAcked.Load())
		}
	}
	p.stop(syscall.SIGKILL)
	close(stopWriting)
	wg.Wait()
	close(acked)
	var ids []int
	for i := range acked {
		ids = append(ids, i)
	}
	if len(ids) < 10 {
		t.Fatalf("only %d writes acknowledged before the kill; the test proves nothing", len(ids))
	}

	p = start(t, addr, "dev", "--data-dir", dir)
	for _, i := range ids {
		p.must("GET", fmt.Sprintf("/api/v1/blueprints/service/entities/k%d", i), nil, 200)
	}
	if n := countServices(p, "rust"); n < len(ids) {
		t.Fatalf("index lost writes: %d rust services found, %d acknowledged", n, len(ids))
	}
	if n := countServices(p, "go"); n != 500 {
		t.Fatalf("after kill -9: %d go services, want 500", n)
	}
	// The change stream survived too: its first event is the first blueprint.
	req, _ := http.NewRequest("GET", p.base+"/api/v1/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer T")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(resp.Body, buf, 200)
	if !strings.Contains(string(buf[:n]), "event: blueprint.created") {
		t.Fatalf("event stream after restart starts with %q", buf[:n])
	}
	t.Logf("kill -9 after %d acknowledged single writes: all restored", len(ids))
}

// TestServeReplicasShareRealRedis: two stateless `portico serve` replicas
// on one real redis-server see each other's writes at once, and report
// ready.
func TestServeReplicasShareRealRedis(t *testing.T) {
	redisAddr := redistest.Start(t)
	url := "redis://" + redisAddr + "/0"
	a := start(t, freeAddr(t), "serve", "--redis-url", url)
	b := start(t, freeAddr(t), "serve", "--redis-url", url)
	a.must("GET", "/readyz", nil, 200)
	setupCatalog(a)
	b.must("PUT", "/api/v1/blueprints/service/entities/from-b", map[string]any{
		"properties": map[string]any{"n": 1, "lang": "zig"}, "relations": map[string]any{"owner": "core"}}, 201)
	if n := countServices(a, "zig"); n != 1 {
		t.Fatalf("replica a sees %d zig services written through b, want 1", n)
	}
	// A blueprint change made through one replica is enforced by the other.
	a.must("PUT", "/api/v1/blueprints/service", map[string]any{"schema": map[string]any{
		"properties": map[string]any{"n": map[string]any{"type": "integer", "maximum": 5}, "lang": map[string]any{"type": "string"}}},
		"relations": map[string]any{"owner": map[string]any{"target": "team", "required": true}}}, 200)
	b.must("PUT", "/api/v1/blueprints/service/entities/too-big", map[string]any{
		"properties": map[string]any{"n": 9}, "relations": map[string]any{"owner": "core"}}, 422)
}

// TestGracefulStopEndsStreams: SIGTERM ends open SSE streams after a short
// drain, so `portico dev` exits cleanly and promptly instead of waiting
// out the shutdown timeout.
func TestGracefulStopEndsStreams(t *testing.T) {
	p := start(t, freeAddr(t), "dev", "--data-dir", t.TempDir())
	req, _ := http.NewRequest("GET", p.base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer T")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("open event stream: %v %v", res, err)
	}
	defer res.Body.Close()
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, res.Body); close(ended) }()
	// A stream that held the shutdown would make it time out (10 s), and
	// the process exit non-zero: the exit status proves the drain, where a
	// bound on wall time would also measure the machine's load.
	t0 := time.Now()
	p.stop(syscall.SIGTERM)
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("exit %v after %s, want a clean exit:\n%s", p.cmd.ProcessState, time.Since(t0), p.output())
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream stayed open after the process exited")
	}
}
