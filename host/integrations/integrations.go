// Package integrations runs installed integrations: an installation binds a
// registry plugin to config, secrets, a mapping, a sandbox and a resync
// schedule. The Manager keeps one live host.Integration per installation
// (swapped without restart when the installation changes), runs full
// resyncs with reconciliation, applies webhook deliveries and write-back
// actions through the installation's mapping, and schedules resyncs.
//
// Every entity it writes carries the datasource "integration:<id>". A plugin
// is untrusted code: an installation writes, deletes and reads (through
// portico_catalog_get) only entities of its lane, the blueprints its plugin
// declares plus those an admin lists on the installation, never protected
// ones (_user, _team), and never changes entities another installation
// owns. The Manager checks this before every write, and the catalog's
// Authorizer checks it again for the installation's actor
// (catalog.IntegrationActor).
package integrations

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/pdk"

	"github.com/portico-dev/portico/internal/errkind"
)

// Spec is an installation as a client writes it (PUT /api/v1/integrations/{id}).
type Spec struct {
	// Plugin is "name@version", or "name" for the newest published version.
	Plugin string          `json:"plugin"`
	Config json.RawMessage `json:"config,omitempty"`
	// Secrets are write-only; nil keeps the stored secrets, {} clears them.
	Secrets Secrets `json:"secrets,omitempty"`
	// Mapping overrides the plugin's default mappings kind by kind.
	Mapping *pdk.Mappings `json:"mapping,omitempty"`
	// Blueprints are further blueprints (beside those the plugin declares)
	// the installation may write and read, e.g. for a mapping override
	// (admins only; never protected blueprints).
	Blueprints []string `json:"blueprints,omitempty"`
	// Auth replaces the plugin's auth templates (e.g. to use a proxy).
	Auth              []pdk.AuthTemplate `json:"auth,omitempty"`
	Schedule          string             `json:"schedule,omitempty"`
	AllowedHosts      []string           `json:"allowedHosts,omitempty"`
	Limits            Limits             `json:"limits"`
	DeletionThreshold *float64           `json:"deletionThreshold,omitempty"`

	// AllowPrivateNetworks lets the allowed hosts resolve to private and
	// loopback addresses (host.Sandbox.AllowPrivateNetworks; link-local
	// ones stay refused).
	AllowPrivateNetworks bool `json:"allowPrivateNetworks,omitempty"`
}

// Limits are an installation's sandbox limits; zero means the default.
type Limits struct {
	MemoryMiB   int `json:"memoryMiB,omitempty"`
	TimeoutMs   int `json:"timeoutMs,omitempty"`
	Concurrency int `json:"concurrency,omitempty"`
	// Uninterruptible runs a trusted Wasm plugin without termination
	// checks (3–5× faster Go guests; see registry.LoadOptions).
	Uninterruptible bool `json:"uninterruptible,omitempty"`
}

// Secrets maps secret names to values. It never prints or logs its values.
type Secrets map[string]string

// LogValue implements slog.LogValuer: only the names are logged.
func (s Secrets) LogValue() slog.Value { return slog.AnyValue(s.Names()) }

// String implements fmt.Stringer without the values.
func (s Secrets) String() string { return fmt.Sprintf("secrets%v", s.Names()) }

// Names returns the secret names, sorted.
func (s Secrets) Names() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DefaultDeletionThreshold is the largest share of an integration's entities
// a resync deletes when the installation does not say.
const DefaultDeletionThreshold = 0.5

// Installation is the stored form of an installation (with its secrets).
type Installation struct {
	ID   string `json:"id"`
	Spec Spec   `json:"spec"`
	// Plugin is the resolved "name@version".
	Plugin string `json:"resolvedPlugin"`
	// Revision changes with every write; live integrations reload on change.
	Revision  string    `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Datasource is what entities written by installation id carry.
func Datasource(id string) string { return catalog.IntegrationDatasourcePrefix + id }

// Status is an installation as the API shows it: never any secret value.
type Status struct {
	ID                string             `json:"id"`
	Plugin            string             `json:"plugin"`
	Config            json.RawMessage    `json:"config,omitempty"`
	Mapping           *pdk.Mappings      `json:"mapping,omitempty"`
	Blueprints        []string           `json:"blueprints"`
	Auth              []pdk.AuthTemplate `json:"auth,omitempty"`
	Schedule          string             `json:"schedule,omitempty"`
	AllowedHosts      []string           `json:"allowedHosts"`
	Limits            Limits             `json:"limits"`
	DeletionThreshold float64            `json:"deletionThreshold"`
	// SecretsSet names the secrets that have a value.
	SecretsSet []string `json:"secretsSet"`
	Datasource string   `json:"datasource"`
	Entities   int      `json:"entities"`
	LastSync   *Sync    `json:"lastSync"`
	LastError  string   `json:"lastError,omitempty"`
	// Watch is the live watch of a plugin that pushes changes (nil when
	// none runs).
	Watch     *WatchStatus `json:"watch,omitempty"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`

	AllowPrivateNetworks bool `json:"allowPrivateNetworks"`
}

// Sync states.
const (
	SyncRunning   = "running"
	SyncSucceeded = "succeeded"
	SyncFailed    = "failed"
)

// maxSyncErrors caps the errors a sync keeps (ErrorCount counts them all).
const maxSyncErrors = 100

// Sync is the progress and outcome of one full resync.
type Sync struct {
	ID          string `json:"id"`
	Integration string `json:"integration"`
	Plugin      string `json:"plugin"`
	Trigger     string `json:"trigger"`
	Status      string `json:"status"`
	Items       int    `json:"items"`
	Pages       int    `json:"pages"`
	Upserts     int    `json:"upserts"`
	Unchanged   int    `json:"unchanged"`
	// Kept counts entities changed since the sync started (by a webhook,
	// the watch or an action): newer than the listed state, not rewritten.
	Kept            int         `json:"kept"`
	Deletes         int         `json:"deletes"`
	Errors          []SyncError `json:"errors"`
	ErrorCount      int         `json:"errorCount"`
	DeletionSkipped string      `json:"deletionSkipped"`
	StartedAt       time.Time   `json:"startedAt"`
	EndedAt         *time.Time  `json:"endedAt,omitempty"`
}

// SyncError is one problem of a sync: a page that failed, an item that did
// not map, an entity the catalog refused.
type SyncError struct {
	Kind       string `json:"kind,omitempty"`
	Blueprint  string `json:"blueprint,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	Message    string `json:"message"`
}

