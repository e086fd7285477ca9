package integrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host"
	"github.com/portico-dev/portico/host/mapping"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/ratelimit"
	"github.com/portico-dev/portico/pdk"
)

// Options configure a Manager; zero fields take the defaults noted.
type Options struct {
	Catalog  *catalog.Service
	Registry *registry.Registry
	Store    Store
	// KV holds plugins' small per-installation state.
	KV     host.KVStore
	Logger *slog.Logger
	// Scheduler keeps the resync schedules durably: installs and deletes
	// update it, Run reconciles it instead of running its ticker loop
	// (nil: the ticker loop).
	Scheduler Scheduler
	// ScheduleTick is how often schedules are checked (default 5s).
	ScheduleTick time.Duration
	// WebhookRate and WebhookBurst size each installation's webhook token
	// bucket (default 500/s, burst 1000: a busy GitHub organisation or
	// PagerDuty account sends hundreds a second at peaks).
	WebhookRate  float64
	WebhookBurst int
	// Writers is how many catalog writes a resync runs at once (default 4).
	Writers int
	// SyncRetention is how long sync records are kept (default 7 days).
	SyncRetention time.Duration
	// NoInstallResync: a new installation does not start its first resync
	// by itself (for callers, such as tests, that resync explicitly).
	NoInstallResync bool
	// WatchLease is how long a process's watch lease lasts unrefreshed: how
	// soon another replica takes over the watch of a process that died
	// (default 30s).
	WatchLease time.Duration
}

// Manager runs the installed integrations of this process. It is safe for
// concurrent use; several replicas may share one Store.
type Manager struct {
	opts    Options
	cat     *catalog.Service
	reg     *registry.Registry
	store   Store
	log     *slog.Logger
	limiter *ratelimit.Limiter // webhook buckets, of existing installations only
	// scheduler keeps durable resync schedules (nil: Run's ticker loop).
	scheduler Scheduler

	ctx    context.Context // lives until Close: background syncs
	cancel context.CancelFunc
	wg     sync.WaitGroup

	watchWake chan struct{} // an install asks the watch supervisor to look now

	loadMu sync.Mutex // serialises installs and (re)loads
	mu     sync.Mutex
	live   map[string]*live
}

// New returns a Manager; call Close to stop its syncs and plugins.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ScheduleTick <= 0 {
		opts.ScheduleTick = 5 * time.Second
	}
	if opts.WebhookRate <= 0 {
		opts.WebhookRate = 500
	}
	if opts.WebhookBurst <= 0 {
		opts.WebhookBurst = 1000
	}
	if opts.Writers <= 0 {
		opts.Writers = 4
	}
	if opts.WatchLease <= 0 {
		opts.WatchLease = 30 * time.Second
	}
	if opts.SyncRetention <= 0 {
		opts.SyncRetention = 7 * 24 * time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts: opts, cat: opts.Catalog, reg: opts.Registry, store: opts.Store, log: opts.Logger, scheduler: opts.Scheduler,
		limiter: ratelimit.New(opts.WebhookRate, opts.WebhookBurst),
		ctx:     ctx, cancel: cancel, live: map[string]*live{}, watchWake: make(chan struct{}, 1),
	}
}

// Close cancels running syncs, waits for them and closes every plugin.
func (m *Manager) Close(ctx context.Context) error {
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close integrations: %w", ctx.Err())
	}
	m.mu.Lock()
	all := m.live
	m.live = map[string]*live{}
	m.mu.Unlock()
	var errs []error
	for _, l := range all {
		errs = append(errs, l.close(ctx))
	}
	return errors.Join(errs...)
}

// live is a loaded installation: its plugin, host functions, mapping and
// the actor its catalog writes and reads run as. It is reference counted
// so that a swap closes the old plugin only once the calls using it are
// done.
type live struct {
	inst        *Installation
	plugin      *registry.Plugin
	integration host.Integration
	services    *host.Services
	mapper      *mapping.Mapper
	actor       catalog.Actor // catalog.IntegrationActor with its lane

	refs    int  // guarded by Manager.mu
	retired bool // guarded by Manager.mu
}

