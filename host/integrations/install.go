package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/mapping"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/host/schema"
	"github.com/portico-dev/portico/pdk"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// Bounds of an installation's settings.
const (
	minSchedule     = time.Second
	maxMemoryMiB    = 4096
	maxTimeout      = 10 * time.Minute
	maxConcurrency  = 64
	minWasmMemoryMB = 7
)

// Put installs or updates installation id. The plugin is loaded, the
// plugin's default blueprints are created when missing, and the new
// version replaces the live one without a restart. created reports a new
// installation.
func (m *Manager) Put(ctx context.Context, id string, spec Spec) (*Status, bool, error) {
	if !idPattern.MatchString(id) {
		return nil, false, invalid("/id", "want 1-100 letters, digits, '_', '.' or '-'")
	}
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	existing, err := m.store.Installation(ctx, id)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return nil, false, err
	}
	if spec.Secrets == nil && existing != nil {
		spec.Secrets = existing.Spec.Secrets
	}
	if err := checkBlueprintsGrant(ctx, spec, existing); err != nil {
		return nil, false, err
	}
	p, err := m.reg.Resolve(ctx, spec.Plugin)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return nil, false, invalid("/plugin", fmt.Sprintf("no published plugin %q", spec.Plugin))
	case err != nil:
		return nil, false, err
	}
	if err := validateSpec(&spec, p); err != nil {
		return nil, false, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	inst := &Installation{ID: id, Spec: spec, Plugin: p.Ref(), Revision: newID(), CreatedAt: now, UpdatedAt: now}
	if existing != nil {
		inst.CreatedAt = existing.CreatedAt
	}
	l, err := m.build(ctx, inst, p)
	if err != nil {
		var verr *catalog.ValidationError
		if errors.As(err, &verr) {
			return nil, false, err
		}
		return nil, false, invalid("/plugin", "cannot start "+p.Ref()+": "+err.Error())
	}
	if err := m.createBlueprints(systemCtx(ctx, id), p.Info); err != nil {
		_ = l.close(context.WithoutCancel(ctx))
		return nil, false, err
	}
	// The durable schedule first: when the workflow engine refuses, the
	// write is rejected and changes nothing. (An installation without a
	// schedule before and after never needs the engine.)
	if spec.Schedule != "" || existing != nil && existing.Spec.Schedule != "" {
		if err := m.applySchedule(ctx, id, spec.Schedule); err != nil {
			_ = l.close(context.WithoutCancel(ctx))
			return nil, false, err
		}
	}
	if err := m.store.PutInstallation(ctx, inst); err != nil {
		_ = l.close(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("store integration %s: %w", id, err)
	}
	m.swap(id, l)
	m.wakeWatches()
	m.log.Info("integration installed", "integration", id, "plugin", p.Ref(), "secrets", spec.Secrets)
	if existing == nil && !m.opts.NoInstallResync {
		if _, err := m.StartResync(context.WithoutCancel(ctx), id, TriggerInstall); err != nil {
			m.log.Warn("first resync", "integration", id, "err", err)
		}
	}
	st, err := m.status(ctx, inst)
	return st, existing == nil, err
}

// checkBlueprintsGrant requires an admin to widen an installation's lane
// (the API lets only admins write installations at all; this holds for
// any other caller of Put too).
func checkBlueprintsGrant(ctx context.Context, spec Spec, existing *Installation) error {
	var had []string
	if existing != nil {
		had = existing.Spec.Blueprints
	}
	for _, bp := range spec.Blueprints {
		if !slices.Contains(had, bp) {
			return access.RequireAdmin(catalog.ActorFrom(ctx), "list blueprints on an integration")
		}
	}
	return nil
}

// configViolations validates an installation's config (absent: {})
// against the plugin's config schema; without a schema it must be an object.
func configViolations(config json.RawMessage, p *registry.Plugin) []catalog.Violation {
	if len(config) == 0 || string(config) == "null" {
		config = json.RawMessage(`{}`)
	}
	if len(p.Info.Config) == 0 {
		if config[0] != '{' {
			return []catalog.Violation{{Path: "/config", Message: "must be a JSON object"}}
		}
		return nil
	}
	s, err := schema.Compile(p.Info.Config, "")
	if err != nil {
		return []catalog.Violation{{Path: "/config", Message: p.Ref() + " declares an invalid config schema: " + err.Error()}}
	}
	return s.Validate(config, "/config")
}

func invalid(path, msg string) error {
	return &catalog.ValidationError{Message: "invalid integration", Violations: []catalog.Violation{{Path: path, Message: msg}}}
}

// validateSpec checks spec against plugin p, normalising the threshold.
func validateSpec(spec *Spec, p *registry.Plugin) error {
	var vs []catalog.Violation
	bad := func(path, format string, args ...any) {
		vs = append(vs, catalog.Violation{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if spec.Schedule != "" {
		if d, err := time.ParseDuration(spec.Schedule); err != nil {
			bad("/schedule", "want a duration such as \"15m\"")
		} else if d < minSchedule {
			bad("/schedule", "must be at least %s", minSchedule)
		}
	}
	if t := spec.DeletionThreshold; t != nil && (*t < 0 || *t > 1) {
		bad("/deletionThreshold", "must be between 0 and 1")
	}
	if spec.DeletionThreshold == nil {
		t := DefaultDeletionThreshold
		spec.DeletionThreshold = &t
	}
	lim := spec.Limits
	switch {
	case lim.MemoryMiB < 0 || lim.MemoryMiB > maxMemoryMiB:
		bad("/limits/memoryMiB", "must be between %d and %d", minWasmMemoryMB, maxMemoryMiB)
	case lim.MemoryMiB > 0 && lim.MemoryMiB < minWasmMemoryMB && p.Type == registry.TypeWasm:
		bad("/limits/memoryMiB", "a Wasm plugin needs at least %d MiB", minWasmMemoryMB)
	}
	if lim.TimeoutMs < 0 || time.Duration(lim.TimeoutMs)*time.Millisecond > maxTimeout {
		bad("/limits/timeoutMs", "must be between 1 and %d", maxTimeout.Milliseconds())
	}
	if lim.Concurrency < 0 || lim.Concurrency > maxConcurrency {
		bad("/limits/concurrency", "must be between 1 and %d", maxConcurrency)
	}
	declared := p.Info.Secrets
	for _, name := range spec.Secrets.Names() {
		if !slices.Contains(declared, name) {
			bad("/secrets/"+name, "%s does not declare this secret (it declares %v)", p.Ref(), declared)
		}
	}
	for i, a := range spec.Auth {
		if a.Header == "" || len(a.Hosts) == 0 {
			bad(fmt.Sprintf("/auth/%d", i), "needs hosts and header")
		}
		for _, s := range pdk.Placeholders(a.Template) {
			if !slices.Contains(declared, s) {
				bad(fmt.Sprintf("/auth/%d/template", i), "uses undeclared secret %q", s)
			}
		}
	}
	for i, bp := range spec.Blueprints {
		switch {
		case catalog.IsProtected(bp):
			bad(fmt.Sprintf("/blueprints/%d", i), "protected blueprints (%q prefix) are never written by integrations", catalog.ProtectedPrefix)
		case bp == "":
			bad(fmt.Sprintf("/blueprints/%d", i), "required")
		}
	}
	if spec.Mapping != nil {
		kinds := map[string]bool{}
		for _, k := range p.Info.Kinds {
			kinds[k.Kind] = true
		}
		for i, r := range spec.Mapping.Resources {
			if !kinds[r.Kind] {
				bad(fmt.Sprintf("/mapping/resources/%d/kind", i), "%s has no kind %q", p.Ref(), r.Kind)
			}
		}
		if _, err := mapping.Compile(spec.Mapping.Resources); err != nil {
			var verr *catalog.ValidationError
			if errors.As(err, &verr) {
				for _, v := range verr.Violations {
					vs = append(vs, catalog.Violation{Path: "/mapping" + v.Path, Message: v.Message})
				}
			}
		}
	}
	vs = append(vs, configViolations(spec.Config, p)...)
	if len(vs) > 0 {
		return &catalog.ValidationError{Message: "invalid integration", Violations: vs}
	}
	return nil
}

// effectiveMappings returns the plugin's default mappings with the kinds an
// override names replaced by the override's mappings.
func effectiveMappings(p *registry.Plugin, override *pdk.Mappings) []pdk.ResourceMapping {
	if override == nil {
		return p.Info.Mappings.Resources
	}
	replaced := map[string]bool{}
	for _, r := range override.Resources {
		replaced[r.Kind] = true
	}
	var out []pdk.ResourceMapping
	for _, r := range p.Info.Mappings.Resources {
		if !replaced[r.Kind] {
			out = append(out, r)
		}
	}
	return append(out, override.Resources...)
}

// createBlueprints creates the plugin's default blueprints that do not
// exist yet, in an order that satisfies their relations.
func (m *Manager) createBlueprints(ctx context.Context, info *pdk.Info) error {
	var pending []*catalog.Blueprint
	for i, raw := range info.Blueprints {
		bp, err := catalog.DecodeBlueprint(raw)
		if err != nil {
			return fmt.Errorf("plugin blueprint %d: %w", i, err)
		}
		if _, err := m.cat.GetBlueprint(ctx, bp.Identifier); err == nil {
			continue
		} else if !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
		pending = append(pending, bp)
	}
	for len(pending) > 0 {
		var next []*catalog.Blueprint
		var lastErr error
		for _, bp := range pending {
			_, _, err := m.cat.PutBlueprint(ctx, bp, true)
			switch {
			case err == nil, errors.Is(err, catalog.ErrAlreadyExists):
			default:
				next, lastErr = append(next, bp), err
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("create blueprint %s: %w", next[0].Identifier, lastErr)
		}
		pending = next
	}
	return nil
}

// Get returns the status of one installation.
func (m *Manager) Get(ctx context.Context, id string) (*Status, error) {
	inst, err := m.store.Installation(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.status(ctx, inst)
}

// List returns the status of every installation, by id.
func (m *Manager) List(ctx context.Context) ([]*Status, error) {
	all, err := m.store.Installations(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *Installation) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	out := make([]*Status, 0, len(all))
	for _, inst := range all {
		st, err := m.status(ctx, inst)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (m *Manager) status(ctx context.Context, inst *Installation) (*Status, error) {
	s := inst.Spec
	st := &Status{
		ID: inst.ID, Plugin: inst.Plugin, Config: s.Config, Mapping: s.Mapping, Blueprints: s.Blueprints, Auth: s.Auth,
		Schedule: s.Schedule, AllowedHosts: s.AllowedHosts, AllowPrivateNetworks: s.AllowPrivateNetworks, Limits: s.Limits,
		SecretsSet: s.Secrets.Names(), Datasource: Datasource(inst.ID),
		CreatedAt: inst.CreatedAt, UpdatedAt: inst.UpdatedAt,
	}
	if st.AllowedHosts == nil {
		st.AllowedHosts = []string{}
	}
	if st.Blueprints == nil {
		st.Blueprints = []string{}
	}
	if s.DeletionThreshold != nil {
		st.DeletionThreshold = *s.DeletionThreshold
	}
	total, err := m.countEntities(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	st.Entities = total
	if st.Watch, err = m.store.WatchStatus(ctx, inst.ID); err != nil {
		return nil, err
	}
	sid, err := m.store.LastSync(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	if sid != "" {
		sync, err := m.store.Sync(ctx, inst.ID, sid)
		switch {
		case errors.Is(err, catalog.ErrNotFound): // expired
		case err != nil:
			return nil, err
		default:
			st.LastSync = sync
			if sync.Status == SyncFailed && len(sync.Errors) > 0 {
				st.LastError = sync.Errors[len(sync.Errors)-1].Message
			}
		}
	}
	return st, nil
}

// Delete removes installation id. Its entities stay unless purge is set, in
// which case every entity with its datasource is deleted; it returns how
// many were.
func (m *Manager) Delete(ctx context.Context, id string, purge bool) (int, error) {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	inst, err := m.store.Installation(ctx, id)
	if err != nil {
		return 0, err
	}
	if inst.Spec.Schedule != "" {
		if err := m.applySchedule(ctx, id, ""); err != nil {
			return 0, err
		}
	}
	if err := m.store.DeleteInstallation(ctx, id); err != nil {
		err = fmt.Errorf("delete integration %s: %w", id, err)
		if inst.Spec.Schedule != "" { // still installed: keep its resyncs running
			if rerr := m.applySchedule(ctx, id, inst.Spec.Schedule); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restore its schedule: %w", rerr))
			}
		}
		return 0, err
	}
	m.swap(id, nil)
	m.limiter.Forget(id)
	if !purge {
		return 0, nil
	}
	refs, err := m.entityRefs(ctx, id, time.Time{})
	if err != nil {
		return 0, err
	}
	deleted, errs := m.deleteEntities(systemCtx(ctx, id), refs)
	if len(errs) > 0 {
		return deleted, fmt.Errorf("purge integration %s: %w", id, errors.Join(errs...))
	}
	return deleted, nil
}