func (s *Sync) addError(e SyncError) {
	s.ErrorCount++
	if len(s.Errors) < maxSyncErrors {
		s.Errors = append(s.Errors, e)
	}
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such installation or sync.
	ErrNotFound = fmt.Errorf("integration %w", catalog.ErrNotFound)
	// ErrWebhookRejected: the plugin did not verify a webhook delivery.
	ErrWebhookRejected = errkind.New(errkind.Unauthenticated, "webhook rejected", errkind.Code("webhook_rejected"))
	// ErrNoWebhook: the plugin does not take webhooks.
	ErrNoWebhook = errkind.New(errkind.NotFound, "integration does not accept webhooks", errkind.Code("webhook_not_supported"))
	// ErrActionFailed: the plugin's act export returned an error.
	ErrActionFailed = errkind.New(errkind.Invalid, "action failed", errkind.Code("action_failed"))
	// ErrPluginFailed: a plugin call failed on the host side (crash, timeout).
	ErrPluginFailed = errkind.New(errkind.Upstream, "plugin call failed", errkind.Code("plugin_failed"))
	// ErrOutsideLane: a plugin's write, delete or read names a blueprint
	// outside its installation's lane or an entity another installation
	// owns.
	ErrOutsideLane = fmt.Errorf("%w: outside the integration's lane", catalog.ErrForbidden)
	// ErrSyncRunning: a resync of the installation is running elsewhere.
	ErrSyncRunning = fmt.Errorf("%w: a resync is already running", catalog.ErrConflict)
)

// RateLimitError reports a webhook refused by the per-integration rate limit.
type RateLimitError struct {
	RetryAfter time.Duration
}

// Kind is errkind.RateLimited.
func (e *RateLimitError) Kind() errkind.Kind { return errkind.RateLimited }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("webhook rate limit exceeded, retry after %s", e.RetryAfter)
}

// Store persists installations, sync progress and sync locks. Every
// replica reads the same store, so any of them can answer for any sync.
type Store interface {
	PutInstallation(ctx context.Context, inst *Installation) error
	// Installation returns one installation or an error wrapping ErrNotFound.
	Installation(ctx context.Context, id string) (*Installation, error)
	Installations(ctx context.Context) ([]*Installation, error)
	// DeleteInstallation removes the installation, its plugin state (KV)
	// and its last-sync pointer.
	DeleteInstallation(ctx context.Context, id string) error

	// PutSync stores a sync's progress; it expires after ttl.
	PutSync(ctx context.Context, s *Sync, ttl time.Duration) error
	// Sync returns one sync or an error wrapping ErrNotFound.
	Sync(ctx context.Context, integration, id string) (*Sync, error)
	// SetLastSync / LastSync remember the newest sync of an installation.
	SetLastSync(ctx context.Context, integration, id string) error
	LastSync(ctx context.Context, integration string) (string, error)

	// AcquireLock takes the named lock for owner unless someone holds
	// it; RefreshLock extends it; ReleaseLock drops it if owner still
	// holds it. Names: an installation id for its sync lock, watchLock(id)
	// for its watch lease.
	AcquireLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	RefreshLock(ctx context.Context, name, owner string, ttl time.Duration) error
	ReleaseLock(ctx context.Context, name, owner string) error

	// PutWatchStatus records the watch status of an installation; it
	// expires after ttl. WatchStatus returns it, or nil when none is
	// recorded.
	PutWatchStatus(ctx context.Context, integration string, st *WatchStatus, ttl time.Duration) error
	WatchStatus(ctx context.Context, integration string) (*WatchStatus, error)
}
