// Package goplugin runs Portico integrations as hashicorp/go-plugin
// subprocesses over gRPC, with AutoMTLS and a SecureConfig sha256 checksum.
// A go-plugin integration gets the same call API and host functions as a
// Wasm one, and calls are bounded by Sandbox.Timeout and
// Sandbox.Concurrency.
//
// What the process is given is reduced to what it needs: its environment is
// go-plugin's handshake variables plus PATH, HOME and TMPDIR (both a fresh
// private directory, also its working directory, removed when the process
// ends), so it inherits none of the portal's (the Redis URL and credentials,
// PORTICO_* settings, the secrets key), and it does not start in the
// portal's working directory (where a dev data dir lives).
//
// What remains is trusted: it is native code running as the portal's user.
// It is not memory-sandboxed, its own network access does not go through the
// allowlist (only the portico_http host function does), and it can read
// whatever that user can: files under the data dir or a secrets key file,
// and the portal's own /proc entries. Install go-plugins you would run as
// the portal yourself; run untrusted plugins as Wasm.
package goplugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/rpc"
)

// Config describes a go-plugin integration for one installation.
type Config struct {
	// Path of the plugin binary.
	Path string
	// SHA256 is the hex checksum the binary must have before each start.
	SHA256 string
	// Sandbox: Timeout and Concurrency apply; MemoryMiB does not.
	Sandbox host.Sandbox
	// Host serves the host functions (typically a *host.Services).
	Host pdk.Host
	// Logger receives the plugin's logs; nil means slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds the handshake; zero means 10s.
	StartTimeout time.Duration
}

// Plugin is a running go-plugin integration. A process that crashed or timed
// out is killed and restarted on the next call.
type Plugin struct {
	host.Calls // Info, Resync, Webhook, Act over Call

	cfg      Config
	checksum []byte
	slots    chan struct{}

	mu     sync.Mutex
	client *plugin.Client
	rpc    *rpc.Client
	dir    string // the process's HOME, TMPDIR and working directory
	closed bool
}

var _ host.Integration = (*Plugin)(nil)

// Start verifies and starts the plugin binary.
func Start(ctx context.Context, cfg Config) (*Plugin, error) {
	sum, err := hex.DecodeString(cfg.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("goplugin: sha256 %q: want 64 hex digits", cfg.SHA256)
	}
	cfg.Sandbox = cfg.Sandbox.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	p := &Plugin{cfg: cfg, checksum: sum, slots: make(chan struct{}, cfg.Sandbox.Concurrency)}
	p.Calls = host.Calls{Caller: p}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.connectLocked(); err != nil {
		return nil, err
	}
	return p, nil
}

// connectLocked returns the RPC client, starting the process if needed.
func (p *Plugin) connectLocked() (*rpc.Client, error) {
	if p.closed {
		return nil, fmt.Errorf("goplugin: %w", host.ErrClosed)
	}
	if p.client != nil && !p.client.Exited() {
		return p.rpc, nil
	}
	p.killLocked()
	logger := hclog.New(&hclog.LoggerOptions{
		Name:        "plugin",
		Output:      &slogWriter{logger: p.cfg.Logger},
		Level:       hclog.Info,
		DisableTime: true,
	})
	dir, err := os.MkdirTemp("", "portico-plugin-")
	if err != nil {
		return nil, fmt.Errorf("goplugin: %w", err)
	}
	cmd := exec.Command(p.cfg.Path)
	cmd.Dir, cmd.Env = dir, processEnv(dir)
	cmd.SysProcAttr = childAttrs()
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  rpc.Handshake,
		Plugins:          plugin.PluginSet{rpc.PluginName: &rpc.Plugin{Host: p.cfg.Host}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SecureConfig:     &plugin.SecureConfig{Checksum: p.checksum, Hash: sha256.New()},
		SkipHostEnv:      true,
		StartTimeout:     p.cfg.StartTimeout,
		Logger:           logger,
		Stderr:           io.Discard, // non-log stderr lines are logged by Logger already
	})
	p.client, p.dir = c, dir
	proto, err := c.Client()
	if err != nil {
		p.killLocked()
		return nil, fmt.Errorf("goplugin: start %s: %w", p.cfg.Path, err)
	}
	raw, err := proto.Dispense(rpc.PluginName)
	if err != nil {
		p.killLocked()
		return nil, fmt.Errorf("goplugin: dispense: %w", err)
	}
	p.rpc = raw.(*rpc.Client)
	return p.rpc, nil
}

// processEnv is a plugin process's environment besides go-plugin's
// handshake variables (SkipHostEnv: nothing of the portal's).
func processEnv(dir string) []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir}
}

func (p *Plugin) killLocked() {
	if p.client != nil {
		p.client.Kill()
		p.client, p.rpc = nil, nil
	}
	if p.dir != "" {
		if err := os.RemoveAll(p.dir); err != nil {
			p.cfg.Logger.Warn("remove plugin directory", "dir", p.dir, "err", err)
		}
		p.dir = ""
	}
}

// restart kills the process if it is still the one that failed; the next call
// starts a new one.
func (p *Plugin) restart(failed *rpc.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rpc == failed {
		p.killLocked()
	}
}

// nearDeadline reports whether ctx's deadline is (almost) reached.
func nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < 20*time.Millisecond
}

// Call calls export with JSON input. It implements host.Caller.
func (p *Plugin) Call(ctx context.Context, export string, input []byte) ([]byte, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("goplugin: %s: wait for a slot: %w", export, ctx.Err())
	}
	defer func() { <-p.slots }()

	p.mu.Lock()
	c, err := p.connectLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, p.cfg.Sandbox.Timeout)
	defer cancel()
	out, err := c.Call(callCtx, export, input)
	if err == nil {
		return out, nil
	}
	st, _ := status.FromError(err)
	switch {
	case st.Code() == rpc.PluginErrorCode:
		return nil, &host.PluginError{Export: export, Message: st.Message()}
	case st.Code() == codes.Unimplemented:
		return nil, fmt.Errorf("goplugin: %w: %s", host.ErrUnsupported, export)
	case ctx.Err() != nil:
		p.restart(c) // the call may still be running in the plugin
		return nil, fmt.Errorf("goplugin: %s: %w", export, ctx.Err())
	case callCtx.Err() != nil || nearDeadline(callCtx):
		// The plugin's gRPC server enforces the same deadline and may reset
		// the stream a hair before our own timer fires: that is a timeout too.
		p.restart(c)
		return nil, fmt.Errorf("goplugin: %s: %w after %s", export, host.ErrTimeout, p.cfg.Sandbox.Timeout)
	}
	p.restart(c)
	return nil, fmt.Errorf("goplugin: %s: %w: lost the plugin process: %s", export, host.ErrCrashed, st.Message())
}

// Close implements host.Integration: it stops the plugin process.
func (p *Plugin) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.killLocked()
	return nil
}

// slogWriter turns hclog's output lines into slog records.
type slogWriter struct {
	logger *slog.Logger
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (w *slogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep for the next write
			return len(b), nil
		}
		line = strings.TrimSpace(line)
		level := slog.LevelInfo
		for prefix, l := range hclogLevels {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				line, level = strings.TrimSpace(rest), l
				break
			}
		}
		w.logger.Log(context.Background(), level, line)
	}
}

var hclogLevels = map[string]slog.Level{
	"[TRACE]": slog.LevelDebug, "[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
	"[WARN]": slog.LevelWarn, "[ERROR]": slog.LevelError,
}

// Checksum returns the hex sha256 of data, as Config.SHA256 expects.
func Checksum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
