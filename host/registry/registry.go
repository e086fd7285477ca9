// Package registry is Portico's plugin registry: published Wasm modules and
// registered go-plugin binaries, each recorded under name@version with its
// sha256 and the info it reports about itself. A name@version is immutable:
// publishing the same bytes again is a no-op, other bytes are a conflict.
//
// The registry does not run plugins itself: a Runtime (host/loader) inspects
// and loads them, so that consumers of the records (the HTTP layer) do not
// link a Wasm engine.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/mapping"
	"github.com/portico-dev/portico/host/schema"
	"github.com/portico-dev/portico/pdk"

	"github.com/portico-dev/portico/internal/errkind"
)

// Plugin types.
const (
	TypeWasm     = "wasm"
	TypeGoPlugin = "goplugin"
)

// Plugin is one published plugin version.
type Plugin struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Type        string    `json:"type"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Path        string    `json:"path,omitempty"` // go-plugin binary
	Info        *pdk.Info `json:"info"`
	PublishedAt time.Time `json:"publishedAt"`
}

// Ref returns "name@version".
func (p *Plugin) Ref() string { return p.Name + "@" + p.Version }

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such plugin or version.
	ErrNotFound = fmt.Errorf("plugin %w", catalog.ErrNotFound)
	// ErrVersionConflict: name@version is already published with other bytes.
	ErrVersionConflict = errkind.New(errkind.Conflict, "plugin version already published with different content", errkind.Code("version_conflict"))
)

// Store persists plugin records and Wasm modules.
type Store interface {
	// CreatePlugin records p unless p.Name@p.Version exists, in which case it
	// returns the existing record and writes nothing. module (nil for
	// go-plugins) is stored under p.SHA256.
	CreatePlugin(ctx context.Context, p *Plugin, module []byte) (existing *Plugin, err error)
	// Plugin returns one version, or an error wrapping ErrNotFound.
	Plugin(ctx context.Context, name, version string) (*Plugin, error)
	// Plugins returns every version of every plugin.
	Plugins(ctx context.Context) ([]*Plugin, error)
	// Module returns the Wasm module stored under sha256.
	Module(ctx context.Context, sha256 string) ([]byte, error)
	// SetPluginPath changes where a go-plugin's binary lives.
	SetPluginPath(ctx context.Context, name, version, path string) error
}

// Runtime runs plugins: host/loader implements it with host/wasm and
// host/goplugin.
type Runtime interface {
	// InspectWasm compiles a module in a locked-down sandbox and returns its info.
	InspectWasm(ctx context.Context, module []byte) (*pdk.Info, error)
	// InspectGoPlugin starts a verified go-plugin binary and returns its info.
	InspectGoPlugin(ctx context.Context, path, sha256 string) (*pdk.Info, error)
	// Load starts p for one installation; module is nil for go-plugins.
	Load(ctx context.Context, p *Plugin, module []byte, sb host.Sandbox, h pdk.Host, opts LoadOptions) (host.Integration, error)
}

// LoadOptions tune how an installation's plugin is run.
type LoadOptions struct {
	// Uninterruptible compiles a Wasm module without termination checks:
	// Go guests run 3–5× faster, but a call past its timeout leaves the
	// guest running (holding a CPU and a concurrency slot) until it returns
	// on its own. For trusted plugins only.
	Uninterruptible bool
}

// Registry publishes, lists and loads plugins.
type Registry struct {
	store   Store
	runtime Runtime
	now     func() time.Time

	mu      sync.Mutex
	modules map[string][]byte // sha256 → module: immutable, so cached forever
}

// New returns a Registry over store and runtime.
func New(store Store, runtime Runtime) *Registry {
	return &Registry{store: store, runtime: runtime, now: time.Now, modules: map[string][]byte{}}
}

// PublishWasm inspects, validates and records a Wasm module. created is false
// when the same bytes were already published under that name@version.
func (r *Registry) PublishWasm(ctx context.Context, module []byte) (p *Plugin, created bool, err error) {
	if len(module) < 8 || string(module[:4]) != "\x00asm" {
		return nil, false, invalid("/", "not a WebAssembly module")
	}
	sum := checksum(module)
	info, err := r.runtime.InspectWasm(ctx, module)
	if err != nil {
		return nil, false, invalid("/", "load module: "+err.Error())
	}
	p = &Plugin{Type: TypeWasm, SHA256: sum, Size: int64(len(module))}
	if created, err = r.create(ctx, p, info, module); err != nil {
		return nil, false, err
	}
	r.cache(sum, module)
	return p, created, nil
}

// RegisterGoPlugin verifies a go-plugin binary against sha256, inspects and
// records it.
func (r *Registry) RegisterGoPlugin(ctx context.Context, path, sum string) (p *Plugin, created bool, err error) {
	sum = strings.ToLower(strings.TrimSpace(sum))
	if len(sum) != 64 {
		return nil, false, invalid("/sha256", "want 64 hex digits")
	}
	if path == "" {
		return nil, false, invalid("/path", "path is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, invalid("/path", "read binary: "+err.Error())
	}
	if got := checksum(data); got != sum {
		return nil, false, invalid("/sha256", "the binary's sha256 is "+got)
	}
	info, err := r.runtime.InspectGoPlugin(ctx, path, sum)
	if err != nil {
		return nil, false, invalid("/path", "start plugin: "+err.Error())
	}
	p = &Plugin{Type: TypeGoPlugin, SHA256: sum, Size: int64(len(data)), Path: path}
	if created, err = r.create(ctx, p, info, nil); err != nil || created || p.Path == path {
		return p, created, err
	}
	// The same binary registered before from elsewhere: when that copy is
	// gone or changed (a checkout moved, a bundle rebuilt elsewhere), this
	// one takes its place; a copy still intact keeps the record.
	if old, err := os.ReadFile(p.Path); err == nil && checksum(old) == sum {
		return p, false, nil
	}
	if err := r.store.SetPluginPath(ctx, p.Name, p.Version, path); err != nil {
		return nil, false, fmt.Errorf("move plugin %s to %s: %w", p.Ref(), path, err)
	}
	p.Path = path
	return p, false, nil
}

func (r *Registry) create(ctx context.Context, p *Plugin, info *pdk.Info, module []byte) (bool, error) {
	if err := Validate(info); err != nil {
		return false, err
	}
	p.Name, p.Version, p.Info = info.Name, info.Version, info
	p.PublishedAt = r.now().UTC().Truncate(time.Millisecond)
	existing, err := r.store.CreatePlugin(ctx, p, module)
	if err != nil {
		return false, fmt.Errorf("record plugin %s: %w", p.Ref(), err)
	}
	if existing == nil {
		return true, nil
	}
	if existing.SHA256 != p.SHA256 || existing.Type != p.Type {
		return false, fmt.Errorf("%w: %s has sha256 %s", ErrVersionConflict, existing.Ref(), existing.SHA256)
	}
	*p = *existing
	return false, nil
}

// Validate checks a plugin's info: the pdk rules, plus blueprints the
// catalog accepts (never protected ones: those are the access layer's)
// and mappings that compile.
func Validate(info *pdk.Info) error {
	if info == nil {
		return invalid("/", "the info export returned nothing")
	}
	var vs []catalog.Violation
	if err := info.Validate(); err != nil {
		for _, e := range unjoin(err) {
			vs = append(vs, catalog.Violation{Path: "/info", Message: e.Error()})
		}
	}
	for i, raw := range info.Blueprints {
		bp, err := catalog.DecodeBlueprint(raw)
		if err == nil && catalog.IsProtected(bp.Identifier) {
			err = fmt.Errorf("a plugin never declares protected blueprints (%q prefix)", catalog.ProtectedPrefix)
		}
		if err == nil {
			_, err = catalog.CompileBlueprint(bp)
		}
		if err != nil {
			vs = append(vs, catalog.Violation{Path: fmt.Sprintf("/info/blueprints/%d", i), Message: err.Error()})
		}
	}
	// The config and action inputs schemas must compile: installations and
	// action runs are validated against them.
	if len(info.Config) > 0 {
		vs = append(vs, schemaViolations(info.Config, "/info/config")...)
	}
	for i, a := range info.Actions {
		if len(a.Inputs) > 0 {
			vs = append(vs, schemaViolations(a.Inputs, fmt.Sprintf("/info/actions/%d/inputs", i))...)
		}
	}
	if _, err := mapping.Compile(info.Mappings.Resources); err != nil {
		var verr *catalog.ValidationError
		if errors.As(err, &verr) {
			for _, v := range verr.Violations {
				vs = append(vs, catalog.Violation{Path: "/info/mappings" + v.Path, Message: v.Message})
			}
		}
	}
	if len(vs) > 0 {
		return &catalog.ValidationError{Message: "invalid plugin module", Violations: vs}
	}
	return nil
}

// schemaViolations returns why raw is not a valid JSON Schema, at base.
func schemaViolations(raw json.RawMessage, base string) []catalog.Violation {
	_, err := schema.Compile(raw, base)
	if err == nil {
		return nil
	}
	var verr *catalog.ValidationError
	if errors.As(err, &verr) {
		return verr.Violations
	}
	return []catalog.Violation{{Path: base, Message: err.Error()}}
}

// unjoin flattens the errors.Join tree under pdk's "invalid plugin info" wrap.
func unjoin(err error) []error {
	for {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
		next := errors.Unwrap(err)
		if next == nil {
			return []error{err}
		}
		err = next
	}
}

func invalid(path, msg string) error {
	return &catalog.ValidationError{Message: "invalid plugin module", Violations: []catalog.Violation{{Path: path, Message: msg}}}
}

// Get returns one plugin version.
func (r *Registry) Get(ctx context.Context, name, version string) (*Plugin, error) {
	return r.store.Plugin(ctx, name, version)
}

// List returns every plugin version, by name then newest version first.
func (r *Registry) List(ctx context.Context) ([]*Plugin, error) {
	ps, err := r.store.Plugins(ctx)
	if err != nil {
		return nil, err
	}
	sortPlugins(ps)
	return ps, nil
}

// Resolve finds "name@version", or the newest version of "name".
func (r *Registry) Resolve(ctx context.Context, ref string) (*Plugin, error) {
	name, version, pinned := strings.Cut(ref, "@")
	if pinned {
		return r.store.Plugin(ctx, name, version)
	}
	ps, err := r.store.Plugins(ctx)
	if err != nil {
		return nil, err
	}
	var best *Plugin
	for _, p := range ps {
		if p.Name == name && (best == nil || CompareVersions(p.Version, best.Version) > 0) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return best, nil
}

// Load starts plugin p for one installation with sandbox sb and host
// functions h.
func (r *Registry) Load(ctx context.Context, p *Plugin, sb host.Sandbox, h pdk.Host, opts LoadOptions) (host.Integration, error) {
	var module []byte
	if p.Type == TypeWasm {
		var err error
		if module, err = r.module(ctx, p.SHA256); err != nil {
			return nil, err
		}
	}
	it, err := r.runtime.Load(ctx, p, module, sb, h, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", p.Ref(), err)
	}
	return it, nil
}

func (r *Registry) module(ctx context.Context, sum string) ([]byte, error) {
	r.mu.Lock()
	m, ok := r.modules[sum]
	r.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := r.store.Module(ctx, sum)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", sum, err)
	}
	if checksum(m) != sum {
		return nil, fmt.Errorf("module %s: stored bytes do not match their sha256", sum)
	}
	r.cache(sum, m)
	return m, nil
}

func (r *Registry) cache(sum string, module []byte) {
	r.mu.Lock()
	r.modules[sum] = module
	r.mu.Unlock()
}

func checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