func (l *live) close(ctx context.Context) error {
	err := l.integration.Close(ctx)
	l.services.Close()
	return err
}

// acquire returns the live integration of id, loading (or reloading, when
// the stored installation changed, possibly on another replica) it first.
// Call release when done.
func (m *Manager) acquire(ctx context.Context, id string) (*live, func(), error) {
	inst, err := m.store.Installation(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return m.load(ctx, inst)
}

// load is acquire for an installation already read.
func (m *Manager) load(ctx context.Context, inst *Installation) (*live, func(), error) {
	id := inst.ID
	if l, ok := m.take(id, inst.Revision); ok {
		return l, m.releaser(l), nil
	}
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if l, ok := m.take(id, inst.Revision); ok {
		return l, m.releaser(l), nil
	}
	p, err := m.reg.Resolve(ctx, inst.Plugin)
	if err != nil {
		return nil, nil, fmt.Errorf("integration %s: %w", id, err)
	}
	l, err := m.build(ctx, inst, p)
	if err != nil {
		return nil, nil, fmt.Errorf("integration %s: %w", id, err)
	}
	m.swap(id, l)
	l, _ = m.take(id, inst.Revision)
	return l, m.releaser(l), nil
}

// take returns a reference to the live integration of id at revision.
func (m *Manager) take(id, revision string) (*live, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.live[id]
	if l == nil || l.inst.Revision != revision {
		return nil, false
	}
	l.refs++
	return l, true
}

func (m *Manager) releaser(l *live) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			l.refs--
			closeNow := l.retired && l.refs == 0
			m.mu.Unlock()
			if closeNow {
				m.closeLater(l)
			}
		})
	}
}

// swap makes l the live integration of its installation (nil: none) and
// retires the previous one.
func (m *Manager) swap(id string, l *live) {
	m.mu.Lock()
	old := m.live[id]
	if l == nil {
		delete(m.live, id)
	} else {
		m.live[id] = l
	}
	closeNow := false
	if old != nil && old != l {
		old.retired = true
		closeNow = old.refs == 0
	}
	m.mu.Unlock()
	if closeNow {
		m.closeLater(old)
	}
}

func (m *Manager) closeLater(l *live) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.close(ctx); err != nil {
			m.log.Warn("close retired plugin", "integration", l.inst.ID, "plugin", l.plugin.Ref(), "err", err)
		}
	}()
}

// build loads plugin p for inst.
func (m *Manager) build(ctx context.Context, inst *Installation, p *registry.Plugin) (*live, error) {
	mapper, err := mapping.Compile(effectiveMappings(p, inst.Spec.Mapping))
	if err != nil {
		return nil, err
	}
	actor := catalog.IntegrationActor(Datasource(inst.ID), lane(p.Info, inst.Spec.Blueprints))
	sb := sandbox(inst, p)
	services := host.NewServices(inst.ID, sb, host.Deps{
		KV: m.opts.KV, Catalog: catalogReader{cat: m.cat, actor: actor}, Logger: m.log,
	})
	it, err := m.reg.Load(ctx, p, sb, services, registry.LoadOptions{Uninterruptible: inst.Spec.Limits.Uninterruptible})
	if err != nil {
		services.Close()
		return nil, err
	}
	return &live{inst: inst, plugin: p, integration: it, services: services, mapper: mapper, actor: actor}, nil
}

func sandbox(inst *Installation, p *registry.Plugin) host.Sandbox {
	s := inst.Spec
	auth := p.Info.Auth
	if s.Auth != nil {
		auth = s.Auth
	}
	auth = withBaseURLHost(auth, s.Config)
	return host.Sandbox{
		MemoryMiB:    s.Limits.MemoryMiB,
		Timeout:      time.Duration(s.Limits.TimeoutMs) * time.Millisecond,
		Concurrency:  s.Limits.Concurrency,
		AllowedHosts: s.AllowedHosts,
		Secrets:      s.Secrets,
		Auth:         auth,

		AllowPrivateNetworks: s.AllowPrivateNetworks,
		RevealSecrets:        p.Type == registry.TypeGoPlugin, // native code, trusted

	}.WithDefaults()
}

// withBaseURLHost replaces each pdk.AuthHostBaseURL entry of the templates'
// hosts by the host[:port] of config's "baseUrl" (dropped when there is
// none), without changing the templates it was given.
func withBaseURLHost(auth []pdk.AuthTemplate, config json.RawMessage) []pdk.AuthTemplate {
	var cfg struct {
		BaseURL string `json:"baseUrl"`
	}
	_ = json.Unmarshal(config, &cfg) // a config without baseUrl: the entry matches nothing
	base := ""
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Host != "" {
		base = u.Host
	}
	out := make([]pdk.AuthTemplate, 0, len(auth))
	for _, a := range auth {
		if slices.Contains(a.Hosts, pdk.AuthHostBaseURL) {
			hosts := slices.DeleteFunc(slices.Clone(a.Hosts), func(h string) bool { return h == pdk.AuthHostBaseURL })
			if base != "" {
				hosts = append(hosts, base)
			}
			a.Hosts = hosts
		}
		out = append(out, a)
	}
	return out
}

// as returns ctx acting as the installation: its writes carry the
// integration's datasource and stay in its lane.
func (l *live) as(ctx context.Context) context.Context {
	return catalog.WithActor(ctx, l.actor)
}

// systemCtx returns ctx acting as the system on behalf of installation id,
// for bookkeeping the plugin does not drive (its blueprints, reads of its
// own entities by datasource, a purge an admin asked for).
func systemCtx(ctx context.Context, id string) context.Context {
	return catalog.WithActor(ctx, catalog.SystemActor(Datasource(id)))
}

// lane returns the blueprints an installation writes and reads: those its
// plugin declares and those its installation lists, never protected ones.
func lane(info *pdk.Info, listed []string) []string {
	var out []string
	for _, raw := range info.Blueprints {
		var bp struct {
			Identifier string `json:"identifier"`
		}
		if json.Unmarshal(raw, &bp) == nil {
			out = append(out, bp.Identifier)
		}
	}
	out = append(out, listed...)
	out = slices.DeleteFunc(out, func(bp string) bool { return bp == "" || catalog.IsProtected(bp) })
	slices.Sort(out)
	return slices.Compact(out)
}

// checkLane refuses a write, delete or read of blueprint by a.
func checkLane(a catalog.Actor, blueprint string) error {
	if !a.InLane(blueprint) {
		return fmt.Errorf("%w: blueprint %s is not among %v (the plugin's blueprints and those the installation lists)", ErrOutsideLane, blueprint, a.Lane)
	}
	return nil
}

// catalogReader gives a plugin read-only access to its lane
// (portico_catalog_get): entities of other blueprints, and read.ownedOnly
// entities it did not write, read as null, as if they did not exist.
type catalogReader struct {
	cat   *catalog.Service
	actor catalog.Actor
}

func (r catalogReader) GetEntity(ctx context.Context, blueprint, identifier string) (json.RawMessage, error) {
	if checkLane(r.actor, blueprint) != nil {
		return nil, nil
	}
	ctx = catalog.WithActor(ctx, r.actor)
	bp, err := r.cat.GetBlueprint(ctx, blueprint)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := r.cat.GetEntity(ctx, catalog.Ref{Blueprint: blueprint, Identifier: identifier})
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p := bp.Permissions; p != nil && p.Read != nil && p.Read.OwnedOnly && e.Datasource != r.actor.Datasource {
		return nil, nil
	}
	return json.Marshal(e)
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%s", time.Now().UnixMilli(), hex.EncodeToString(b))
}
